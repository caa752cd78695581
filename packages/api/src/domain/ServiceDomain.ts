/**
 * Custom domains of a service: host names a team adds, that the edge routes (by Host, and over
 * HTTPS by SNI) to the same upstreams as the service's own `<service>.<team>.<KYOZO_DOMAIN>`.
 * A hostname belongs to at most one service across all teams.
 */
import { Schema } from "effect"

import { ServiceId } from "./Ids.js"

/** A stored custom domain (the row). */
export class ServiceDomain extends Schema.Class<ServiceDomain>("ServiceDomain")({
  hostname: Schema.String,
  serviceId: ServiceId,
  createdAt: Schema.DateFromSelf
}) {}

/** A custom domain on the wire (RPC, CLI `--json`). */
export const ServiceDomainView = Schema.Struct({
  hostname: Schema.String,
  serviceId: Schema.String,
  createdAt: Schema.String
})
export type ServiceDomainView = typeof ServiceDomainView.Type

export const toDomainView = (d: ServiceDomain): ServiceDomainView => ({
  hostname: d.hostname,
  serviceId: d.serviceId,
  createdAt: d.createdAt.toISOString()
})

/** What a hostname given as input may be, as sent (bounded; the rules are the application's). */
export const HostnameInput = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(300))

/** The hostname is another service's already (of this team or of another one: never says which). */
export class DomainTaken extends Schema.TaggedError<DomainTaken>()("DomainTaken", {
  hostname: Schema.String
}) {
  override get message() {
    return `The domain ${this.hostname} is already routed to another service. Remove it there first, or choose another name.`
  }
}

export class InvalidDomain extends Schema.TaggedError<InvalidDomain>()("InvalidDomain", {
  hostname: Schema.String,
  reason: Schema.Literal("syntax", "ip-address", "trailing-dot", "too-long", "single-label", "reserved")
}) {
  override get message() {
    switch (this.reason) {
      case "syntax":
        return `${JSON.stringify(this.hostname)} is not a host name: use labels of a-z, 0-9 and inner hyphens (at most 63 characters each), separated by dots, e.g. app.example.com.`
      case "ip-address":
        return `${this.hostname} is an IP address: a custom domain is a host name (point its DNS at the edge instead).`
      case "trailing-dot":
        return `${this.hostname} ends with a dot: give the name without it (app.example.com).`
      case "too-long":
        return `The host name is longer than 253 characters.`
      case "single-label":
        return `${this.hostname} has a single label: give a full name with a dot (app.example.com).`
      case "reserved":
        return `${this.hostname} is in the instance's own namespace (<service>.<team>.<KYOZO_DOMAIN>) outside your team's: choose a name under your team's label, or your own domain.`
    }
  }
}

export class DomainNotFound extends Schema.TaggedError<DomainNotFound>()("DomainNotFound", {
  hostname: Schema.String
}) {
  override get message() {
    return `The service has no domain ${this.hostname}. List them with \`kyozo domains ls <service>\`.`
  }
}

export const DomainError = Schema.Union(DomainTaken, InvalidDomain, DomainNotFound)
export type DomainError = typeof DomainError.Type

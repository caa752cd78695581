/**
 * Custom domains of services, the one rule every front door (REST, RPC, CLI, GraphQL) calls.
 *
 * - A hostname is lower-cased (an internationalised one stored as punycode) and must be a DNS name: RFC 1123 labels (a-z, 0-9, inner hyphens,
 *   1–63 characters), at least two of them, at most 253 characters, no trailing dot, not an IP.
 * - Names under the instance's KYOZO_DOMAIN are Kyozo's (`<service>.<team>.<domain>`): a team may
 *   only take names deeper than its own service names there (`x.<service>.<team>.<domain>`).
 * - Adding or removing needs `manage` on the service, like its other settings; every member reads.
 * - A name belongs to one service across ALL teams: the table's primary key decides races, and
 *   the loser gets DomainTaken (409), which never says whose the name is.
 * - Another team's service is ServiceNotFound (404), before any right is looked at.
 * - Each change is a `service.domain-added` / `service.domain-removed` event of the service.
 * - The change reaches the running edge at once (the service's route is re-declared with its new
 *   names), with no redeploy; the route loops keep it so from then on.
 */
import * as net from "node:net"
import { domainToASCII } from "node:url"

import { ServiceNotFound } from "@kyozo/api/domain/Deploy"
import type { ServiceId } from "@kyozo/api/domain/Ids"
import {
  DomainNotFound,
  DomainTaken,
  InvalidDomain,
  type ServiceDomain
} from "@kyozo/api/domain/ServiceDomain"
import type { CurrentPrincipal, Forbidden, Principal } from "@kyozo/api/KyozoRpc"
import { EdgeRouter } from "@kyozo/core/edge/EdgeRouter"
import { dnsLabel } from "@kyozo/core/edge/HostNames"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { type AppendEvent, DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { ServiceDomainRepo } from "@kyozo/core/store/ServiceDomainRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { Effect, Either, Option } from "effect"

import { Policy } from "../Policy.js"
import { repository } from "./Storage.js"

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/** Where the instance's own names live: KYOZO_DOMAIN and the caller's team label in it. */
export interface Namespace {
  readonly domain: string
  readonly teamLabel: string
}

/** The hostname as stored (lower-cased), or why it cannot be a custom domain. Pure. */
export const parseHostname = (raw: string, namespace: Namespace): Either.Either<string, InvalidDomain> => {
  const trimmed = raw.trim().toLowerCase()
  // An internationalised name is stored as the ASCII (punycode) form DNS and Caddy use.
  const hostname = /[^\x00-\x7f]/.test(trimmed) ? domainToASCII(trimmed) || trimmed : trimmed
  const invalid = (reason: InvalidDomain["reason"]) =>
    Either.left(new InvalidDomain({ hostname: raw.slice(0, 300), reason }))
  if (hostname.length > 253) return invalid("too-long")
  const bare = hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname
  if (net.isIP(bare) !== 0) return invalid("ip-address")
  if (hostname.endsWith(".") && hostname.length > 1) return invalid("trailing-dot")
  const labels = hostname.split(".")
  if (!labels.every((l) => LABEL.test(l))) return invalid("syntax")
  // An all-numeric last label is no DNS name (and would read as an address).
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return invalid("ip-address")
  if (labels.length < 2) return invalid("single-label")
  const domain = namespace.domain.toLowerCase().replace(/\.$/, "")
  if (hostname === domain || hostname.endsWith(`.${domain}`)) {
    const inside = hostname === domain ? [] : hostname.slice(0, -(domain.length + 1)).split(".")
    // [..., service, team]: only names below a service name of the caller's own team.
    if (inside.length < 3 || inside[inside.length - 1] !== namespace.teamLabel) return invalid("reserved")
  }
  return Either.right(hostname)
}

/** The service's event for a domain added or removed (`service.domain-added` / `-removed`). */
const domainChanged = (
  change: "added" | "removed",
  principal: Pick<Principal, "teamId" | "userId">,
  service: { readonly id: ServiceId; readonly name: string },
  hostname: string
): AppendEvent => ({
  teamId: principal.teamId,
  serviceId: service.id,
  type: `service.domain-${change}`,
  message:
    change === "added"
      ? `Added the domain ${hostname} to ${service.name}`
      : `Removed the domain ${hostname} from ${service.name}`,
  data: { hostname, by: principal.userId }
})

export class Domains extends Effect.Service<Domains>()("@kyozo/server/application/Domains", {
  effect: Effect.gen(function* () {
    const domains = yield* repository(ServiceDomainRepo)
    const teams = yield* repository(TeamRepo)
    const events = yield* repository(DeploymentEventRepo)
    const policy = yield* Policy
    const config = yield* Effect.serviceOption(KyozoConfig)
    const edgeRouter = yield* Effect.serviceOption(EdgeRouter)
    const instanceDomain = Option.match(config, { onNone: () => "localhost", onSome: (c) => c.domain })

    /**
     * The running edge serves the service's names as stored now. Only a route that exists is
     * touched (a service never deployed gets its names with its first route); a refusal is logged
     * and the route loops try again: the row is what counts.
     */
    const resync = (serviceId: ServiceId) =>
      Option.match(edgeRouter, {
        onNone: () => Effect.void,
        onSome: (edge) =>
          Effect.gen(function* () {
            if ((yield* edge.route(serviceId)) === undefined) return
            const names = yield* domains.namesOf(serviceId)
            yield* edge.ensure(serviceId, { domains: names })
          }).pipe(
            Effect.catchAll((e) =>
              Effect.logWarning(`edge: the domains of ${serviceId} wait for the next sync: ${e.message}`)
            )
          )
      })

    /** The service's custom domains (every member of the team reads them). */
    const list = (
      service: string
    ): Effect.Effect<ReadonlyArray<ServiceDomain>, ServiceNotFound, CurrentPrincipal> =>
      Effect.flatMap(policy.viewService(service), ({ principal, service: found }) =>
        domains.listForService(principal.teamId, found.id)
      )

    /** Adds a custom domain; `created` is false when the service had it already (idempotent). */
    const add = (
      service: string,
      hostname: string
    ): Effect.Effect<
      { readonly domain: ServiceDomain; readonly created: boolean },
      Forbidden | ServiceNotFound | InvalidDomain | DomainTaken,
      CurrentPrincipal
    > =>
      Effect.gen(function* () {
        const { principal, service: found } = yield* policy.requireService(
          "add domains to the service",
          service,
          "manage"
        )
        const team = yield* teams.findById(principal.teamId)
        const teamLabel = Option.match(team, { onNone: () => "", onSome: (t) => dnsLabel(t.name) })
        const name = yield* parseHostname(hostname, { domain: instanceDomain, teamLabel })
        const outcome = yield* domains.add(principal.teamId, found.id, name)
        switch (outcome._tag) {
          case "Taken":
            return yield* new DomainTaken({ hostname: name })
          // The service went away between the check and the insert.
          case "NoService":
            return yield* new ServiceNotFound({ service })
          case "Added":
            if (outcome.created) yield* events.append(domainChanged("added", principal, found, name))
            // Also when it was there already: the edge may have missed it (a refused load).
            yield* resync(found.id)
            return { domain: outcome.domain, created: outcome.created }
        }
      })

    /** Removes a custom domain of the service; the edge stops routing it at once. */
    const remove = (
      service: string,
      hostname: string
    ): Effect.Effect<void, Forbidden | ServiceNotFound | DomainNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const { principal, service: found } = yield* policy.requireService(
          "remove domains from the service",
          service,
          "manage"
        )
        const name = hostname.trim().toLowerCase()
        const removed = yield* domains.remove(principal.teamId, found.id, name)
        if (!removed) return yield* new DomainNotFound({ hostname: name })
        yield* events.append(domainChanged("removed", principal, found, name))
        yield* resync(found.id)
      })

    return { list, add, remove } as const
  }),
  dependencies: [ServiceDomainRepo.Default, TeamRepo.Default, DeploymentEventRepo.Default, Policy.Default]
}) {}

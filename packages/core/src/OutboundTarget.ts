/**
 * Where the server may send a tenant's outbound calls (webhooks). A URL a tenant gives must not
 * reach the server's own network: loopback, link-local (cloud metadata at 169.254.169.254),
 * private, unique-local, carrier-grade NAT, unspecified and other reserved addresses are refused,
 * and so are credentials inside the URL. The check runs twice: on the URL when it is stored, and
 * on every address the name resolves to when a call is made (DNS can change between the two), and
 * the call then connects to exactly the address that was checked.
 *
 * `KYOZO_WEBHOOK_ALLOW_PRIVATE=1` lets an admin allow private and loopback targets (a receiver on
 * the same host or LAN); metadata names stay refused even then.
 */
import * as dns from "node:dns"
import type { LookupFunction } from "node:net"
import * as net from "node:net"

import { parseTargetUrl, refused, TargetRefused } from "@kyozo/api/domain/TargetUrl"
import ipaddr from "ipaddr.js"

/** Re-exported: the URL rule lives in the contract (domain/TargetUrl). */
export { parseTargetUrl, type TargetRefusal, TargetRefused } from "@kyozo/api/domain/TargetUrl"

/** Names of a cloud's metadata service: refused whatever DNS says and whatever the switch. */
const isMetadataName = (h: string): boolean =>
  h === "metadata" || h === "metadata.google.internal" || h === "instance-data" || h.endsWith(".internal")

/** Names that always mean this machine or its LAN. */
const isLocalName = (h: string): boolean =>
  h === "localhost" || h.endsWith(".localhost") || h.endsWith(".local")

/** Metadata services are refused even when private targets are allowed. */
const METADATA_ADDRESSES = new Set(["169.254.169.254", "fd00:ec2::254", "100.100.100.200"])

/** Only ordinary public unicast addresses are allowed (IPv4-mapped IPv6 counts as its IPv4). */
export const isPublicAddress = (address: string): boolean => {
  if (!ipaddr.isValid(address)) return false
  const ip = ipaddr.process(address)
  return ip.range() === "unicast"
}

const isAllowedAddress = (address: string, allowPrivate: boolean): boolean => {
  if (!ipaddr.isValid(address)) return false
  const ip = ipaddr.process(address)
  if (METADATA_ADDRESSES.has(ip.toString())) return false
  if (ip.range() === "unicast") return true
  if (!allowPrivate) return false
  return ["private", "loopback", "uniqueLocal", "linkLocal", "carrierGradeNat"].includes(ip.range())
}

/** The host of a URL without IPv6 brackets. */
const bareHost = (u: URL): string => u.hostname.replace(/^\[|\]$/g, "")

/**
 * The check when a URL is stored: the URL rule, then the host as written (a literal address or a
 * name that always means this machine or a metadata service). Names are resolved at call time.
 */
export const checkTarget = (raw: string, allowPrivate: boolean): URL | TargetRefused => {
  const u = parseTargetUrl(raw)
  if (u instanceof TargetRefused) return u
  const host = bareHost(u)
  if (net.isIP(host) !== 0) {
    if (!isAllowedAddress(host, allowPrivate))
      return refused(
        "private-address",
        "The URL points at a loopback, private, link-local or metadata address."
      )
  } else {
    const h = host.toLowerCase().replace(/\.$/, "")
    if (isMetadataName(h) || (!allowPrivate && isLocalName(h)))
      return refused("private-address", "The URL names this machine or a metadata service.")
  }
  return u
}

/**
 * A `lookup` for node's http(s) agents: resolves the name, refuses the call when any address is
 * not allowed, and hands the checked address to the socket (no second resolution to race).
 */
export const guardedLookup =
  (allowPrivate: boolean): LookupFunction =>
  (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return (callback as (e: Error | null, a: string, f?: number) => void)(err, "", 4)
      const list = addresses as unknown as ReadonlyArray<dns.LookupAddress>
      const bad = list.find((a) => !isAllowedAddress(a.address, allowPrivate))
      if (bad !== undefined || list.length === 0) {
        const e = Object.assign(
          new Error(`${hostname} resolves to a loopback, private, link-local or metadata address: refused`),
          { code: "ETARGETREFUSED" }
        )
        return (callback as (e: Error | null, a: string, f?: number) => void)(e, "", 4)
      }
      if ((options as dns.LookupOptions).all)
        return (callback as (e: Error | null, a: ReadonlyArray<dns.LookupAddress>) => void)(null, list)
      return (callback as (e: Error | null, a: string, f?: number) => void)(
        null,
        list[0]!.address,
        list[0]!.family
      )
    })
  }

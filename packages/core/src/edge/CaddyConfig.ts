/**
 * The whole Caddy config Kyozo wants, from its routes (a pure function, so every change is one
 * atomic `POST /load`), and the reverse: the routes found in a running Caddy's config, so a Kyozo
 * that adopts a Caddy after a crash pushes nothing that drops a serving route.
 *
 * One `servers` entry per service with its own `listen` (the stable per-service port), plus one
 * shared server whose host matchers serve `<service>.<team>.<domain>` and the service's custom
 * domains (the HTTPS server, when on, serves the same names with certificates of Caddy's internal CA). Upstreams get round-robin,
 * a retry window (`try_duration`) and passive health: a dead replica is skipped and the request
 * retried on another, so a killed container costs no failed request.
 *
 * Two tiers where Kyozo runs Caddy itself (`Relay`): Caddy 2.6 applies any config change by binding
 * every TCP listener again (SO_REUSEPORT) and shutting the old servers down, and requests arriving
 * at that instant are reset or closed unanswered (measured: a few per reload under polling, with
 * keep-alive and with fresh connections alike, whatever image runs behind). Unix-socket listeners
 * are handed over instead (the same socket), losing nothing. So the front Caddy holds the public
 * listeners and relays each service to its own unix socket, and the back Caddy serves those
 * sockets with the upstreams. A rollout, a replica lost or back, changes only the back's config; the
 * front is reloaded only when a service, a port or a name comes or goes.
 */
import { type AdminEndpoint, listenValue } from "./CaddyAdmin.js"
import { simulatedPage, unavailableText, type Upstream } from "./EdgeRouter.js"

export interface RouteEntry {
  readonly serviceId: string
  readonly hostPort: number
  readonly hostName: string | null
  /** Custom domains, matched by Host like `hostName` (sorted, unique). */
  readonly domains: ReadonlyArray<string>
  readonly simulated: boolean
  readonly label: string
  readonly upstreams: ReadonlyArray<Upstream>
}

export interface SharedListener {
  readonly host: string
  readonly port: number
}

export const SERVICE_SERVER_PREFIX = "kyozo-svc-"
export const HOSTS_SERVER = "kyozo-hosts"

/** How long a request waits for some upstream to take it (a restart, a rolling step). */
export const TRY_DURATION = "5s"

/** Methods Caddy (and Go's transport) may send again when a kept-alive connection was closed under them. */
const REPLAYABLE = ["GET", "HEAD", "OPTIONS"]

const handlerFor = (route: RouteEntry) => {
  if (route.simulated) {
    return {
      handler: "static_response",
      status_code: 200,
      headers: { "Content-Type": ["text/html; charset=utf-8"], "Kyozo-Runtime": ["mock"] },
      body: simulatedPage(route.label)
    }
  }
  if (route.upstreams.length === 0) {
    return {
      handler: "static_response",
      status_code: 503,
      headers: {
        "Content-Type": ["text/plain; charset=utf-8"],
        "Retry-After": ["2"],
        "Kyozo-Edge": ["no-upstream"]
      },
      body: unavailableText(route.label)
    }
  }
  return {
    handler: "reverse_proxy",
    upstreams: route.upstreams.map((u) => ({ dial: `${u.host}:${u.port}` })),
    load_balancing: {
      selection_policy: { policy: "round_robin" },
      try_duration: TRY_DURATION,
      try_interval: "100ms",
      // A replica killed mid-connection (docker-proxy accepted, then reset) is not a dial error:
      // idempotent requests may still go to another replica instead of answering 502.
      retry_match: [{ method: REPLAYABLE }]
    },
    health_checks: { passive: { fail_duration: "2s", max_fails: 1 } }
  }
}

export const HOSTS_TLS_SERVER = "kyozo-hosts-tls"

/** The back Caddy's server of a service (it listens on the service's relay socket). */
export const RELAY_SERVER_PREFIX = "kyozo-up-"

/** Where the front relays each service: a unix socket per service in the relay folder. */
export interface Relay {
  readonly socketOf: (serviceId: string) => string
}

export const relayIn = (dir: string): Relay => ({ socketOf: (serviceId) => `${dir}/${serviceId}.sock` })

/**
 * The front's proxy to a service's socket, waiting while the back restarts. Without `pooled`, each
 * request gets a connection of its own that is never reused, yet is not `Connection: close` either:
 * `max_idle_conns_per_host` below zero keeps no idle connection, so the front closes it itself once
 * the answer is read and the request written (see `relayHandler`).
 */
const relayProxy = (socket: string, pooled: boolean) => ({
  handler: "reverse_proxy",
  upstreams: [{ dial: `unix/${socket}` }],
  transport: { protocol: "http", ...(pooled ? {} : { keep_alive: { max_idle_conns_per_host: -1 } }) },
  load_balancing: { try_duration: TRY_DURATION, try_interval: "100ms" }
})

/**
 * The front's handler of a relayed service. A back reload closes the front's idle connections to it:
 * a GET caught on one is sent again on a new connection, a POST is not (measured: 502s). So GET,
 * HEAD and OPTIONS reuse connections, every other method opens a fresh one (a unix socket connect).
 * Fresh, but not `Connection: close` (keep_alive disabled): then the back closes the connection as
 * soon as it has answered, and an app that answers before reading the whole body (most do for small
 * bodies) races the front still writing it; the failed write makes Go's transport close the
 * connection under the answer it is relaying, and the client got a 200 with an empty body
 * (measured: about one POST in 2,500 with reloads or without). A kept-alive connection is read to
 * the end of the request by the back (Go discards an unread body before reuse). Left: an answer the
 * old back sends in the instant it shuts down can still be cut (about one request in 12,000 under
 * 11 pollers and 200 reloads, from one in 900).
 */
const relayHandler = (socket: string) => ({
  handler: "subroute",
  routes: [
    { match: [{ method: REPLAYABLE }], handle: [relayProxy(socket, true)], terminal: true },
    { handle: [relayProxy(socket, false)] }
  ]
})

/**
 * The back's proxy sees the front as its client (a unix socket, no address), so it would drop the
 * X-Forwarded-* headers: the front's values go on to the app.
 */
const FORWARDED = ["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"]
const backHandlerFor = (route: RouteEntry) => {
  const handler = handlerFor(route)
  return handler.handler !== "reverse_proxy"
    ? handler
    : {
        ...handler,
        headers: {
          request: { set: Object.fromEntries(FORWARDED.map((h) => [h, [`{http.request.header.${h}}`]])) }
        }
      }
}

/** The front's handler of a route: the relay unless it is a simulated one (no upstreams ever). */
const frontHandlerFor = (route: RouteEntry, relay: Relay | null) =>
  relay === null || route.simulated ? handlerFor(route) : relayHandler(relay.socketOf(route.serviceId))

/** The back Caddy's whole config: one server per relayed service, on its socket. */
export const buildBackConfig = (admin: AdminEndpoint, routes: ReadonlyArray<RouteEntry>, relay: Relay) => {
  const servers: Record<string, unknown> = {}
  for (const route of [...routes].sort((a, b) => a.serviceId.localeCompare(b.serviceId))) {
    if (route.simulated) continue
    servers[`${RELAY_SERVER_PREFIX}${route.serviceId}`] = {
      listen: [`unix/${relay.socketOf(route.serviceId)}`],
      automatic_https: { disable: true },
      routes: [{ handle: [backHandlerFor(route)] }]
    }
  }
  return { admin: { listen: listenValue(admin), config: { persist: false } }, apps: { http: { servers } } }
}

/**
 * The Host matcher sets of a route (OR-ed by Caddy): its generated host name, then its custom
 * domains as a set of their own, so both read back apart from an adopted Caddy's config.
 */
const matchOf = (r: RouteEntry) => [
  ...(r.hostName === null ? [] : [{ host: [r.hostName] }]),
  ...(r.domains.length === 0 ? [] : [{ host: [...r.domains] }])
]

/** `@id` of a host route: `kyozo-host-` when the first matcher set is the generated host name. */
const HOST_ID = "kyozo-host-"
const DOMAINS_ID = "kyozo-domains-"

/** The routes of the host-name servers: one per named service, then a 404 for any other name. */
const hostRoutes = (named: ReadonlyArray<RouteEntry>, withIds: boolean, relay: Relay | null) => [
  ...named.map((r) => ({
    // `@id`s are unique across Caddy's config: only the plain-HTTP server carries them.
    ...(withIds ? { "@id": `${r.hostName === null ? DOMAINS_ID : HOST_ID}${r.serviceId}` } : {}),
    match: matchOf(r),
    handle: [frontHandlerFor(r, relay)],
    terminal: true
  })),
  {
    handle: [
      {
        handler: "static_response",
        status_code: 404,
        headers: { "Content-Type": ["text/plain; charset=utf-8"] },
        body: "No Kyozo service has this host name.\n"
      }
    ]
  }
]

/**
 * HTTPS for the host names (KYOZO_EDGE_TLS_PORT): certificates from Caddy's internal CA (its root
 * in Caddy's data dir, `internalCaRoot`), issued at load for every name routed; the root is never
 * installed into the system's trust store. No redirect from the plain port (both keep serving).
 */
const internalIssuer = { module: "internal" }
const pkiApp = { certificate_authorities: { local: { install_trust: false } } }

/** Certificates from a public CA over ACME (KYOZO_ACME_EMAIL): for names the internet can reach. */
export interface AcmeSettings {
  readonly email: string
  /** The CA's directory URL (e.g. Let's Encrypt staging); unset: Caddy's default. */
  readonly ca?: string | undefined
}

/**
 * Names no public CA will certify (loopback, private suffixes, single labels): always the internal CA.
 * RFC 6761 / RFC 8375 reserved suffixes and the ones home networks use.
 */
const LOCAL_SUFFIXES = ["localhost", "local", "internal", "test", "invalid", "example", "lan", "home.arpa"]
export const isLocalName = (name: string): boolean =>
  !name.includes(".") || LOCAL_SUFFIXES.some((s) => name === s || name.endsWith(`.${s}`))

/**
 * The TLS automation: the internal CA for everything, or, with ACME configured, the internal CA for
 * the local names and ACME for the rest (a policy per set of names; Caddy picks by subject).
 */
const tlsApp = (names: ReadonlyArray<string>, acme: AcmeSettings | null) => {
  if (acme === null) return { automation: { policies: [{ issuers: [internalIssuer] }] } }
  const local = names.filter(isLocalName)
  const publicNames = names.filter((n) => !isLocalName(n))
  const acmeIssuer = { module: "acme", email: acme.email, ...(acme.ca === undefined ? {} : { ca: acme.ca }) }
  return {
    automation: {
      policies: [
        ...(local.length === 0 ? [] : [{ subjects: local, issuers: [internalIssuer] }]),
        ...(publicNames.length === 0 ? [] : [{ subjects: publicNames, issuers: [acmeIssuer] }]),
        // Anything else (none today): the internal CA, never an unplanned public request.
        { issuers: [internalIssuer] }
      ]
    }
  }
}

export const buildConfig = (
  admin: AdminEndpoint,
  host: string,
  routes: ReadonlyArray<RouteEntry>,
  shared: SharedListener | null,
  tls: SharedListener | null = null,
  acme: AcmeSettings | null = null,
  relay: Relay | null = null
) => {
  const servers: Record<string, unknown> = {}
  const sorted = [...routes].sort((a, b) => a.serviceId.localeCompare(b.serviceId))
  for (const route of sorted) {
    servers[`${SERVICE_SERVER_PREFIX}${route.serviceId}`] = {
      listen: [`${host}:${route.hostPort}`],
      automatic_https: { disable: true },
      routes: [{ handle: [frontHandlerFor(route, relay)] }]
    }
  }
  const named = sorted.filter((r) => r.hostName !== null || r.domains.length > 0)
  if (shared !== null) {
    servers[HOSTS_SERVER] = {
      listen: [`${shared.host}:${shared.port}`],
      automatic_https: { disable: true },
      routes: hostRoutes(named, true, relay)
    }
  }
  if (tls !== null) {
    servers[HOSTS_TLS_SERVER] = {
      listen: [`${tls.host}:${tls.port}`],
      automatic_https: { disable_redirects: true },
      tls_connection_policies: [{}],
      routes: hostRoutes(named, false, relay)
    }
  }
  const names = [
    ...new Set(named.flatMap((r) => [...(r.hostName === null ? [] : [r.hostName]), ...r.domains]))
  ]
  // ACME's HTTP and TLS-ALPN challenges arrive on the edge's own ports (80/443 when public).
  const challengePorts =
    acme === null || tls === null
      ? {}
      : { ...(shared === null ? {} : { http_port: shared.port }), https_port: tls.port }
  return {
    admin: { listen: listenValue(admin), config: { persist: false } },
    apps:
      tls === null
        ? { http: { servers } }
        : { http: { ...challengePorts, servers }, tls: tlsApp(names, acme), pki: pkiApp }
  }
}

interface ParsedServer {
  readonly listen?: ReadonlyArray<string>
  readonly routes?: ReadonlyArray<{
    readonly "@id"?: string
    readonly match?: ReadonlyArray<{ readonly host?: ReadonlyArray<string> }>
    readonly handle?: ReadonlyArray<ParsedHandler>
  }>
}

interface ParsedHandler {
  readonly handler?: string
  readonly upstreams?: ReadonlyArray<{ readonly dial?: string }>
  readonly headers?: Record<string, ReadonlyArray<string>>
}

const portOf = (listen: string | undefined): number | null => {
  const m = /:(\d+)$/.exec(listen ?? "")
  return m ? Number(m[1]) : null
}

/** The upstreams of one proxy handler (`host:port` dials; a relay socket is not one). */
const upstreamsOf = (handler: ParsedHandler | undefined): Array<Upstream> => {
  const upstreams: Array<Upstream> = []
  for (const u of handler?.upstreams ?? []) {
    const m = /^([^/]+):(\d+)$/.exec(u.dial ?? "")
    if (m) upstreams.push({ host: m[1]!, port: Number(m[2]) })
  }
  return upstreams
}

/**
 * The routes Kyozo left in a running Caddy (servers it did not make are ignored); with the back
 * Caddy's config, a relayed service's upstreams are read there.
 */
export const parseRoutes = (config: unknown, back?: unknown): ReadonlyArray<RouteEntry> => {
  const backServers =
    (back as { apps?: { http?: { servers?: Record<string, ParsedServer> } } } | null | undefined)?.apps?.http
      ?.servers ?? {}
  const servers = (config as { apps?: { http?: { servers?: Record<string, ParsedServer> } } } | null)?.apps
    ?.http?.servers
  if (!servers) return []
  const hostNames = new Map<string, string>()
  const domains = new Map<string, ReadonlyArray<string>>()
  for (const r of servers[HOSTS_SERVER]?.routes ?? []) {
    const id = r["@id"] ?? ""
    const sets = r.match ?? []
    if (id.startsWith(HOST_ID) && sets[0]?.host?.[0]) {
      hostNames.set(id.slice(HOST_ID.length), sets[0].host[0])
      if (sets[1]?.host) domains.set(id.slice(HOST_ID.length), sets[1].host)
    } else if (id.startsWith(DOMAINS_ID) && sets[0]?.host)
      domains.set(id.slice(DOMAINS_ID.length), sets[0].host)
  }
  const out: Array<RouteEntry> = []
  for (const [name, server] of Object.entries(servers)) {
    if (!name.startsWith(SERVICE_SERVER_PREFIX)) continue
    const serviceId = name.slice(SERVICE_SERVER_PREFIX.length)
    const hostPort = portOf(server.listen?.[0])
    if (hostPort === null) continue
    const handler = server.routes?.[0]?.handle?.[0]
    const relayed = handler?.handler === "subroute"
    const upstreams = upstreamsOf(
      relayed ? backServers[`${RELAY_SERVER_PREFIX}${serviceId}`]?.routes?.[0]?.handle?.[0] : handler
    )
    out.push({
      serviceId,
      hostPort,
      hostName: hostNames.get(serviceId) ?? null,
      domains: [...(domains.get(serviceId) ?? [])],
      simulated: handler?.handler === "static_response" && handler.headers?.["Kyozo-Runtime"]?.[0] === "mock",
      label: serviceId,
      upstreams
    })
  }
  return out
}

/**
 * The Caddy edge: Kyozo's routes kept in memory and applied to a Caddy process as one whole
 * config (`POST /load`, atomic and graceful: open connections finish on the old config). Caddy is
 * adopted when its admin endpoint already answers (a Kyozo restart after a crash: the routes it
 * serves are read back first, so nothing is dropped), else started detached. Closing the layer
 * leaves Caddy running (the data plane outlives the control plane) unless `stopOnClose` (tests).
 */
import * as fs from "node:fs"

import { Duration, Effect, Fiber, Layer, Option, Schedule, type Scope } from "effect"

import * as Admin from "./CaddyAdmin.js"
import {
  type AcmeSettings,
  buildBackConfig,
  buildConfig,
  isLocalName,
  parseRoutes,
  type Relay,
  relayIn,
  type RouteEntry,
  type SharedListener
} from "./CaddyConfig.js"
import { awaitCertificates } from "./CertificateReadiness.js"
import {
  EdgeApplyFailed,
  EdgeRouter,
  type EdgeRouterShape,
  type EdgeRouteStatus,
  EdgeUnavailable,
  sameNames,
  sameUpstreams
} from "./EdgeRouter.js"
import { freePort } from "./FreePort.js"
import * as ReloadSafety from "./ReloadSafety.js"

export interface CaddyEdgeOptions {
  readonly dataDir: string
  readonly admin: Admin.AdminEndpoint
  /** The binary to start when none answers; null: adopt only. */
  readonly bin: string | null
  /** Where per-service ports listen (default 127.0.0.1). */
  readonly host?: string
  /** The shared host-name port (KYOZO_EDGE_PORT); null serves no host names. */
  readonly sharedPort: number | null
  /** HTTPS for the host names through Caddy's internal CA (KYOZO_EDGE_TLS_PORT); null: none. */
  readonly tlsPort?: number | null
  /** Public names get certificates over ACME (KYOZO_ACME_EMAIL); null: the internal CA only. */
  readonly acme?: AcmeSettings | null
  readonly domain: string
  /** Why this edge was chosen, for the status. */
  readonly reason?: string
  /** Stop Caddy when the layer closes (tests); by default it keeps serving. */
  readonly stopOnClose?: boolean
  /** How long `ensure` waits for the HTTPS certificate of a new local name (default 10 s; zero: no wait). */
  readonly certificateWait?: Duration.Duration
  /**
   * Two Caddy processes, the front relaying to the back over unix sockets, so that upstream changes
   * reload only the back (CaddyConfig.ts). Default: on where Kyozo runs Caddy on its own admin
   * socket in the data dir; an operator's Caddy (KYOZO_CADDY_ADMIN) gets one config as before.
   */
  readonly relay?: boolean
}

/** Unix socket paths are limited to 108 bytes: a data dir too deep for them gets one Caddy. */
const MAX_SOCKET_PATH = 100

const inUsePort = (error: string): number | null => {
  const m = /listen tcp [^\s]*:(\d+): bind: address already in use/.exec(error)
  return m ? Number(m[1]) : null
}

export const make = (
  options: CaddyEdgeOptions
): Effect.Effect<EdgeRouterShape, EdgeUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const admin = options.admin
    const own = Admin.defaultAdmin(options.dataDir)
    const relayDir = Admin.relayDir(options.dataDir)
    let relay: Relay | null =
      (options.relay ??
        (options.bin !== null &&
          admin._tag === "Socket" &&
          own._tag === "Socket" &&
          admin.path === own.path)) &&
      relayIn(relayDir).socketOf("svc_0123456789abcdef").length <= MAX_SOCKET_PATH
        ? relayIn(relayDir)
        : null
    const back = Admin.backAdmin(options.dataDir)
    const [running, backRunning] = yield* Effect.all(
      [Admin.currentConfig(admin), relay === null ? Effect.succeedNone : Admin.currentConfig(back)],
      { concurrency: 2 }
    )
    let pid: number | null
    let reason: string
    const routes = new Map<string, RouteEntry>()
    // The back starts beside the front (each waits for its own admin socket), joined before any load.
    const backStarted = yield* Effect.fork(
      Effect.either(
        relay === null || Option.isSome(backRunning)
          ? Effect.void
          : Effect.zipRight(
              Effect.sync(() => fs.mkdirSync(relayDir, { recursive: true, mode: 0o700 })),
              Admin.start({ bin: options.bin!, dataDir: options.dataDir, admin: back, role: "back" })
            )
      )
    )
    if (Option.isSome(running)) {
      for (const r of parseRoutes(running.value, Option.getOrUndefined(backRunning)))
        routes.set(r.serviceId, r)
      pid = Admin.readPid(options.dataDir)
      reason = `${options.reason ?? "caddy"}: adopted the Caddy answering at ${Admin.describeAdmin(admin)} (${routes.size} routes)`
    } else {
      if (options.bin === null) {
        return yield* new EdgeUnavailable({
          reason: "not-installed",
          detail: "no caddy binary on PATH and none answering the admin endpoint"
        })
      }
      const started = yield* Admin.start({ bin: options.bin, dataDir: options.dataDir, admin }).pipe(
        Effect.onError(() => Fiber.interrupt(backStarted))
      )
      pid = started.pid
      reason = `${options.reason ?? "caddy"}: started ${options.bin} (pid ${pid})`
    }
    const backResult = yield* Fiber.join(backStarted)
    if (backResult._tag === "Left") {
      // One Caddy still serves everything; only route changes are the lossy reloads they always were.
      yield* Effect.logWarning(
        `Edge: the back Caddy did not start (${backResult.left.message}); one Caddy serves all`
      )
      relay = null
    }
    if (relay !== null)
      reason = `${reason}; upstreams on a second Caddy behind unix sockets in ${relayDir} (route changes reload only it)`
    if (options.tlsPort != null)
      reason = `${reason}; HTTPS for host names on ${host}:${options.tlsPort} (Caddy's internal CA: ${Admin.internalCaRoot(options.dataDir)})`
    yield* Effect.logInfo(`Edge: Caddy — ${reason}`)
    // Every route change reloads Caddy: without this, a reload resets connections in flight.
    const safety = yield* ReloadSafety.ensure()
    const said = ReloadSafety.describe(safety)
    if (said !== null) {
      yield* said.level === "info" ? Effect.logInfo(said.text) : Effect.logWarning(said.text)
    }
    if (safety._tag === "Unsafe") reason = `${reason}; ${safety.detail}: route changes may reset connections`

    if (options.stopOnClose === true) {
      yield* Effect.addFinalizer(() => Admin.stop(admin, options.dataDir))
    }

    // One lock per service (its read-modify-write), one for the loads. Changes that arrive while a
    // load runs are pushed together by the next one: concurrent deploys do not queue a load each.
    const locks = new Map<string, Effect.Semaphore>()
    const lockFor = (serviceId: string) => {
      let l = locks.get(serviceId)
      if (l === undefined) {
        l = Effect.unsafeMakeSemaphore(1)
        locks.set(serviceId, l)
      }
      return l
    }
    const loadLock = yield* Effect.makeSemaphore(1)
    let version = 0
    let appliedVersion = 0
    let lastApplied: string | null = null
    let lastBackApplied: string | null = null
    let lastError: string | null = null
    // Set when the shared port could not be bound: host names are off, per-service ports keep working.
    let sharedBlocked: string | null = null
    const shared = (): SharedListener | null =>
      options.sharedPort === null || sharedBlocked !== null ? null : { host, port: options.sharedPort }
    const tlsPort = options.tlsPort ?? null
    let tlsBlocked: string | null = null
    const tls = (): SharedListener | null =>
      tlsPort === null || tlsBlocked !== null ? null : { host, port: tlsPort }

    /** Pushes the current routes when they differ from what Caddy has; Caddy's refusal as a string. */
    const apply: Effect.Effect<boolean, EdgeUnavailable | string> = Effect.gen(function* () {
      // The back first: a new service's socket exists before the front relays to it.
      let backChanged = false
      if (relay !== null) {
        const backConfig = buildBackConfig(back, [...routes.values()], relay)
        const backJson = JSON.stringify(backConfig)
        if (backJson !== lastBackApplied) {
          // A back Caddy that died (killed, crashed) is started again here: the front relays to nothing meanwhile.
          const loaded = yield* Effect.either(
            Admin.load(back, backConfig).pipe(
              Effect.catchIf(
                (e): e is EdgeUnavailable => typeof e !== "string" && options.bin !== null,
                () =>
                  Effect.logWarning("Edge: the back Caddy does not answer; starting it again").pipe(
                    Effect.zipRight(
                      Admin.start({ bin: options.bin!, dataDir: options.dataDir, admin: back, role: "back" })
                    ),
                    Effect.zipRight(Admin.load(back, backConfig))
                  )
              )
            )
          )
          if (loaded._tag === "Left") {
            if (typeof loaded.left === "string") lastError = loaded.left
            return yield* Effect.fail(loaded.left)
          }
          lastBackApplied = backJson
          backChanged = true
        }
      }
      const config = buildConfig(
        admin,
        host,
        [...routes.values()],
        shared(),
        tls(),
        options.acme ?? null,
        relay
      )
      const json = JSON.stringify(config)
      if (json === lastApplied) {
        if (backChanged) lastError = null
        return backChanged
      }
      const loaded = yield* Effect.either(Admin.load(admin, config))
      if (loaded._tag === "Left" && typeof loaded.left === "string") {
        const port = inUsePort(loaded.left)
        if (port !== null && port === options.sharedPort && sharedBlocked === null) {
          sharedBlocked = loaded.left
          yield* Effect.logWarning(
            `Edge: the shared host-name port ${port} is in use (${loaded.left}); serving per-service ports only.`
          )
          return yield* apply
        }
        if (port !== null && port === tlsPort && tlsBlocked === null) {
          tlsBlocked = loaded.left
          yield* Effect.logWarning(
            `Edge: the HTTPS port ${port} is in use (${loaded.left}); serving host names over plain HTTP only.`
          )
          return yield* apply
        }
        lastError = loaded.left
        return yield* Effect.fail(loaded.left)
      }
      if (loaded._tag === "Left") return yield* Effect.fail(loaded.left)
      lastApplied = json
      lastError = null
      return true
    })

    const refused = (serviceId: string) => (e: EdgeUnavailable | string) =>
      typeof e === "string"
        ? new EdgeApplyFailed({
            serviceId,
            reason: inUsePort(e) !== null ? "port-in-use" : "rejected",
            detail: e
          })
        : e

    const statusOf = (r: RouteEntry): EdgeRouteStatus => ({
      serviceId: r.serviceId,
      hostPort: r.hostPort,
      hostName: r.hostName,
      domains: [...r.domains],
      simulated: r.simulated,
      upstreams: r.upstreams.map((u) => ({ host: u.host, port: u.port }))
    })

    /** Pushes the routes unless a load that started after change `v` was made already did. */
    const flush = (v: number) =>
      loadLock.withPermits(1)(
        Effect.suspend(() => {
          if (v <= appliedVersion) return Effect.succeed(false)
          const at = version
          return Effect.tap(apply, () => Effect.sync(() => (appliedVersion = Math.max(appliedVersion, at))))
        })
      )

    /**
     * Applies one change; on refusal the previous entry comes back, so memory matches Caddy. A load
     * refused for another service's port (batched with this change) is retried once that one is out.
     */
    const change = (serviceId: string, next: RouteEntry | undefined) =>
      Effect.gen(function* () {
        const previous = routes.get(serviceId)
        if (next === undefined) routes.delete(serviceId)
        else routes.set(serviceId, next)
        let attempt = 0
        while (true) {
          const result = yield* Effect.either(flush(++version))
          if (result._tag === "Right") return result.right
          const port = typeof result.left === "string" ? inUsePort(result.left) : null
          const mine =
            port === null || port === next?.hostPort || port === options.sharedPort || port === tlsPort
          if (mine || ++attempt >= 3) {
            if (routes.get(serviceId) === next) {
              if (previous === undefined) routes.delete(serviceId)
              else routes.set(serviceId, previous)
              version++
            }
            return yield* Effect.fail(refused(serviceId)(result.left))
          }
          yield* Effect.sleep(Duration.millis(50))
        }
      })

    const namesOf = (r: RouteEntry | undefined): ReadonlyArray<string> =>
      r === undefined ? [] : [...(r.hostName === null ? [] : [r.hostName]), ...r.domains]
    const certificateWait = options.certificateWait ?? Duration.seconds(10)

    /**
     * Waits until HTTPS answers for the route's new names that the internal CA certifies: Caddy
     * issues them in the background after the load, and a URL reported before would answer a TLS
     * alert for a moment. Bounded (a name still without one is logged, never an error: HTTPS comes
     * a little later, plain HTTP serves already); public names (ACME) are not waited for (minutes).
     */
    const awaitHttps = (serviceId: string, before: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const listener = tls()
        if (listener === null || Duration.isZero(certificateWait)) return
        const fresh = namesOf(routes.get(serviceId)).filter(
          (n) => !before.includes(n) && (options.acme == null || isLocalName(n))
        )
        if (fresh.length === 0) return
        const target = listener.host === "0.0.0.0" ? "127.0.0.1" : listener.host
        const missing = yield* awaitCertificates(target, listener.port, fresh, certificateWait)
        if (missing.length > 0)
          yield* Effect.logWarning(
            `Edge: no HTTPS certificate yet for ${missing.join(", ")} after ${Duration.format(certificateWait)}; Caddy keeps issuing it (see ${options.dataDir}/edge/caddy.log).`
          )
      })

    const ensure: EdgeRouterShape["ensure"] = (serviceId, ensureOptions = {}) =>
      lockFor(serviceId).withPermits(1)(
        Effect.gen(function* () {
          const before = namesOf(routes.get(serviceId))
          const placed = yield* place(serviceId, ensureOptions)
          yield* awaitHttps(serviceId, before)
          return placed
        })
      )

    /** The route's entry and port (under the service's lock). */
    const place = (serviceId: string, ensureOptions: Parameters<EdgeRouterShape["ensure"]>[1] = {}) =>
      Effect.gen(function* () {
        const existing = routes.get(serviceId)
        const requested = ensureOptions.hostPort ?? 0
        if (existing !== undefined && requested !== 0 && requested !== existing.hostPort) {
          return yield* new EdgeApplyFailed({
            serviceId,
            reason: "port-mismatch",
            detail: `it listens on port ${existing.hostPort}, not ${requested}`
          })
        }
        const base = {
          serviceId,
          hostName:
            ensureOptions.hostName === undefined ? (existing?.hostName ?? null) : ensureOptions.hostName,
          domains:
            ensureOptions.domains === undefined
              ? (existing?.domains ?? [])
              : [...new Set(ensureOptions.domains)].sort(),
          simulated: ensureOptions.simulated ?? existing?.simulated ?? false,
          label: ensureOptions.label ?? existing?.label ?? serviceId,
          upstreams: existing?.upstreams ?? []
        }
        // Nothing new (every reconcile pass ensures every route): no config to build or push.
        if (
          existing !== undefined &&
          existing.hostName === base.hostName &&
          sameNames(existing.domains, base.domains) &&
          existing.simulated === base.simulated &&
          existing.label === base.label &&
          lastApplied !== null
        )
          return { hostPort: existing.hostPort }
        // A name is one service's (the database says so): declared here, it leaves any other
        // route still holding it (a service deleted or a name moved since that route was made).
        if (ensureOptions.domains !== undefined) {
          const mine = new Set(base.domains)
          for (const [id, other] of routes)
            if (id !== serviceId && other.domains.some((d) => mine.has(d)))
              routes.set(id, { ...other, domains: other.domains.filter((d) => !mine.has(d)) })
        }
        if (existing !== undefined || requested !== 0) {
          yield* change(serviceId, { ...base, hostPort: existing?.hostPort ?? requested })
          return { hostPort: existing?.hostPort ?? requested }
        }
        // A fresh port: another program may grab it between the probe and Caddy's bind; try again.
        let attempt = 0
        while (true) {
          const port = yield* freePort(host)
          const result = yield* Effect.either(change(serviceId, { ...base, hostPort: port }))
          if (result._tag === "Right") return { hostPort: port }
          if (
            result.left._tag !== "EdgeApplyFailed" ||
            result.left.reason !== "port-in-use" ||
            ++attempt >= 3
          )
            return yield* Effect.fail(result.left)
        }
      })

    const service: EdgeRouterShape = {
      kind: "caddy",
      ensure,
      setUpstreams: (serviceId, upstreams) =>
        lockFor(serviceId).withPermits(1)(
          Effect.gen(function* () {
            const existing = routes.get(serviceId)
            if (existing === undefined) {
              return yield* new EdgeApplyFailed({
                serviceId,
                reason: "rejected",
                detail: "no route yet: ensure it first"
              })
            }
            if (sameUpstreams(existing.upstreams, upstreams)) return { changed: false }
            yield* change(serviceId, { ...existing, upstreams: [...upstreams] })
            return { changed: true }
          })
        ),
      drain: (_serviceId, upstream, timeout) => {
        const address = `${upstream.host}:${upstream.port}`
        const inFlight = Admin.upstreamHealth(relay === null ? admin : back).pipe(
          Effect.map((all) => all.find((u) => u.address === address)?.num_requests ?? 0)
        )
        return inFlight.pipe(
          Effect.repeat({
            until: (n) => n === 0,
            schedule: Schedule.spaced(Duration.millis(100))
          }),
          Effect.timeoutOption(timeout),
          Effect.zipRight(inFlight),
          Effect.map((remaining) => ({ remaining }))
        )
      },
      route: (serviceId) =>
        Effect.sync(() => {
          const r = routes.get(serviceId)
          return r ? statusOf(r) : undefined
        }),
      routes: Effect.sync(() => [...routes.values()].map(statusOf)),
      remove: (serviceId) =>
        lockFor(serviceId).withPermits(1)(
          routes.has(serviceId) ? Effect.asVoid(change(serviceId, undefined)) : Effect.void
        ),
      status: Effect.sync(() => ({
        kind: "caddy" as const,
        reason,
        survivesRestart: true,
        admin: Admin.describeAdmin(admin),
        pid,
        sharedPort: shared()?.port ?? null,
        tlsPort: tls()?.port ?? null,
        domain: options.domain,
        lastError: lastError ?? sharedBlocked ?? tlsBlocked,
        routes: routes.size
      }))
    }

    // Adopted routes go back at once (and a fresh Caddy gets its shared listener).
    yield* flush(++version).pipe(
      Effect.catchAll((e) =>
        Effect.logWarning(`Edge: first apply refused: ${typeof e === "string" ? e : e.message}`)
      )
    )
    return service
  })

export const layer = (options: CaddyEdgeOptions): Layer.Layer<EdgeRouter, EdgeUnavailable> =>
  Layer.scoped(EdgeRouter, make(options))

/**
 * The embedded edge: today's in-process TCP proxy (ServiceProxy) behind the EdgeRouter contract.
 * It needs nothing installed, so the two-command quick start works anywhere, but it lives in the
 * Kyozo process: every URL stops answering while Kyozo is down. It says so in its status (read by
 * /readyz and `kyozo ps`) and in a warning at start. No host names: one stable port per service
 * (a service's custom domains are kept for its status, but only Caddy routes them by Host).
 */
import * as http from "node:http"
import * as net from "node:net"

import { Effect, Layer, type Scope } from "effect"

import {
  EdgeApplyFailed,
  EdgeRouter,
  type EdgeRouterShape,
  type EdgeRouteStatus,
  sameUpstreams,
  simulatedPage,
  type Upstream
} from "./EdgeRouter.js"
import * as ServiceProxy from "./ServiceProxy.js"

interface Entry {
  hostPort: number
  hostName: string | null
  domains: ReadonlyArray<string>
  simulated: boolean
  label: string
  upstreams: ReadonlyArray<Upstream>
  /** The little HTTP server answering a simulated service's page, when simulated. */
  page: http.Server | null
}

export interface InProcessOptions {
  /** Why the fallback was chosen, for the status and the start-up warning. */
  readonly reason: string
  readonly domain?: string
  readonly host?: string
}

const pageServer = (label: string) =>
  Effect.async<{ server: http.Server; port: number }>((resume) => {
    const body = simulatedPage(label)
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "kyozo-runtime": "mock" })
      res.end(body)
    })
    server.listen({ host: "127.0.0.1", port: 0 }, () =>
      resume(Effect.succeed({ server, port: (server.address() as net.AddressInfo).port }))
    )
  })

const closeServer = (server: http.Server) =>
  Effect.async<void>((resume) => {
    server.closeAllConnections()
    server.close(() => resume(Effect.void))
  })

export const make = (options: InProcessOptions): Effect.Effect<EdgeRouterShape, never, Scope.Scope> =>
  Effect.gen(function* () {
    const proxy = yield* ServiceProxy.makeProxy
    const entries = new Map<string, Entry>()
    // Upstreams set before the route was ensured: used once it is.
    const pending = new Map<string, ReadonlyArray<Upstream>>()
    const lock = yield* Effect.makeSemaphore(1)
    const host = options.host ?? "127.0.0.1"

    yield* Effect.addFinalizer(() =>
      Effect.forEach([...entries.values()], (e) => (e.page ? closeServer(e.page) : Effect.void), {
        discard: true
      })
    )
    yield* Effect.logWarning(
      `Edge: IN-PROCESS fallback (${options.reason}). Service URLs stop answering while Kyozo is down; install Caddy for a data plane that keeps serving.`
    )

    const statusOf = (serviceId: string, e: Entry): EdgeRouteStatus => ({
      serviceId,
      hostPort: e.hostPort,
      hostName: e.hostName,
      domains: [...e.domains],
      simulated: e.simulated,
      upstreams: e.upstreams.map((u) => ({ host: u.host, port: u.port }))
    })

    const push = (serviceId: string, e: Entry) =>
      Effect.gen(function* () {
        if (e.simulated) {
          if (e.page === null) {
            const page = yield* pageServer(e.label)
            e.page = page.server
            yield* proxy.routeAll(serviceId, [{ host: "127.0.0.1", port: page.port }])
          }
          return
        }
        if (e.page !== null) {
          yield* closeServer(e.page)
          e.page = null
        }
        yield* proxy.routeAll(serviceId, e.upstreams)
      })

    const service: EdgeRouterShape = {
      kind: "inprocess",
      ensure: (serviceId, ensureOptions = {}) =>
        lock.withPermits(1)(
          Effect.gen(function* () {
            const ensured = yield* proxy
              .ensure(serviceId, { hostPort: ensureOptions.hostPort ?? 0, host })
              .pipe(
                Effect.mapError(
                  (e) =>
                    new EdgeApplyFailed({
                      serviceId,
                      reason: e._tag === "ProxyPortMismatch" ? "port-mismatch" : "port-in-use",
                      detail: e.message
                    })
                )
              )
            const existing = entries.get(serviceId)
            const simulated = ensureOptions.simulated ?? existing?.simulated ?? false
            const entry: Entry = existing ?? {
              hostPort: ensured.hostPort,
              hostName: null,
              domains: [],
              simulated,
              label: ensureOptions.label ?? serviceId,
              upstreams: pending.get(serviceId) ?? [],
              page: null
            }
            pending.delete(serviceId)
            entry.simulated = simulated
            if (ensureOptions.label !== undefined) entry.label = ensureOptions.label
            if (ensureOptions.domains !== undefined)
              entry.domains = [...new Set(ensureOptions.domains)].sort()
            entries.set(serviceId, entry)
            yield* push(serviceId, entry)
            return { hostPort: ensured.hostPort }
          })
        ),
      setUpstreams: (serviceId, upstreams) =>
        lock.withPermits(1)(
          Effect.gen(function* () {
            const entry = entries.get(serviceId)
            if (entry === undefined) {
              // Like the proxy's route-before-listen: remembered for when the route is ensured.
              pending.set(serviceId, [...upstreams])
              return { changed: true }
            }
            if (sameUpstreams(entry.upstreams, upstreams)) return { changed: false }
            entry.upstreams = [...upstreams]
            yield* push(serviceId, entry)
            return { changed: true }
          })
        ),
      drain: (serviceId, upstream, timeout) => proxy.drain(serviceId, upstream, timeout),
      route: (serviceId) =>
        Effect.sync(() => {
          const e = entries.get(serviceId)
          return e ? statusOf(serviceId, e) : undefined
        }),
      routes: Effect.sync(() => [...entries].map(([id, e]) => statusOf(id, e))),
      remove: (serviceId) =>
        lock.withPermits(1)(
          Effect.gen(function* () {
            const e = entries.get(serviceId)
            entries.delete(serviceId)
            pending.delete(serviceId)
            if (e?.page) yield* closeServer(e.page)
            yield* proxy.remove(serviceId)
          })
        ),
      status: Effect.sync(() => ({
        kind: "inprocess" as const,
        reason: options.reason,
        survivesRestart: false,
        admin: null,
        pid: process.pid,
        sharedPort: null,
        tlsPort: null,
        domain: options.domain ?? "localhost",
        lastError: null,
        routes: entries.size
      }))
    }
    return service
  })

export const layer = (options: InProcessOptions): Layer.Layer<EdgeRouter> =>
  Layer.scoped(EdgeRouter, make(options))

/**
 * ServiceProxy: one in-process TCP proxy per service, the service's stable address.
 *
 * Why: Docker cannot change a running container's published port. So the address `kyozo deploy`
 * prints (http://127.0.0.1:<hostPort>) is a listener inside Kyozo that forwards each connection to
 * the current container's own, ephemeral, 127.0.0.1-published port. A deploy health-gates the new
 * container on its own port, then `route`s to it: new connections go there at once, connections
 * already open stay on the old container until they close (`drain`), then the old one is stopped.
 *
 * It is a plain byte pipe (no HTTP parsing): the lowest overhead, any TCP protocol works, and a
 * session (a keep-alive HTTP connection, a database session) is never moved between containers.
 * Keep-alive clients therefore reach the new version once the old one closes their connections,
 * which a well-behaved app does when it drains on SIGTERM.
 *
 * A client that connects while no upstream is routed, or whose upstream refuses, is closed: for an
 * HTTP client that is a failed request, so deploys route only to an upstream that passed health.
 * Socket errors are logged and never escape: one bad connection must not take the process down.
 */
import * as net from "node:net"

import { Context, Duration, Effect, Layer, Runtime, Schema, type Scope } from "effect"

/** Where a service's traffic goes. Kyozo's network rule: always a port published on 127.0.0.1. */
export interface ProxyUpstream {
  readonly host: string
  readonly port: number
}

export const ProxyUpstreamSchema = Schema.Struct({ host: Schema.String, port: Schema.Int })

export const ProxyStatus = Schema.Struct({
  serviceId: Schema.String,
  host: Schema.String,
  hostPort: Schema.Int,
  /** Where new connections go; null until the first `route`. */
  upstream: Schema.NullOr(ProxyUpstreamSchema),
  /** Client connections currently open through the listener. */
  openConnections: Schema.Int,
  /** Open upstream connections per upstream: the old one drains while the new one fills. */
  byUpstream: Schema.Array(Schema.Struct({ host: Schema.String, port: Schema.Int, open: Schema.Int })),
  /** Connections forwarded (upstream connected) since the listener started. */
  accepted: Schema.Int,
  /** Connections closed at once: no upstream routed, or the upstream refused. */
  rejected: Schema.Int
})
export type ProxyStatus = typeof ProxyStatus.Type

export class ProxyPortInUse extends Schema.TaggedError<ProxyPortInUse>()("ProxyPortInUse", {
  serviceId: Schema.String,
  host: Schema.String,
  port: Schema.Int
}) {
  override get message() {
    return `Port ${this.host}:${this.port} for service ${this.serviceId} is already in use by another program. Free it or give the service another port.`
  }
}

export class ProxyListenFailed extends Schema.TaggedError<ProxyListenFailed>()("ProxyListenFailed", {
  serviceId: Schema.String,
  host: Schema.String,
  port: Schema.Int,
  cause: Schema.String
}) {
  override get message() {
    return `Cannot listen on ${this.host}:${this.port} for service ${this.serviceId}: ${this.cause}`
  }
}

/** `ensure` asked for a port other than the one the service already listens on. */
export class ProxyPortMismatch extends Schema.TaggedError<ProxyPortMismatch>()("ProxyPortMismatch", {
  serviceId: Schema.String,
  listening: Schema.Int,
  requested: Schema.Int
}) {
  override get message() {
    return `Service ${this.serviceId} already listens on port ${this.listening}, not ${this.requested}. Remove its proxy first to move it.`
  }
}

export const ProxyError = Schema.Union(ProxyPortInUse, ProxyListenFailed, ProxyPortMismatch)
export type ProxyError = typeof ProxyError.Type

export interface EnsureOptions {
  /** The stable port; 0 or absent picks a free one. */
  readonly hostPort?: number
  /** Default 127.0.0.1: a service is exposed beyond the machine only when an admin says so. */
  readonly host?: string
}

export interface ServiceProxyShape {
  /** Starts the service's listener, or returns the running one (idempotent). */
  readonly ensure: (
    serviceId: string,
    options?: EnsureOptions
  ) => Effect.Effect<{ readonly hostPort: number }, ProxyError>
  /**
   * Sends new connections to `upstream` from now on (an atomic switch); open ones stay where they
   * are. May be called before `ensure`: the listener uses the route once it starts.
   */
  readonly route: (serviceId: string, upstream: ProxyUpstream) => Effect.Effect<void>
  /**
   * Several upstreams (replicas): new connections go round-robin among them; an empty list
   * forgets the route (connections are then closed at once).
   */
  readonly routeAll: (serviceId: string, upstreams: ReadonlyArray<ProxyUpstream>) => Effect.Effect<void>
  /** Waits until no open connection goes to `upstream`, or `timeout`; reports what is left. */
  readonly drain: (
    serviceId: string,
    upstream: ProxyUpstream,
    timeout: Duration.DurationInput
  ) => Effect.Effect<{ readonly remaining: number }>
  readonly current: (serviceId: string) => Effect.Effect<ProxyUpstream | undefined>
  readonly status: (serviceId: string) => Effect.Effect<ProxyStatus | undefined>
  readonly list: Effect.Effect<ReadonlyArray<ProxyStatus>>
  /** Closes the listener and every socket through it, and forgets the route. */
  readonly remove: (serviceId: string) => Effect.Effect<void>
}

export class ServiceProxy extends Context.Tag("@kyozo/core/ServiceProxy")<
  ServiceProxy,
  ServiceProxyShape
>() {}

interface Connection {
  readonly client: net.Socket
  readonly upstreamSocket: net.Socket
  readonly target: ProxyUpstream
  upstreamOpen: boolean
}

interface Listener {
  readonly serviceId: string
  readonly host: string
  hostPort: number
  readonly server: net.Server
  readonly connections: Set<Connection>
  accepted: number
  rejected: number
}

const sameUpstream = (a: ProxyUpstream, b: ProxyUpstream) => a.host === b.host && a.port === b.port

/** Upstream connects to 127.0.0.1 answer at once; this only guards against a wedged port. */
const CONNECT_TIMEOUT_MS = 10_000

const make = Effect.gen(function* () {
  const runtime = yield* Effect.runtime<never>()
  const runLog = (effect: Effect.Effect<void>) => Runtime.runFork(runtime)(effect)

  const routes = new Map<string, ReadonlyArray<ProxyUpstream>>()
  const turns = new Map<string, number>()
  const pick = (serviceId: string): ProxyUpstream | undefined => {
    const all = routes.get(serviceId)
    if (!all || all.length === 0) return undefined
    const turn = turns.get(serviceId) ?? 0
    turns.set(serviceId, (turn + 1) % all.length)
    return all[turn % all.length]
  }
  const listeners = new Map<string, Listener>()
  // Called whenever an upstream connection ends or a listener goes away: drains re-check.
  const changeWatchers = new Set<() => void>()
  const notify = () => {
    for (const watcher of [...changeWatchers]) watcher()
  }
  // ensure/remove run one at a time, so two concurrent ensures share one listener.
  const lock = yield* Effect.makeSemaphore(1)

  const openTo = (serviceId: string, upstream: ProxyUpstream) => {
    const listener = listeners.get(serviceId)
    if (!listener) return 0
    let open = 0
    for (const conn of listener.connections)
      if (conn.upstreamOpen && sameUpstream(conn.target, upstream)) open++
    return open
  }

  const forward = (listener: Listener, client: net.Socket) => {
    const target = pick(listener.serviceId)
    if (!target) {
      listener.rejected++
      client.on("error", () => {})
      client.destroy()
      return
    }
    client.setNoDelay(true)
    const upstreamSocket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true })
    upstreamSocket.setNoDelay(true)
    upstreamSocket.setTimeout(CONNECT_TIMEOUT_MS, () =>
      upstreamSocket.destroy(new Error("upstream connect timeout"))
    )
    let connected = false
    upstreamSocket.once("connect", () => {
      connected = true
      upstreamSocket.setTimeout(0)
      listener.accepted++
    })
    const conn: Connection = { client, upstreamSocket, target, upstreamOpen: true }
    listener.connections.add(conn)
    let clientClosed = false

    const forget = () => {
      if (clientClosed && !conn.upstreamOpen) listener.connections.delete(conn)
    }
    // An error on either side resets both: the byte stream is broken, half of it is useless.
    client.on("error", (error) => {
      runLog(Effect.logDebug(`proxy ${listener.serviceId}: client socket error: ${error.message}`))
      upstreamSocket.destroy()
    })
    upstreamSocket.on("error", (error) => {
      if (!connected) listener.rejected++
      runLog(
        Effect.logWarning(
          `proxy ${listener.serviceId}: upstream ${target.host}:${target.port} failed: ${error.message}`
        )
      )
      client.destroy()
    })
    // A clean close of one side ends the other once its pending bytes are written, never cutting them.
    const closeAfterFlush = (socket: net.Socket) => {
      if (socket.destroyed) return
      if (socket.writableFinished) socket.destroy()
      else {
        socket.end()
        socket.once("finish", () => socket.destroy())
      }
    }
    upstreamSocket.once("close", () => {
      conn.upstreamOpen = false
      closeAfterFlush(client)
      forget()
      notify()
    })
    client.once("close", () => {
      clientClosed = true
      closeAfterFlush(upstreamSocket)
      forget()
    })
    // pipe ends the destination when the source ends: half-close travels both ways.
    client.pipe(upstreamSocket)
    upstreamSocket.pipe(client)
  }

  const listen = (serviceId: string, host: string, port: number) =>
    Effect.async<Listener, ProxyPortInUse | ProxyListenFailed>((resume) => {
      const server = net.createServer({ allowHalfOpen: true })
      const listener: Listener = {
        serviceId,
        host,
        hostPort: port,
        server,
        connections: new Set(),
        accepted: 0,
        rejected: 0
      }
      const onListenError = (error: NodeJS.ErrnoException) => {
        server.close()
        resume(
          Effect.fail(
            error.code === "EADDRINUSE"
              ? new ProxyPortInUse({ serviceId, host, port })
              : new ProxyListenFailed({ serviceId, host, port, cause: error.message })
          )
        )
      }
      server.once("error", onListenError)
      server.listen({ host, port }, () => {
        server.off("error", onListenError)
        // After listening, errors (e.g. EMFILE on accept) are logged; the listener stays up.
        server.on("error", (error) =>
          runLog(Effect.logWarning(`proxy ${serviceId}: listener error: ${error.message}`))
        )
        server.on("connection", (client) => forward(listener, client))
        listener.hostPort = (server.address() as net.AddressInfo).port
        resume(Effect.succeed(listener))
      })
      return Effect.sync(() => server.close())
    })

  const close = (listener: Listener) =>
    Effect.async<void>((resume) => {
      listener.server.close(() => resume(Effect.void))
      for (const conn of listener.connections) {
        conn.client.destroy()
        conn.upstreamSocket.destroy()
      }
    }).pipe(Effect.timeoutOption(Duration.seconds(5)), Effect.asVoid)

  const statusOf = (listener: Listener): ProxyStatus => {
    const byUpstream = new Map<string, { host: string; port: number; open: number }>()
    for (const conn of listener.connections) {
      if (!conn.upstreamOpen) continue
      const key = `${conn.target.host}:${conn.target.port}`
      const entry = byUpstream.get(key) ?? { host: conn.target.host, port: conn.target.port, open: 0 }
      entry.open++
      byUpstream.set(key, entry)
    }
    const upstream = routes.get(listener.serviceId)?.[0]
    return {
      serviceId: listener.serviceId,
      host: listener.host,
      hostPort: listener.hostPort,
      upstream: upstream ? { host: upstream.host, port: upstream.port } : null,
      openConnections: listener.connections.size,
      byUpstream: [...byUpstream.values()],
      accepted: listener.accepted,
      rejected: listener.rejected
    }
  }

  const remove = (serviceId: string) =>
    Effect.suspend(() => {
      routes.delete(serviceId)
      turns.delete(serviceId)
      const listener = listeners.get(serviceId)
      if (!listener) return Effect.void
      listeners.delete(serviceId)
      return close(listener).pipe(Effect.ensuring(Effect.sync(notify)))
    })

  yield* Effect.addFinalizer(() =>
    Effect.forEach([...listeners.keys()], remove, { concurrency: "unbounded", discard: true })
  )

  const service: ServiceProxyShape = {
    ensure: (serviceId, options) =>
      lock.withPermits(1)(
        Effect.suspend((): Effect.Effect<{ readonly hostPort: number }, ProxyError> => {
          const requested = options?.hostPort ?? 0
          const existing = listeners.get(serviceId)
          if (existing) {
            return requested !== 0 && requested !== existing.hostPort
              ? Effect.fail(new ProxyPortMismatch({ serviceId, listening: existing.hostPort, requested }))
              : Effect.succeed({ hostPort: existing.hostPort })
          }
          return listen(serviceId, options?.host ?? "127.0.0.1", requested).pipe(
            Effect.tap((listener) => Effect.sync(() => listeners.set(serviceId, listener))),
            Effect.map((listener) => ({ hostPort: listener.hostPort }))
          )
        })
      ),
    route: (serviceId, upstream) =>
      Effect.sync(() => {
        routes.set(serviceId, [{ host: upstream.host, port: upstream.port }])
      }),
    routeAll: (serviceId, upstreams) =>
      Effect.sync(() => {
        if (upstreams.length === 0) routes.delete(serviceId)
        else
          routes.set(
            serviceId,
            upstreams.map((u) => ({ host: u.host, port: u.port }))
          )
      }),
    drain: (serviceId, upstream, timeout) =>
      Effect.async<void>((resume) => {
        const check = () => {
          if (openTo(serviceId, upstream) === 0) {
            changeWatchers.delete(check)
            resume(Effect.void)
          }
        }
        changeWatchers.add(check)
        check()
        return Effect.sync(() => changeWatchers.delete(check))
      }).pipe(
        Effect.timeoutOption(timeout),
        Effect.map(() => ({ remaining: openTo(serviceId, upstream) }))
      ),
    current: (serviceId) => Effect.sync(() => routes.get(serviceId)?.[0]),
    status: (serviceId) =>
      Effect.sync(() => {
        const listener = listeners.get(serviceId)
        return listener ? statusOf(listener) : undefined
      }),
    list: Effect.sync(() => [...listeners.values()].map(statusOf)),
    remove: (serviceId) => lock.withPermits(1)(remove(serviceId))
  }
  return service
})

/** Closing the layer's scope closes every listener and every socket through them. */
export const layer: Layer.Layer<ServiceProxy> = Layer.scoped(ServiceProxy, make)

/** The proxy itself, for the in-process edge (which owns its scope). */
export const makeProxy: Effect.Effect<ServiceProxyShape, never, Scope.Scope> = make

/**
 * ServiceProxy over real sockets on 127.0.0.1 (no Docker): forwarding both ways with half-close,
 * zero failed requests across a switch (fresh connections and keep-alive agents), drain of a slow
 * in-flight request, idempotent ensure and port errors, remove, and release on scope close.
 */
import * as http from "node:http"
import * as net from "node:net"

import { describe, expect, it } from "@effect/vitest"
import * as ServiceProxy from "@kyozo/core/edge/ServiceProxy"
import { ProxyPortInUse, ProxyPortMismatch } from "@kyozo/core/edge/ServiceProxy"
import { Context, Duration, Effect, Exit, Fiber, Layer, Ref, Scope } from "effect"

interface Upstream {
  readonly port: number
  readonly upstream: { readonly host: "127.0.0.1"; readonly port: number }
  /** Answers with `Connection: close` from now on, as an app draining on SIGTERM does. */
  readonly startDraining: () => void
  readonly close: Effect.Effect<void>
}

/** A node:http server answering `label` (after `delayMs`); POST echoes the body back. */
const httpUpstream = (label: string, options: { delayMs?: number } = {}) =>
  Effect.acquireRelease(
    Effect.async<Upstream>((resume) => {
      let draining = false
      const server = http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          const body = req.method === "POST" ? Buffer.concat(chunks) : Buffer.from(label)
          const answer = () => {
            if (draining) res.setHeader("Connection", "close")
            res.setHeader("X-Upstream", label)
            res.end(body)
          }
          if (options.delayMs) setTimeout(answer, options.delayMs)
          else answer()
        })
      })
      const close = Effect.async<void>((done) => {
        server.close(() => done(Effect.void))
        server.closeAllConnections()
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        resume(
          Effect.succeed({
            port,
            upstream: { host: "127.0.0.1", port },
            startDraining: () => {
              draining = true
            },
            close
          })
        )
      })
    }),
    (upstream) => upstream.close
  )

/** One HTTP request to 127.0.0.1:port; fails on any socket error or a non-200 answer. */
const request = (
  port: number,
  options: { agent?: http.Agent | false; method?: string; body?: Buffer } = {}
) =>
  Effect.async<{ body: string; raw: Buffer; upstream: string }, Error>((resume) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: "/",
        method: options.method ?? "GET",
        agent: options.agent ?? false,
        timeout: 5000
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () =>
          res.statusCode === 200
            ? resume(
                Effect.succeed({
                  body: Buffer.concat(chunks).toString(),
                  raw: Buffer.concat(chunks),
                  upstream: String(res.headers["x-upstream"])
                })
              )
            : resume(Effect.fail(new Error(`status ${res.statusCode}`)))
        )
        res.on("error", (error) => resume(Effect.fail(error)))
      }
    )
    req.on("timeout", () => req.destroy(new Error("request timeout")))
    req.on("error", (error) => resume(Effect.fail(error)))
    req.end(options.body)
  })

/** "refused" when nothing listens on the port, "connected" otherwise. */
const probe = (port: number) =>
  Effect.async<"refused" | "connected" | "error">((resume) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed("connected"))
    })
    socket.once("error", (error: NodeJS.ErrnoException) =>
      resume(Effect.succeed(error.code === "ECONNREFUSED" ? "refused" : "error"))
    )
  })

/** A raw client connection kept open; `closed` resolves when the peer closes it. */
const openRaw = (port: number) =>
  Effect.acquireRelease(
    Effect.async<{ socket: net.Socket; closed: Promise<void> }>((resume) => {
      const socket = net.connect({ host: "127.0.0.1", port })
      const closed = new Promise<void>((done) => socket.once("close", () => done()))
      socket.on("error", () => {})
      socket.once("connect", () => resume(Effect.succeed({ socket, closed })))
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

const sleepLoop = <A>(effect: Effect.Effect<A>, predicate: (a: A) => boolean): Effect.Effect<A> =>
  Effect.flatMap(effect, (a) =>
    predicate(a)
      ? Effect.succeed(a)
      : Effect.zipRight(Effect.sleep("10 millis"), sleepLoop(effect, predicate))
  )

/** Polls (real time) until `predicate` holds; dies after 5 s. */
const waitFor = <A>(effect: Effect.Effect<A>, predicate: (a: A) => boolean) =>
  sleepLoop(effect, predicate).pipe(Effect.timeout(Duration.seconds(5)), Effect.orDie)

interface Outcome {
  readonly ok: boolean
  readonly upstream: string
  readonly startedAfterSwitch: boolean
  readonly error?: string
}

/**
 * `workers` clients each sending requests back to back until `total` are done; `onCount` runs the
 * switch once `switchAt` requests have completed. Returns every outcome.
 */
const clientLoop = (
  port: number,
  options: {
    readonly total: number
    readonly workers: number
    readonly agent: http.Agent | false
    readonly switchAt: number
    readonly doSwitch: Effect.Effect<void>
  }
) =>
  Effect.gen(function* () {
    const outcomes = yield* Ref.make<Array<Outcome>>([])
    const switched = yield* Ref.make(false)
    const started = yield* Ref.make(0)
    const worker = Effect.gen(function* () {
      while (true) {
        const n = yield* Ref.getAndUpdate(started, (k) => k + 1)
        if (n >= options.total) return
        const after = yield* Ref.get(switched)
        const outcome = yield* request(port, { agent: options.agent }).pipe(
          Effect.match({
            onFailure: (error): Outcome => ({
              ok: false,
              upstream: "",
              startedAfterSwitch: after,
              error: error.message
            }),
            onSuccess: (res): Outcome => ({ ok: true, upstream: res.body, startedAfterSwitch: after })
          })
        )
        yield* Ref.update(outcomes, (all) => [...all, outcome])
      }
    })
    const switcher = Effect.gen(function* () {
      yield* waitFor(Ref.get(outcomes), (all) => all.length >= options.switchAt)
      yield* options.doSwitch
      yield* Ref.set(switched, true)
    })
    yield* Effect.all([switcher, ...Array.from({ length: options.workers }, () => worker)], {
      concurrency: "unbounded",
      discard: true
    })
    return yield* Ref.get(outcomes)
  })

const withProxy = <A, E>(effect: Effect.Effect<A, E, ServiceProxy.ServiceProxy | Scope.Scope>) =>
  effect.pipe(Effect.provide(ServiceProxy.layer))

describe("ServiceProxy", () => {
  it.scopedLive("forwards requests both ways to the routed upstream", () =>
    withProxy(
      Effect.gen(function* () {
        const proxy = yield* ServiceProxy.ServiceProxy
        const v1 = yield* httpUpstream("v1")
        const { hostPort } = yield* proxy.ensure("svc-forward")
        expect(hostPort).toBeGreaterThan(0)
        yield* proxy.route("svc-forward", v1.upstream)
        expect(yield* proxy.current("svc-forward")).toEqual(v1.upstream)

        const res = yield* request(hostPort)
        expect(res.body).toBe("v1")

        // 2 MB each way: pipe backpressure, nothing lost or reordered.
        const payload = Buffer.alloc(2 * 1024 * 1024, 0)
        for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) % 251
        const echoed = yield* request(hostPort, { method: "POST", body: payload })
        expect(echoed.raw.equals(payload)).toBe(true)

        const status = yield* proxy.status("svc-forward")
        expect(status?.hostPort).toBe(hostPort)
        expect(status?.host).toBe("127.0.0.1")
        expect(status?.upstream).toEqual(v1.upstream)
        expect(status?.accepted).toBe(2)
        expect(status?.rejected).toBe(0)
      })
    )
  )

  it.scopedLive("carries a half-close: the client's FIN reaches the upstream, the answer comes back", () =>
    withProxy(
      Effect.gen(function* () {
        const proxy = yield* ServiceProxy.ServiceProxy
        // A raw TCP upstream that reads until the client's FIN, then answers and closes.
        const upstreamPort = yield* Effect.acquireRelease(
          Effect.async<{ port: number; server: net.Server }>((resume) => {
            const server = net.createServer({ allowHalfOpen: true }, (socket) => {
              const chunks: Array<Buffer> = []
              socket.on("data", (chunk: Buffer) => chunks.push(chunk))
              socket.on("end", () => {
                const all = Buffer.concat(chunks)
                socket.end(Buffer.concat([Buffer.from(`got ${all.length}:`), all]))
              })
            })
            server.listen(0, "127.0.0.1", () =>
              resume(Effect.succeed({ port: (server.address() as net.AddressInfo).port, server }))
            )
          }),
          ({ server }) => Effect.sync(() => server.close())
        ).pipe(Effect.map(({ port }) => port))
        const { hostPort } = yield* proxy.ensure("svc-raw")
        yield* proxy.route("svc-raw", { host: "127.0.0.1", port: upstreamPort })

        const payload = Buffer.alloc(1024 * 1024)
        for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) % 256
        const answer = yield* Effect.async<Buffer, Error>((resume) => {
          const socket = net.connect({ host: "127.0.0.1", port: hostPort, allowHalfOpen: true })
          const chunks: Array<Buffer> = []
          socket.on("data", (chunk: Buffer) => chunks.push(chunk))
          socket.on("end", () => resume(Effect.succeed(Buffer.concat(chunks))))
          socket.on("error", (error) => resume(Effect.fail(error)))
          socket.end(payload)
        })
        const prefix = Buffer.from(`got ${payload.length}:`)
        expect(answer.subarray(0, prefix.length).toString()).toBe(prefix.toString())
        expect(answer.subarray(prefix.length).equals(payload)).toBe(true)
        yield* waitFor(proxy.status("svc-raw"), (s) => s?.openConnections === 0)
      })
    )
  )

  it.scopedLive("closes clients while no upstream is routed or the upstream refuses, and keeps running", () =>
    withProxy(
      Effect.gen(function* () {
        const proxy = yield* ServiceProxy.ServiceProxy
        const { hostPort } = yield* proxy.ensure("svc-empty")
        const noRoute = yield* Effect.either(request(hostPort))
        expect(noRoute._tag).toBe("Left")

        // A port with nothing behind it: the connect is refused.
        const dead = yield* httpUpstream("dead")
        yield* dead.close
        yield* proxy.route("svc-empty", dead.upstream)
        const refused = yield* Effect.either(request(hostPort))
        expect(refused._tag).toBe("Left")
        const status = yield* waitFor(proxy.status("svc-empty"), (s) => s?.rejected === 2)
        expect(status?.accepted).toBe(0)

        // Still serving: route to a live upstream and the next request works.
        const v1 = yield* httpUpstream("v1")
        yield* proxy.route("svc-empty", v1.upstream)
        expect((yield* request(hostPort)).body).toBe("v1")
      })
    )
  )

  it.scopedLive("switches fresh connections with zero failed requests", () =>
    withProxy(
      Effect.gen(function* () {
        const proxy = yield* ServiceProxy.ServiceProxy
        const v1 = yield* httpUpstream("v1")
        const v2 = yield* httpUpstream("v2")
        const { hostPort } = yield* proxy.ensure("svc-switch")
        yield* proxy.route("svc-switch", v1.upstream)

        const outcomes = yield* clientLoop(hostPort, {
          total: 300,
          workers: 6,
          agent: false,
          switchAt: 120,
          doSwitch: Effect.gen(function* () {
            yield* proxy.route("svc-switch", v2.upstream)
            const { remaining } = yield* proxy.drain("svc-switch", v1.upstream, "5 seconds")
            expect(remaining).toBe(0)
            // The old version stops only after the drain.
            yield* v1.close
          })
        })
        expect(outcomes.length).toBe(300)
        expect(outcomes.filter((o) => !o.ok)).toEqual([])
        expect(outcomes.filter((o) => o.upstream === "v1").length).toBeGreaterThanOrEqual(120)
        const afterSwitch = outcomes.filter((o) => o.startedAfterSwitch)
        expect(afterSwitch.length).toBeGreaterThan(100)
        expect(afterSwitch.every((o) => o.upstream === "v2")).toBe(true)
      })
    )
  )

  it.scopedLive("switches keep-alive clients with zero failed requests once the old version drains", () =>
    withProxy(
      Effect.gen(function* () {
        const proxy = yield* ServiceProxy.ServiceProxy
        const v1 = yield* httpUpstream("v1")
        const v2 = yield* httpUpstream("v2")
        const { hostPort } = yield* proxy.ensure("svc-keepalive")
        yield* proxy.route("svc-keepalive", v1.upstream)
        const agent = yield* Effect.acquireRelease(
          Effect.sync(() => new http.Agent({ keepAlive: true, maxSockets: 4 })),
          (agent) => Effect.sync(() => agent.destroy())
        )

        const outcomes = yield* clientLoop(hostPort, {
          total: 300,
          workers: 4,
          agent,
          switchAt: 120,
          doSwitch: Effect.gen(function* () {
            // Before the switch every request reused the same few sockets, all on v1.
            const before = yield* proxy.status("svc-keepalive")
            expect(before?.accepted).toBeLessThanOrEqual(4)
            yield* proxy.route("svc-keepalive", v2.upstream)
            // The old container drains: it closes each connection after its current answer.
            v1.startDraining()
            const { remaining } = yield* proxy.drain("svc-keepalive", v1.upstream, "5 seconds")
            expect(remaining).toBe(0)
            yield* v1.close
          })
        })
        expect(outcomes.length).toBe(300)
        expect(outcomes.filter((o) => !o.ok)).toEqual([])
        const afterSwitch = outcomes.filter((o) => o.startedAfterSwitch)
        expect(afterSwitch.length).toBeGreaterThan(100)
        expect(afterSwitch.every((o) => o.upstream === "v2")).toBe(true)
        // Keep-alive really happened: far fewer connections than requests.
        const status = yield* proxy.status("svc-keepalive")
        expect(status?.accepted).toBeLessThan(30)
      })
    )
  )

  it.scopedLive("drain waits for a slow in-flight request on the old upstream, which succeeds", () =>
    withProxy(
      Effect.gen(function* () {
        const proxy = yield* ServiceProxy.ServiceProxy
        const slow = yield* httpUpstream("v1", { delayMs: 300 })
        const v2 = yield* httpUpstream("v2")
        const { hostPort } = yield* proxy.ensure("svc-drain")
        yield* proxy.route("svc-drain", slow.upstream)

        const inFlight = yield* Effect.fork(request(hostPort))
        yield* waitFor(proxy.status("svc-drain"), (s) =>
          (s?.byUpstream ?? []).some((u) => u.port === slow.port && u.open === 1)
        )
        yield* proxy.route("svc-drain", v2.upstream)
        // New connections go to v2 at once, while the slow one is still open on v1.
        expect((yield* request(hostPort)).body).toBe("v2")

        const started = Date.now()
        const { remaining } = yield* proxy.drain("svc-drain", slow.upstream, "5 seconds")
        const waited = Date.now() - started
        expect(remaining).toBe(0)
        expect(waited).toBeGreaterThan(100)
        expect(waited).toBeLessThan(3000)
        const res = yield* Fiber.join(inFlight)
        expect(res.body).toBe("v1")
        // Nothing left on v1; draining an upstream with no connections returns at once.
        expect(yield* proxy.drain("svc-drain", slow.upstream, "5 seconds")).toEqual({ remaining: 0 })
      })
    )
  )

  it.scopedLive("drain gives up at the timeout and reports the connections left", () =>
    withProxy(
      Effect.gen(function* () {
        const proxy = yield* ServiceProxy.ServiceProxy
        const v1 = yield* httpUpstream("v1")
        const v2 = yield* httpUpstream("v2")
        const { hostPort } = yield* proxy.ensure("svc-stuck")
        yield* proxy.route("svc-stuck", v1.upstream)
        // An idle connection that never closes (a keep-alive client of an app that does not drain).
        yield* openRaw(hostPort)
        yield* waitFor(proxy.status("svc-stuck"), (s) => s?.byUpstream[0]?.open === 1)
        yield* proxy.route("svc-stuck", v2.upstream)

        const started = Date.now()
        const { remaining } = yield* proxy.drain("svc-stuck", v1.upstream, "250 millis")
        expect(remaining).toBe(1)
        expect(Date.now() - started).toBeGreaterThanOrEqual(200)
        const status = yield* proxy.status("svc-stuck")
        expect(status?.byUpstream).toEqual([{ host: "127.0.0.1", port: v1.port, open: 1 }])
        expect(status?.upstream).toEqual(v2.upstream)

        // Stopping the old version closes that connection; the client sees the close.
        yield* v1.close
        yield* waitFor(proxy.status("svc-stuck"), (s) => s?.openConnections === 0)
      })
    )
  )

  it.scopedLive("ensure is idempotent, honours a stable port, and reports a taken port", () =>
    withProxy(
      Effect.gen(function* () {
        const proxy = yield* ServiceProxy.ServiceProxy
        const [a, b, c] = yield* Effect.all(
          [proxy.ensure("svc-idem"), proxy.ensure("svc-idem"), proxy.ensure("svc-idem")],
          { concurrency: "unbounded" }
        )
        expect(b.hostPort).toBe(a.hostPort)
        expect(c.hostPort).toBe(a.hostPort)
        expect((yield* proxy.ensure("svc-idem", { hostPort: a.hostPort })).hostPort).toBe(a.hostPort)
        expect((yield* proxy.list).filter((s) => s.serviceId === "svc-idem").length).toBe(1)

        const mismatch = yield* Effect.flip(proxy.ensure("svc-idem", { hostPort: a.hostPort + 1 }))
        expect(mismatch).toBeInstanceOf(ProxyPortMismatch)

        // A port held by another listener.
        const taken = yield* httpUpstream("squatter")
        const error = yield* Effect.flip(proxy.ensure("svc-taken", { hostPort: taken.port }))
        expect(error).toBeInstanceOf(ProxyPortInUse)
        expect(error._tag).toBe("ProxyPortInUse")
        expect(yield* proxy.status("svc-taken")).toBeUndefined()
        // The failed ensure left nothing behind: the squatter still answers.
        expect((yield* request(taken.port)).body).toBe("squatter")

        // Another service's listener port counts as taken too.
        const other = yield* Effect.flip(proxy.ensure("svc-taken", { hostPort: a.hostPort }))
        expect(other).toBeInstanceOf(ProxyPortInUse)

        // A stable port that is free is used as asked.
        yield* taken.close
        const stable = yield* proxy.ensure("svc-stable", { hostPort: taken.port })
        expect(stable.hostPort).toBe(taken.port)
        expect((yield* proxy.list).map((s) => s.serviceId).sort()).toEqual(["svc-idem", "svc-stable"])
      })
    )
  )

  it.scopedLive("remove closes the port and the connections through it", () =>
    withProxy(
      Effect.gen(function* () {
        const proxy = yield* ServiceProxy.ServiceProxy
        const v1 = yield* httpUpstream("v1")
        const { hostPort } = yield* proxy.ensure("svc-remove")
        yield* proxy.route("svc-remove", v1.upstream)
        expect(yield* probe(hostPort)).toBe("connected")
        const held = yield* openRaw(hostPort)
        yield* waitFor(proxy.status("svc-remove"), (s) => s?.byUpstream[0]?.open === 1)

        yield* proxy.remove("svc-remove")
        expect(yield* probe(hostPort)).toBe("refused")
        yield* Effect.promise(() => held.closed)
        expect(yield* proxy.current("svc-remove")).toBeUndefined()
        expect(yield* proxy.status("svc-remove")).toBeUndefined()
        expect(yield* proxy.drain("svc-remove", v1.upstream, "1 second")).toEqual({ remaining: 0 })
        // Removing twice is fine; ensure afterwards starts a fresh listener.
        yield* proxy.remove("svc-remove")
        const again = yield* proxy.ensure("svc-remove")
        expect(yield* probe(again.hostPort)).toBe("connected")
      })
    )
  )

  it.scopedLive("closing the layer's scope releases every listener and socket, and wakes drains", () =>
    Effect.gen(function* () {
      const v1 = yield* httpUpstream("v1")
      const scope = yield* Scope.make()
      const proxy = yield* Layer.buildWithScope(ServiceProxy.layer, scope).pipe(
        Effect.map((ctx) => Context.get(ctx, ServiceProxy.ServiceProxy))
      )
      const a = yield* proxy.ensure("svc-a")
      const b = yield* proxy.ensure("svc-b")
      yield* proxy.route("svc-a", v1.upstream)
      yield* proxy.route("svc-b", v1.upstream)
      const held = yield* openRaw(a.hostPort)
      yield* waitFor(proxy.status("svc-a"), (s) => s?.byUpstream[0]?.open === 1)
      const drain = yield* Effect.fork(proxy.drain("svc-a", v1.upstream, "30 seconds"))

      yield* Scope.close(scope, Exit.void)
      expect(yield* probe(a.hostPort)).toBe("refused")
      expect(yield* probe(b.hostPort)).toBe("refused")
      yield* Effect.promise(() => held.closed)
      const drained = yield* Fiber.join(drain).pipe(Effect.timeout("2 seconds"))
      expect(drained).toEqual({ remaining: 0 })
      // The upstream itself is untouched.
      expect((yield* request(v1.port)).body).toBe("v1")
    })
  )
})

/**
 * The EdgeRouter contract, run against both layers: a real Caddy (driven through its admin API on
 * a unix socket) and the in-process fallback. Upstreams are small HTTP servers on 127.0.0.1.
 * Then what only Caddy does: a dead replica hidden by retries, host names on the shared port, and
 * routes that keep serving after the layer that made them is gone (Kyozo down), adopted again.
 */
import * as fs from "node:fs"
import * as http from "node:http"
import type * as net from "node:net"

import * as CaddyAdmin from "@kyozo/core/edge/CaddyAdmin"
import * as CaddyEdge from "@kyozo/core/edge/CaddyEdge"
import * as CertificateReadiness from "@kyozo/core/edge/CertificateReadiness"
import { EdgeRouter, type EdgeRouterShape } from "@kyozo/core/edge/EdgeRouter"
import * as InProcessEdge from "@kyozo/core/edge/InProcessEdge"
import * as ReloadSafety from "@kyozo/core/edge/ReloadSafety"
import { Duration, Effect, Exit, Layer, Option, Scope } from "effect"
import { afterAll, describe, expect, it } from "vitest"

import { caddyLayer, caddySuite, edgeDataDir, httpGet as get, httpsGet } from "./support/edge.js"
import { freePort, waitFor } from "./support/server.js"

const caddy = caddySuite("edge-router (Caddy)")

const servers: Array<http.Server> = []
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  }
})

/** An upstream answering `name` on every request. */
const upstream = async (name: string) => {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" })
    res.end(name)
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return { host: "127.0.0.1", port: (server.address() as net.AddressInfo).port, server }
}

/** Runs each client in a loop while `changes` runs; every answer ("ok", or what went wrong). */
const pollDuring = async (clients: ReadonlyArray<() => Promise<string>>, changes: () => Promise<void>) => {
  let polling = true
  const results: Array<string> = []
  const loops = clients.map(async (one) => {
    while (polling) results.push(await one())
  })
  try {
    await changes()
  } finally {
    polling = false
    await Promise.all(loops)
  }
  return results
}

/** Builds the edge in a scope of its own; `close` is the end of the Kyozo process using it. */
const open = async (edgeLayer: Layer.Layer<EdgeRouter, unknown>) => {
  const scope = Effect.runSync(Scope.make())
  const ctx = await Effect.runPromise(Layer.buildWithScope(edgeLayer, scope))
  const edge: EdgeRouterShape = ctx.unsafeMap.get(EdgeRouter.key) as EdgeRouterShape
  const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
  return { edge, run, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const layers: Array<[string, boolean, () => Layer.Layer<EdgeRouter, unknown>]> = [
  ["in-process", true, () => InProcessEdge.layer({ reason: "test" })],
  ["caddy", caddy.available, () => caddyLayer()]
]

for (const [name, enabled, makeLayer] of layers) {
  describe.skipIf(!enabled)(`EdgeRouter contract: ${name}`, () => {
    it("gives a stable port, routes, switches, balances, and pushes only changes", async () => {
      const { edge, run, close } = await open(makeLayer())
      try {
        const a = await upstream("a")
        const b = await upstream("b")
        const { hostPort } = await run(edge.ensure("svc1", { label: "web" }))
        expect(hostPort).toBeGreaterThan(0)
        expect((await run(edge.ensure("svc1"))).hostPort).toBe(hostPort)

        // No upstream: never a 2xx.
        expect((await get(hostPort)).status).not.toBe(200)

        expect((await run(edge.setUpstreams("svc1", [a]))).changed).toBe(true)
        expect(await get(hostPort)).toMatchObject({ status: 200, body: "a" })
        expect((await run(edge.setUpstreams("svc1", [{ host: a.host, port: a.port }]))).changed).toBe(false)

        await run(edge.setUpstreams("svc1", [b]))
        expect(await get(hostPort)).toMatchObject({ status: 200, body: "b" })

        await run(edge.setUpstreams("svc1", [a, b]))
        const seen = new Set<string>()
        for (let i = 0; i < 10; i++) seen.add((await get(hostPort)).body)
        expect([...seen].sort()).toEqual(["a", "b"])
        expect((await run(edge.route("svc1")))?.upstreams).toHaveLength(2)

        await run(edge.setUpstreams("svc1", []))
        expect((await get(hostPort)).status).not.toBe(200)
      } finally {
        await close()
      }
    })

    it("honours a requested port, refuses to move it, and frees it on remove", async () => {
      const { edge, run, close } = await open(makeLayer())
      try {
        const port = await freePort()
        expect((await run(edge.ensure("svc2", { hostPort: port }))).hostPort).toBe(port)
        const moved = await Effect.runPromise(Effect.flip(edge.ensure("svc2", { hostPort: port + 1 })))
        expect(moved).toMatchObject({ _tag: "EdgeApplyFailed", reason: "port-mismatch" })
        const a = await upstream("two")
        await run(edge.setUpstreams("svc2", [a]))
        expect((await get(port)).body).toBe("two")
        await run(edge.remove("svc2"))
        expect(await run(edge.route("svc2"))).toBeUndefined()
        expect((await get(port)).status).toBe(0)
      } finally {
        await close()
      }
    })

    it("answers a simulated service with a page that says so", async () => {
      const { edge, run, close } = await open(makeLayer())
      try {
        const { hostPort } = await run(edge.ensure("svc3", { simulated: true, label: "sim-web" }))
        const res = await get(hostPort)
        expect(res.status).toBe(200)
        expect(res.headers["kyozo-runtime"]).toBe("mock")
        expect(res.body).toContain("sim-web")
        expect(res.body).toContain("simulated")
      } finally {
        await close()
      }
    })

    it("reports what it is", async () => {
      const { edge, run, close } = await open(makeLayer())
      try {
        const status = await run(edge.status)
        expect(status.kind).toBe(name === "caddy" ? "caddy" : "inprocess")
        expect(status.survivesRestart).toBe(name === "caddy")
      } finally {
        await close()
      }
    })
  })
}

describe.skipIf(!caddy.available)("Caddy edge", () => {
  it("hides a dead upstream: zero failed requests while one of two is gone", async () => {
    const { edge, run, close } = await open(caddyLayer())
    try {
      const a = await upstream("a")
      const b = await upstream("b")
      const { hostPort } = await run(edge.ensure("lb", {}))
      await run(edge.setUpstreams("lb", [a, b]))
      b.server.closeAllConnections()
      await new Promise((r) => b.server.close(r))
      let failed = 0
      for (let i = 0; i < 30; i++) if ((await get(hostPort)).status !== 200) failed++
      expect(failed).toBe(0)
    } finally {
      await close()
    }
  })

  it("route changes under polling reset no connection (Caddy's reloads rebind every listener)", async () => {
    const { edge, run, close } = await open(caddyLayer())
    try {
      const a = await upstream("ok")
      const b = await upstream("ok")
      const c = await upstream("ok")
      const { hostPort } = await run(edge.ensure("reload", {}))
      await run(edge.setUpstreams("reload", [a, b, c]))
      // The edge turned the kernel setting on (as root in the host's network namespace) or said why not.
      const status = await run(edge.status)
      const safety = await run(ReloadSafety.ensure())
      if (safety._tag === "Unsafe") expect(status.reason).toContain("tcp_migrate_req")
      const poll = () => get(hostPort).then((r) => (r.status === 200 ? r.body : `${r.status} ${r.body}`))
      // Each change is one whole-config load: a replica lost, then back, twenty times.
      const results = await pollDuring([poll, poll, poll], async () => {
        for (let i = 0; i < 40; i++) {
          await run(edge.setUpstreams("reload", i % 2 === 0 ? [a, b] : [a, b, c]))
          await new Promise((r) => setTimeout(r, 40))
        }
      })
      const failed = results.filter((r) => r !== "ok")
      console.info(`[edge-router] 40 route changes: ${results.length} requests, ${failed.length} failed`)
      expect(results.length).toBeGreaterThan(200)
      if (safety._tag !== "Unsafe") expect(failed).toEqual([])
    } finally {
      await close()
    }
  })

  it("upstream changes leave the public listeners alone: kept-alive, fresh and POST clients lose nothing", async () => {
    const dataDir = edgeDataDir()
    const { edge, run, close } = await open(caddyLayer({ dataDir }))
    try {
      const a = await upstream("ok")
      const b = await upstream("ok")
      const { hostPort } = await run(edge.ensure("steady", {}))
      await run(edge.setUpstreams("steady", [a]))
      const front = () => Effect.runPromise(CaddyAdmin.currentConfig(CaddyAdmin.defaultAdmin(dataDir)))
      const before = JSON.stringify(await front())
      // Clients as users have them: a kept-alive agent (browsers, fetch) and fresh connections.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 2 })
      const kept = (port: number) =>
        new Promise<string>((resolve) => {
          const req = http.get({ host: "127.0.0.1", port, path: "/", agent, timeout: 8000 }, (res) => {
            let body = ""
            res.setEncoding("utf8")
            res.on("data", (c: string) => (body += c))
            res.on("end", () => resolve(res.statusCode === 200 ? body : `${res.statusCode} ${body}`))
          })
          req.on("timeout", () => req.destroy(new Error("timeout")))
          req.on("error", (e: NodeJS.ErrnoException) => resolve(`${e.code ?? String(e)}`))
        })
      const fetchPost = async () => {
        const r = await fetch(`http://127.0.0.1:${hostPort}/`, { method: "POST", body: "form=1" }).catch(
          (e: unknown) => e
        )
        if (!(r instanceof Response)) return String((r as { cause?: unknown }).cause ?? r)
        const body = await r.text()
        return r.status === 200 ? body : `${r.status} ${body}`
      }
      /** One request with a body (or a HEAD) on a connection of its own. */
      const fresh = (method: string, body?: string) =>
        new Promise<string>((resolve) => {
          const headers = body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) }
          const req = http.request(
            { host: "127.0.0.1", port: hostPort, path: "/", method, headers, agent: false, timeout: 8000 },
            (res) => {
              let text = ""
              res.setEncoding("utf8")
              res.on("data", (c: string) => (text += c))
              res.on("end", () =>
                resolve(
                  res.statusCode === 200 && text === (method === "HEAD" ? "" : "ok")
                    ? "ok"
                    : `${method} ${res.statusCode} [${text}]`
                )
              )
            }
          )
          req.on("timeout", () => req.destroy(new Error("timeout")))
          req.on("error", (e: NodeJS.ErrnoException) => resolve(`${method} ${e.code ?? String(e)}`))
          req.end(body)
        })
      const clients = [
        () => kept(hostPort),
        () => kept(hostPort),
        async () => {
          const r = await get(hostPort)
          return r.status === 200 ? r.body : `${r.status} ${r.body}`
        },
        // A POST is never sent twice by a proxy: it must not meet a connection the reload closed.
        // The upstream answers before reading the body (as many apps do): a 200 with an empty
        // body (the relay's connection closed under the answer) counts as a failure too.
        fetchPost,
        fetchPost,
        () => fresh("POST", "x".repeat(20_000)),
        () => fresh("HEAD")
      ]
      // A rollout's steps, forty times: the new upstream in, the old one out.
      const results = await pollDuring(clients, async () => {
        for (let i = 0; i < 40; i++) {
          await run(edge.setUpstreams("steady", i % 2 === 0 ? [a, b] : [i % 4 === 1 ? b : a]))
          await new Promise((r) => setTimeout(r, 30))
        }
      })
      agent.destroy()
      const failed = results.filter((r) => r !== "ok")
      console.info(`[edge-router] 40 upstream changes: ${results.length} requests, ${failed.length} failed`)
      expect(results.length).toBeGreaterThan(200)
      expect(failed).toEqual([])
      // The public side was never reloaded: the front's config is what it was.
      expect(JSON.stringify(await front())).toBe(before)
      expect((await run(edge.route("steady")))?.upstreams).toHaveLength(1)
    } finally {
      await close()
    }
  })

  it("the app behind the relay still gets the client's X-Forwarded-* headers", async () => {
    const { edge, run, close } = await open(caddyLayer())
    try {
      const echo = http.createServer((req, res) =>
        res.end(`${req.headers["x-forwarded-for"]} ${req.headers["x-forwarded-proto"]}`)
      )
      servers.push(echo)
      await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r))
      const { hostPort } = await run(edge.ensure("fwd", {}))
      await run(
        edge.setUpstreams("fwd", [{ host: "127.0.0.1", port: (echo.address() as net.AddressInfo).port }])
      )
      expect((await get(hostPort)).body).toBe("127.0.0.1 http")
    } finally {
      await close()
    }
  })

  it("a back Caddy that died is started again at the next route change", async () => {
    const dataDir = edgeDataDir()
    const { edge, run, close } = await open(caddyLayer({ dataDir }))
    try {
      const a = await upstream("again")
      const b = await upstream("again")
      const { hostPort } = await run(edge.ensure("phoenix", {}))
      await run(edge.setUpstreams("phoenix", [a]))
      expect((await get(hostPort)).body).toBe("again")
      const pid = CaddyAdmin.readPid(dataDir, "back")
      expect(pid).not.toBeNull()
      process.kill(pid!, "SIGKILL")
      await waitFor("the back Caddy gone", 5000, async () =>
        Option.isNone(await Effect.runPromise(CaddyAdmin.currentConfig(CaddyAdmin.backAdmin(dataDir))))
          ? true
          : undefined
      )
      await run(edge.setUpstreams("phoenix", [a, b]))
      expect((await get(hostPort)).body).toBe("again")
      expect(CaddyAdmin.readPid(dataDir, "back")).not.toBe(pid)
    } finally {
      await close()
    }
  })

  it("concurrent changes of many services all land (batched into few loads)", async () => {
    const { edge, run, close } = await open(caddyLayer())
    try {
      const a = await upstream("many")
      const ids = Array.from({ length: 12 }, (_, i) => `many${i}`)
      const ports = await run(
        Effect.forEach(
          ids,
          (id) =>
            Effect.zipLeft(
              Effect.map(edge.ensure(id, {}), (r) => r.hostPort),
              edge.setUpstreams(id, [a])
            ),
          { concurrency: "unbounded" }
        )
      )
      expect(new Set(ports).size).toBe(ids.length)
      for (const port of ports) expect((await get(port)).body).toBe("many")
    } finally {
      await close()
    }
  })

  it("serves <service>.<team>.<domain> on the shared port", async () => {
    const shared = await freePort()
    const { edge, run, close } = await open(caddyLayer({ sharedPort: shared }))
    try {
      const a = await upstream("named")
      await run(edge.ensure("named", { hostName: "web.acme-inc.localhost" }))
      await run(edge.setUpstreams("named", [a]))
      expect(await get(shared, { host: "web.acme-inc.localhost" })).toMatchObject({
        status: 200,
        body: "named"
      })
      expect((await get(shared, { host: "other.acme-inc.localhost" })).status).toBe(404)
      expect((await run(edge.status)).sharedPort).toBe(shared)
    } finally {
      await close()
    }
  })

  it("routes custom domains by Host next to the host name; a name moves between routes; adoption keeps them", async () => {
    const shared = await freePort()
    const dataDir = edgeDataDir()
    const admin = CaddyAdmin.defaultAdmin(dataDir)
    const options = { dataDir, admin, bin: caddy.bin, sharedPort: shared, domain: "localhost" }
    const first = await open(CaddyEdge.layer(options))
    const a = await upstream("shop")
    const b = await upstream("blog")
    try {
      await first.run(
        first.edge.ensure("shop", { hostName: "shop.acme.localhost", domains: ["shop.example.com"] })
      )
      await first.run(first.edge.setUpstreams("shop", [a]))
      await first.run(first.edge.ensure("blog", { domains: ["blog.example.com"] }))
      await first.run(first.edge.setUpstreams("blog", [b]))
      for (const [name, body] of [
        ["shop.acme.localhost", "shop"],
        ["shop.example.com", "shop"],
        ["blog.example.com", "blog"]
      ])
        expect(await get(shared, { host: name }), name).toMatchObject({ status: 200, body })
      expect((await get(shared, { host: "nobody.example.com" })).status).toBe(404)

      // The name given to another service leaves the first at once (the database allows one owner).
      await first.run(first.edge.ensure("blog", { domains: ["blog.example.com", "shop.example.com"] }))
      expect(await get(shared, { host: "shop.example.com" })).toMatchObject({ status: 200, body: "blog" })
      expect((await first.run(first.edge.route("shop")))?.domains).toEqual([])
      expect(await get(shared, { host: "shop.acme.localhost" })).toMatchObject({ status: 200, body: "shop" })
      await first.close()

      // A Kyozo that adopts this Caddy reads host names and domains back apart.
      const second = await open(CaddyEdge.layer({ ...options, stopOnClose: true }))
      try {
        expect(await second.run(second.edge.route("blog"))).toMatchObject({
          hostName: null,
          domains: ["blog.example.com", "shop.example.com"]
        })
        expect(await second.run(second.edge.route("shop"))).toMatchObject({
          hostName: "shop.acme.localhost",
          domains: []
        })
        expect(await get(shared, { host: "blog.example.com" })).toMatchObject({ status: 200, body: "blog" })
        // Removing every domain stops the routing of those names.
        await second.run(second.edge.ensure("blog", { domains: [] }))
        expect((await get(shared, { host: "blog.example.com" })).status).toBe(404)
      } finally {
        await second.close()
      }
    } finally {
      await Effect.runPromise(CaddyAdmin.stop(admin, dataDir))
    }
  })

  it("serves host names over HTTPS with Caddy's internal CA (SNI picks the service)", async () => {
    const shared = await freePort()
    const tlsPort = await freePort()
    const dataDir = edgeDataDir()
    const { edge, run, close } = await open(caddyLayer({ dataDir, sharedPort: shared, tlsPort }))
    try {
      const a = await upstream("secure")
      const b = await upstream("other")
      // Caddy issues certificates in the background after a load (a handshake right after one
      // often ends in a TLS alert); `ensure` returns once the new name's handshake succeeds.
      const handshakes = async (name: string) =>
        run(CertificateReadiness.handshake("127.0.0.1", tlsPort, name, Duration.seconds(2)))
      await run(edge.ensure("sec", { hostName: "web.acme-inc.localhost" }))
      expect(await handshakes("web.acme-inc.localhost"), "HTTPS right after ensure").toBe(true)
      await run(edge.setUpstreams("sec", [a]))
      await run(edge.ensure("sec2", { hostName: "api.acme-inc.localhost" }))
      expect(await handshakes("api.acme-inc.localhost"), "HTTPS right after ensure").toBe(true)
      await run(edge.setUpstreams("sec2", [b]))
      expect((await run(edge.status)).reason).toContain(`HTTPS for host names on 127.0.0.1:${tlsPort}`)
      const root = CaddyAdmin.internalCaRoot(dataDir)
      // Every name is served at once, each with its own certificate.
      expect(fs.existsSync(root), "Caddy's internal CA root").toBe(true)
      const ca = fs.readFileSync(root)
      const caddyLog = () => fs.readFileSync(`${dataDir}/edge/caddy.log`, "utf8").slice(-3000)
      for (const [name, body] of [
        ["web.acme-inc.localhost", "secure"],
        ["api.acme-inc.localhost", "other"]
      ] as const) {
        // Verified against the CA from Caddy's data dir: a certificate for exactly the name asked.
        const answer = await httpsGet(tlsPort, name, ca)
        expect(answer, `${name}\n${caddyLog()}`).toMatchObject({ status: 200, body })
        expect(answer.issuer).toMatch(/Caddy Local Authority/)
        expect(answer.subjectAltName).toContain(`DNS:${name}`)
      }
      // The plain host-name port keeps serving (no redirect), and the system's trust store is untouched.
      expect(await get(shared, { host: "web.acme-inc.localhost" })).toMatchObject({
        status: 200,
        body: "secure"
      })
      const untrusted = await httpsGet(tlsPort, "web.acme-inc.localhost", undefined)
      expect(untrusted.status).toBe(0)
      expect(untrusted.body).toMatch(/certificate/i)
    } finally {
      await close()
    }
  })

  it("keeps serving when the Kyozo that made the routes is gone, and the next one adopts them", async () => {
    const dataDir = edgeDataDir()
    const admin = CaddyAdmin.defaultAdmin(dataDir)
    const options = { dataDir, admin, bin: caddy.bin, sharedPort: null, domain: "localhost" }
    // The first "Kyozo" leaves Caddy running when it goes (the production default).
    const first = await open(CaddyEdge.layer(options))
    const a = await upstream("kept")
    const { hostPort } = await first.run(first.edge.ensure("kept", {}))
    await first.run(first.edge.setUpstreams("kept", [a]))
    await first.close()
    try {
      for (let i = 0; i < 10; i++) expect((await get(hostPort)).body).toBe("kept")
      const second = await open(CaddyEdge.layer({ ...options, stopOnClose: true }))
      try {
        expect((await second.run(second.edge.status)).reason).toContain("adopted")
        const route = await second.run(second.edge.route("kept"))
        expect(route).toMatchObject({ hostPort, upstreams: [{ host: "127.0.0.1", port: a.port }] })
        expect((await get(hostPort)).body).toBe("kept")
      } finally {
        await second.close()
      }
      expect(await Effect.runPromise(CaddyAdmin.currentConfig(admin))).toMatchObject({ _tag: "None" })
    } finally {
      await Effect.runPromise(CaddyAdmin.stop(admin, dataDir))
    }
  })
})

/**
 * bench/edge: requests per second and p99 of a small static file (busybox httpd in a real
 * container, published on 127.0.0.1) straight to the container's port, through the Caddy edge, and
 * through the in-process edge, one after the other in the same run with autocannon. The Caddy edge
 * runs as Kyozo runs it (front and back Caddy, relayed over a unix socket, so rollouts reload only
 * the back) and, for comparison, as one Caddy (what an operator's own Caddy gets).
 * The target: the Caddy edge at ≥ 0.7× direct.
 *
 *   node --import tsx bench/edge.ts       (BENCH_SECONDS=5, BENCH_CONNECTIONS=20)
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import * as CaddyAdmin from "@kyozo/core/edge/CaddyAdmin"
import * as CaddyEdge from "@kyozo/core/edge/CaddyEdge"
import { EdgeRouter, type EdgeRouterShape } from "@kyozo/core/edge/EdgeRouter"
import * as InProcessEdge from "@kyozo/core/edge/InProcessEdge"
import { parseDockerHost } from "@kyozo/core/engine/DockerRuntime"
import autocannon from "autocannon"
import Docker from "dockerode"
import { Effect, Exit, Layer, Scope } from "effect"

import { freePort } from "../test/support/server.js"

const StaticImage = "kyozo-local/static:latest"
const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 20)

const load = (url: string) =>
  new Promise<autocannon.Result>((resolve, reject) =>
    autocannon({ url, connections, duration: seconds }, (err, result) =>
      err ? reject(err) : resolve(result)
    )
  )

const open = async (edgeLayer: Layer.Layer<EdgeRouter, unknown>) => {
  const scope = Effect.runSync(Scope.make())
  const ctx = await Effect.runPromise(Layer.buildWithScope(edgeLayer, scope))
  return {
    edge: ctx.unsafeMap.get(EdgeRouter.key) as EdgeRouterShape,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const main = async () => {
  const docker = new Docker(parseDockerHost(process.env.DOCKER_HOST).options)
  const port = await freePort()
  const container = await docker.createContainer({
    name: `kyozo-bench-edge-${process.pid}`,
    Image: StaticImage,
    Cmd: [
      "sh",
      "-c",
      "mkdir -p /site && echo 'hello from the bench' > /site/index.html && httpd -f -p 8080 -h /site"
    ],
    Labels: { "kyozo.bench": "edge" },
    ExposedPorts: { "8080/tcp": {} },
    HostConfig: { PortBindings: { "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: String(port) }] } }
  })
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-bench-edge-"))
  const upstream = { host: "127.0.0.1", port }
  const dirs = [dataDir]
  try {
    await container.start()
    for (let i = 0; i < 50; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/`).then(
        (r) => r.ok,
        () => false
      )
      if (ok) break
      await new Promise((r) => setTimeout(r, 100))
    }
    const caddy = await open(
      CaddyEdge.layer({
        dataDir,
        admin: CaddyAdmin.defaultAdmin(dataDir),
        bin: CaddyAdmin.findCaddy(),
        sharedPort: null,
        domain: "localhost",
        stopOnClose: true
      })
    )
    const singleDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-bench-edge1-"))
    dirs.push(singleDir)
    const single = await open(
      CaddyEdge.layer({
        dataDir: singleDir,
        admin: CaddyAdmin.defaultAdmin(singleDir),
        bin: CaddyAdmin.findCaddy(),
        sharedPort: null,
        domain: "localhost",
        stopOnClose: true,
        relay: false
      })
    )
    const inproc = await open(InProcessEdge.layer({ reason: "bench" }))
    try {
      const viaCaddy = await Effect.runPromise(caddy.edge.ensure("bench", {}))
      await Effect.runPromise(caddy.edge.setUpstreams("bench", [upstream]))
      const viaSingle = await Effect.runPromise(single.edge.ensure("bench", {}))
      await Effect.runPromise(single.edge.setUpstreams("bench", [upstream]))
      const viaInproc = await Effect.runPromise(inproc.edge.ensure("bench", {}))
      await Effect.runPromise(inproc.edge.setUpstreams("bench", [upstream]))
      const rows: Array<[string, autocannon.Result]> = []
      rows.push(["direct (container port)", await load(`http://127.0.0.1:${port}/`)])
      rows.push(["caddy edge (front+back)", await load(`http://127.0.0.1:${viaCaddy.hostPort}/`)])
      rows.push(["caddy edge (one Caddy)", await load(`http://127.0.0.1:${viaSingle.hostPort}/`)])
      rows.push(["in-process edge", await load(`http://127.0.0.1:${viaInproc.hostPort}/`)])
      const base = rows[0]![1].requests.average
      console.log(`bench/edge: ${connections} connections, ${seconds} s each, small static file`)
      for (const [name, r] of rows) {
        console.log(
          `  ${name.padEnd(24)} ${r.requests.average.toFixed(0).padStart(7)} req/s  p99 ${String(r.latency.p99).padStart(4)} ms  errors ${r.errors + r.non2xx}  ${(r.requests.average / base).toFixed(2)}× direct`
        )
      }
    } finally {
      await caddy.close()
      await single.close()
      await inproc.close()
    }
  } finally {
    await container.remove({ force: true }).catch(() => {})
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})

/**
 * bench/api: the authenticated service list (100 services, REST `GET /v1/services`) of a real Kyozo
 * server (the built bundle users run, mock runtime, rate limit off) against two baselines answering
 * the same bytes: a bare `node:http` server and a bare Effect HTTP server (`@effect/platform-node`,
 * one route, the stack Kyozo is built on: its own ceiling), each in a process of its own as Kyozo
 * is. Each round loads the three one after the other with autocannon on 127.0.0.1. The server runs on a PostgreSQL schema of its own, or with
 * `BENCH_DATABASE=pglite` on the embedded database (seeded while the server is stopped: PGlite is
 * one process's).
 *
 *   pnpm bench:api   (BENCH_SECONDS=5, BENCH_CONNECTIONS=20, BENCH_ROUNDS=3, BENCH_DATABASE=postgres|pglite,
 *                     BENCH_CPU_PROF=<dir>: the server writes a .cpuprofile there when it stops,
 *                     BENCH_BASELINES=inline: baselines served by this process, beside autocannon)
 */
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"

import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type { TeamId } from "@kyozo/api/domain/Ids"
import * as Database from "@kyozo/core/store/Database"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import autocannon from "autocannon"
import { Effect, Fiber, Layer } from "effect"

import { repoRoot, type StartOptions, startServer, waitFor } from "../test/support/server.js"
import { startTenantServer } from "../test/support/tenants.js"

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 20)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const SERVICES = 100
const cpuProf = process.env.BENCH_CPU_PROF
const start: StartOptions = {
  built: true,
  nodeArgs: cpuProf === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${path.resolve(cpuProf)}`]
}

const load = (url: string, headers: Record<string, string>) =>
  new Promise<autocannon.Result>((resolve, reject) =>
    autocannon({ url, connections, duration: seconds, headers }, (err, result) =>
      err ? reject(err) : resolve(result)
    )
  )

/** A server on PostgreSQL with a viewer's key and SERVICES services. */
const onPostgres = async () => {
  const ts = await startTenantServer({ KYOZO_RATE_LIMIT: "off" }, { start })
  const team = await ts.newTenant("bench", "viewer")
  await ts.run(
    Effect.gen(function* () {
      const services = yield* ServiceRepo
      for (let i = 0; i < SERVICES; i++) yield* services.create({ teamId: team.teamId, name: `svc-${i}` })
    })
  )
  return { base: ts.base, token: team.token, close: ts.close }
}

/** A server on a fresh embedded database: first start (bootstrap key), seed while stopped, start again. */
const onPglite = async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-bench-api-"))
  const env = {
    KYOZO_RUNTIME: "mock",
    KYOZO_EDGE: "inprocess",
    KYOZO_RATE_LIMIT: "off",
    KYOZO_DATA_DIR: dataDir
  }
  const up = async () => {
    const server = await startServer(env, start)
    await waitFor("server /healthz", 60_000, async () =>
      (await server.get("/healthz")).status === 200 ? true : undefined
    )
    return server
  }
  await (await up()).stop()
  const creds = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
  await Effect.runPromise(
    Effect.gen(function* () {
      const services = yield* ServiceRepo
      for (let i = 0; i < SERVICES; i++)
        yield* services.create({ teamId: creds.teamId as TeamId, name: `svc-${i}` })
    }).pipe(Effect.provide(ServiceRepo.Default), Effect.provide(Database.layerPglite(dataDir)), Effect.orDie)
  )
  const server = await up()
  return {
    base: `http://127.0.0.1:${server.port}`,
    token: creds.token as string,
    close: async () => {
      await server.stop()
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

/** A bare `node:http` server answering `bytes` on every request. */
interface Served {
  readonly port: number
  readonly close: () => void
}

const serveNode = async (bytes: Uint8Array, contentType: string): Promise<Served> => {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": contentType, "content-length": bytes.length })
    res.end(bytes)
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return { port: (server.address() as AddressInfo).port, close: () => server.close() }
}

/** A bare Effect HTTP server (the platform's Node server and router, no logger) answering `bytes`. */
const serveEffect = async (route: string, bytes: Uint8Array, contentType: string): Promise<Served> => {
  const port = await new Promise<number>((resolve) => {
    const probe = http.createServer().listen(0, "127.0.0.1", () => {
      const p = (probe.address() as AddressInfo).port
      probe.close(() => resolve(p))
    })
  })
  const Route = HttpLayerRouter.add(
    "GET",
    route.split("?")[0]! as HttpLayerRouter.PathInput,
    Effect.sync(() => HttpServerResponse.uint8Array(bytes, { contentType }))
  )
  const Server = HttpLayerRouter.serve(Route, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provide(NodeHttpServer.layer(http.createServer, { host: "127.0.0.1", port }))
  )
  const fiber = Effect.runFork(Layer.launch(Server))
  await waitFor("bare Effect server", 10_000, async () =>
    (await fetch(`http://127.0.0.1:${port}${route}`)).status === 200 ? true : undefined
  )
  return { port, close: () => Effect.runFork(Fiber.interrupt(fiber)) }
}

/**
 * A baseline server. By default in a process of its own, as Kyozo is (the load generator does
 * not share its event loop); `BENCH_BASELINES=inline` serves it from this process (how the figures
 * of issue 13 were first taken).
 */
const baseline = async (kind: "node" | "effect", route: string, bytes: Uint8Array, contentType: string) => {
  if (process.env.BENCH_BASELINES === "inline") {
    const served =
      kind === "node" ? await serveNode(bytes, contentType) : await serveEffect(route, bytes, contentType)
    return { url: `http://127.0.0.1:${served.port}${route}`, close: served.close }
  }
  const body = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-bench-api-body-")), "body")
  fs.writeFileSync(body, bytes)
  const child = spawn(process.execPath, ["--import", "tsx", "bench/api.ts"], {
    cwd: repoRoot,
    env: { ...process.env, BENCH_API_BASELINE: JSON.stringify({ kind, route, body, contentType }) },
    stdio: ["ignore", "pipe", "inherit"]
  })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ""
    child.stdout.on("data", (d) => {
      out += d
      const m = /port (\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.once("exit", (code) => reject(new Error(`the ${kind} baseline exited (${code})`)))
  })
  return {
    url: `http://127.0.0.1:${port}${route}`,
    close: () => {
      child.kill("SIGTERM")
      fs.rmSync(path.dirname(body), { recursive: true, force: true })
    }
  }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = async () => {
  // The bundle users run, fresh from the sources.
  execFileSync(process.execPath, ["scripts/build.mjs", "server"], { cwd: repoRoot, stdio: "ignore" })
  const database = process.env.BENCH_DATABASE === "pglite" ? "pglite" : "postgres"
  const ts = database === "pglite" ? await onPglite() : await onPostgres()
  try {
    console.log(`database: ${database}`)
    const headers = { authorization: `Bearer ${ts.token}` }
    const route = process.env.BENCH_ROUTE ?? `/v1/services?page[size]=${SERVICES}`
    const url = `${ts.base}${route}`
    const probe = await fetch(url, { headers })
    const bytes = Buffer.from(await probe.arrayBuffer())
    if (probe.status !== 200) throw new Error(`GET ${route} answered ${probe.status}: ${bytes.toString()}`)
    const contentType = probe.headers.get("content-type") ?? "application/json"
    console.log(`GET ${route}: ${bytes.length} bytes, ${contentType}`)

    const bare = await baseline("node", route, bytes, contentType)
    const effect = await baseline("effect", route, bytes, contentType)
    const row = (name: string, r: autocannon.Result) =>
      `${name.padEnd(22)} ${r.requests.average.toFixed(0).padStart(8)} req/s  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms  non-2xx ${r.non2xx}  errors ${r.errors}`
    console.log(
      `${connections} connections, ${seconds} s each, ${rounds} rounds, baselines ${process.env.BENCH_BASELINES === "inline" ? "in this process" : "each in its own process"}`
    )
    const ratios: Array<{ bare: number; effect: number; ceiling: number }> = []
    let failed = 0
    for (let i = 1; i <= rounds; i++) {
      const kyozo = await load(url, headers)
      const plain = await load(bare.url, headers)
      const stack = await load(effect.url, headers)
      failed += kyozo.non2xx + kyozo.errors
      console.log(
        `round ${i} (load average ${os
          .loadavg()
          .map((l) => l.toFixed(2))
          .join(" ")})`
      )
      console.log(row("  kyozo (auth + query)", kyozo))
      console.log(row("  bare node:http", plain))
      console.log(row("  bare Effect http", stack))
      const r = {
        bare: kyozo.requests.average / plain.requests.average,
        effect: kyozo.requests.average / stack.requests.average,
        ceiling: stack.requests.average / plain.requests.average
      }
      ratios.push(r)
      console.log(
        `  ratio kyozo / bare node:http ${r.bare.toFixed(3)}  kyozo / bare Effect ${r.effect.toFixed(3)}  bare Effect / bare node:http ${r.ceiling.toFixed(3)}`
      )
    }
    bare.close()
    effect.close()
    console.log(
      `median of ${rounds}: kyozo / bare node:http ${median(ratios.map((r) => r.bare)).toFixed(3)}  ` +
        `kyozo / bare Effect ${median(ratios.map((r) => r.effect)).toFixed(3)}  ` +
        `bare Effect / bare node:http ${median(ratios.map((r) => r.ceiling)).toFixed(3)}`
    )
    if (failed > 0) process.exitCode = 1
  } finally {
    await ts.close()
  }
}

/** As a baseline's own process: serve, print the port, run until killed. */
const serveBaseline = async (spec: {
  kind: "node" | "effect"
  route: string
  body: string
  contentType: string
}) => {
  const bytes = fs.readFileSync(spec.body)
  const served =
    spec.kind === "node"
      ? await serveNode(bytes, spec.contentType)
      : await serveEffect(spec.route, bytes, spec.contentType)
  console.log(`port ${served.port}`)
}

const baselineSpec = process.env.BENCH_API_BASELINE
;(baselineSpec === undefined ? main() : serveBaseline(JSON.parse(baselineSpec))).catch((e) => {
  console.error(e)
  process.exit(1)
})

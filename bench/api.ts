/**
 * bench/api: the authenticated service list (100 services, REST `GET /v1/services`) of a real Kyozo
 * server (mock runtime, rate limit off) against a bare `node:http` server answering the same bytes,
 * one after the other with autocannon on 127.0.0.1. The server runs on a PostgreSQL schema of its
 * own, or with `BENCH_DATABASE=pglite` on the embedded database (seeded while the server is stopped:
 * PGlite is one process's).
 *
 *   pnpm bench:api            (BENCH_SECONDS=5, BENCH_CONNECTIONS=20, BENCH_DATABASE=postgres|pglite)
 */
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"

import type { TeamId } from "@kyozo/api/domain/Ids"
import * as Database from "@kyozo/core/store/Database"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import autocannon from "autocannon"
import { Effect } from "effect"

import { startServer, waitFor } from "../test/support/server.js"
import { startTenantServer } from "../test/support/tenants.js"

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 20)
const SERVICES = 100

const load = (url: string, headers: Record<string, string>) =>
  new Promise<autocannon.Result>((resolve, reject) =>
    autocannon({ url, connections, duration: seconds, headers }, (err, result) =>
      err ? reject(err) : resolve(result)
    )
  )

/** A server on PostgreSQL with a viewer's key and SERVICES services. */
const onPostgres = async () => {
  const ts = await startTenantServer({ KYOZO_RATE_LIMIT: "off" })
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
    const server = await startServer(env)
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

const main = async () => {
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

    const bare = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": contentType, "content-length": bytes.length })
      res.end(bytes)
    })
    await new Promise<void>((r) => bare.listen(0, "127.0.0.1", r))
    const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}${route}`

    const kyozo = await load(url, headers)
    const baseline = await load(bareUrl, headers)
    bare.close()
    const row = (name: string, r: autocannon.Result) =>
      `${name.padEnd(22)} ${r.requests.average.toFixed(0).padStart(8)} req/s  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms  non-2xx ${r.non2xx}  errors ${r.errors}`
    console.log(`${connections} connections, ${seconds} s each`)
    console.log(row("kyozo (auth + query)", kyozo))
    console.log(row("bare node:http", baseline))
    console.log(`ratio kyozo / bare: ${(kyozo.requests.average / baseline.requests.average).toFixed(3)}`)
    if (kyozo.non2xx > 0) process.exitCode = 1
  } finally {
    await ts.close()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})

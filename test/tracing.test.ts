/**
 * Tracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, a spawned server (mock runtime) posts OTLP/HTTP
 * JSON spans to `<endpoint>/v1/traces` — startup spans and the spans of an API request; unset or
 * empty, the layer installs no tracer at all.
 */
import * as fs from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"

import { it as effectIt } from "@effect/vitest"
import * as Tracing from "@kyozo/server/Tracing"
import { ConfigProvider, Effect, Option } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { caller } from "./support/rest.js"
import { type ServerProcess, startServer, waitFor } from "./support/server.js"

interface Received {
  readonly path: string
  readonly contentType: string
  readonly body: any
}

let receiver: Server
let endpoint: string
const received: Array<Received> = []
let server: ServerProcess
let dataDir: string

/** Every span name the receiver got so far, with its service.name resource attribute. */
const spans = () =>
  received.flatMap((r) =>
    (r.body?.resourceSpans ?? []).flatMap((rs: any) => {
      const service = (rs.resource?.attributes ?? []).find((a: any) => a.key === "service.name")?.value
        ?.stringValue
      return (rs.scopeSpans ?? []).flatMap((ss: any) =>
        (ss.spans ?? []).map((s: any) => ({ name: s.name as string, service, traceId: s.traceId as string }))
      )
    })
  )

beforeAll(async () => {
  // A minimal OTLP/HTTP receiver on 127.0.0.1 that accepts JSON.
  receiver = createServer((req, res) => {
    let body = ""
    req.on("data", (c) => (body += c))
    req.on("end", () => {
      let parsed: any = undefined
      try {
        parsed = JSON.parse(body)
      } catch {
        /* not JSON */
      }
      received.push({ path: req.url ?? "", contentType: String(req.headers["content-type"]), body: parsed })
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r))
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`

  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-tracing-"))
  server = await startServer({
    KYOZO_RUNTIME: "mock",
    KYOZO_DATA_DIR: dataDir,
    OTEL_EXPORTER_OTLP_ENDPOINT: `${endpoint}/`
  })
  await waitFor("server /healthz", 60_000, async () =>
    (await server.get("/healthz")).status === 200 ? true : undefined
  ).catch((e) => {
    throw new Error(`${e}\n${server.log()}`)
  })
}, 90_000)

afterAll(async () => {
  await server?.stop()
  receiver?.close()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

describe("OTLP export", () => {
  it("sends the server's spans to <endpoint>/v1/traces as OTLP JSON", async () => {
    const creds = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
    const r = await caller(server.port, creds.token)("GET", "/v1/teams/current")
    expect(r.status).toBe(200)
    await waitFor("request spans", 20_000, async () =>
      spans().some((s) => s.name === "http.server GET") ? true : undefined
    ).catch((e) => {
      throw new Error(`${e}\nspans: ${JSON.stringify(spans().map((s) => s.name))}\n${server.log()}`)
    })
    expect(received.length).toBeGreaterThan(0)
    for (const r of received) {
      expect(r.path).toBe("/v1/traces")
      expect(r.contentType).toContain("application/json")
    }
    const all = spans()
    expect(all.every((s) => s.service === "kyozo")).toBe(true)
    expect(all.every((s) => /^[0-9a-f]{32}$/.test(s.traceId))).toBe(true)
    // Startup work is traced too (the credentials bootstrap and the migrations).
    const names = new Set(all.map((s) => s.name))
    expect(names.has("Auth.bootstrap") || names.has("Migrations.run"), [...names].join(", ")).toBe(true)
  }, 30_000)
})

describe("Tracing.layer", () => {
  const withEnv = (env: Record<string, string>) =>
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

  it("derives the traces URL from the endpoint, and none from an unset or empty one", () => {
    expect(Tracing.tracesUrl(Option.some("http://127.0.0.1:4318"))).toEqual(
      Option.some("http://127.0.0.1:4318/v1/traces")
    )
    expect(Tracing.tracesUrl(Option.some("http://collector:4318//"))).toEqual(
      Option.some("http://collector:4318/v1/traces")
    )
    expect(Tracing.tracesUrl(Option.some("  "))).toEqual(Option.none())
    expect(Tracing.tracesUrl(Option.none())).toEqual(Option.none())
  })

  effectIt.scoped("installs no tracer when the endpoint is unset", () =>
    Effect.gen(function* () {
      const before = yield* Effect.tracer
      const inside = yield* Effect.tracer.pipe(Effect.provide(Tracing.layer), withEnv({}))
      expect(inside).toBe(before)
      const empty = yield* Effect.tracer.pipe(
        Effect.provide(Tracing.layer),
        withEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "" })
      )
      expect(empty).toBe(before)
    })
  )

  effectIt.scoped("installs the OTLP tracer when the endpoint is set", () =>
    Effect.gen(function* () {
      const before = yield* Effect.tracer
      const inside = yield* Effect.tracer.pipe(
        Effect.provide(Tracing.layer),
        withEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint })
      )
      expect(inside).not.toBe(before)
    })
  )
})

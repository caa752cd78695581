/**
 * Property tests against a real server: malformed JSON, wrong types, huge strings, unknown fields
 * and random bytes thrown at every endpoint that exists — `/v1/uploads`, `/v1/events`, `/rpc`
 * (bad NDJSON), and every REST route `/openapi.json` lists when it is served. No answer is a 5xx,
 * and `/healthz` still answers afterwards.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  BadRequest,
  Conflict,
  Denied,
  JSON_API,
  NotFound,
  TooManyRequests,
  Unauthenticated,
  Unavailable,
  Unprocessable
} from "@kyozo/api/KyozoHttpApi"
import { Either, Schema } from "effect"
import fc from "fast-check"
import { afterAll, beforeAll } from "vitest"

import { startTenantServer, type TenantServer } from "./support/tenants.js"

let ts: TenantServer
let routes: Array<{ method: string; path: string }> = []
let spec: {
  paths?: Record<
    string,
    Record<string, { responses?: Record<string, { content?: Record<string, unknown> }> }>
  >
} = {}

beforeAll(async () => {
  ts = await startTenantServer({ KYOZO_RATE_LIMIT: "off", KYOZO_UPLOAD_MAX_BYTES: "65536" })
  const doc = await fetch(`${ts.base}/openapi.json`).catch(() => undefined)
  if (doc?.status === 200) {
    spec = (await doc.json()) as typeof spec
    routes = Object.entries(spec.paths ?? {}).flatMap(([p, ops]) =>
      Object.keys(ops)
        .filter((m) => ["get", "post", "put", "patch", "delete"].includes(m))
        .map((m) => ({ method: m.toUpperCase(), path: p }))
    )
  }
}, 90_000)

afterAll(async () => {
  await ts?.close()
})

const hugeString = fc.integer({ min: 10_000, max: 200_000 }).map((n) => "x".repeat(n))

/** JSON-ish bodies: valid values of the wrong shape, unknown fields, huge strings, broken text. */
const jsonBody = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.dictionary(fc.string(), fc.jsonValue()).map((v) => JSON.stringify({ ...v, unexpected: true })),
  hugeString.map((s) => JSON.stringify({ name: s, source: { _tag: "Path", path: s } })),
  fc.string().map((s) => `{"${s}": `),
  fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b).toString("latin1"))
)

const token = fc.constantFrom<"none" | "valid" | "garbage">("none", "valid", "garbage")

const send = async (
  method: string,
  route: string,
  body: string | undefined,
  auth: string,
  contentType: string
) => {
  const headers: Record<string, string> = { "content-type": contentType }
  if (auth === "valid") headers.authorization = `Bearer ${ts.owner.token}`
  if (auth === "garbage") headers.authorization = `Bearer kz_${"z".repeat(8)}_${"0".repeat(32)}`
  const res = await fetch(`${ts.base}${route}`, {
    method,
    headers,
    ...(body === undefined || method === "GET" ? {} : { body }),
    signal: AbortSignal.timeout(10_000)
  })
  // Streams (events) answer 200 and never end: the status is what matters.
  await res.body?.cancel().catch(() => undefined)
  return res.status
}

const noServerError = (status: number) => {
  expect(status, `status ${status}`).toBeLessThan(500)
}

const segment = fc.oneof(
  fc.string({ maxLength: 40 }),
  hugeString.map((s) => s.slice(0, 4000)),
  fc.constant("svc_x")
)

describe("bad input never produces a 5xx", () => {
  it("POST /rpc with bad NDJSON, wrong types and unknown tags", async () => {
    const rpcBody = fc.oneof(
      jsonBody,
      fc
        .record({ _tag: fc.constant("Request"), id: fc.string(), tag: fc.string(), payload: fc.jsonValue() })
        .map((r) => `${JSON.stringify(r)}\n`),
      fc
        .record({
          _tag: fc.constant("Request"),
          id: fc.integer().map(String),
          tag: fc.constantFrom("Deploy", "GetService", "Logs", "Events", "IssueApiKey", "RevokeApiKey"),
          payload: fc.oneof(
            fc.jsonValue(),
            hugeString.map((s) => ({ service: s, source: s, keyId: s }))
          ),
          headers: fc.constant([]),
          traceId: fc.string(),
          spanId: fc.string(),
          sampled: fc.boolean()
        })
        .map((r) => `${JSON.stringify(r)}\n`)
    )
    await fc.assert(
      fc.asyncProperty(rpcBody, token, async (body, auth) => {
        noServerError(await send("POST", "/rpc", body, auth, "application/ndjson"))
      }),
      { numRuns: 60 }
    )
  }, 120_000)

  it("POST /v1/uploads with random bodies and media types", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          jsonBody,
          fc.uint8Array({ maxLength: 100_000 }).map((b) => Buffer.from(b).toString("latin1"))
        ),
        token,
        fc.constantFrom("application/x-tar", "application/json", "text/plain", "multipart/form-data"),
        async (body, auth, type) => {
          noServerError(await send("POST", "/v1/uploads", body, auth, type))
        }
      ),
      { numRuns: 40 }
    )
  }, 120_000)

  it("GET /v1/events with random cursors and query strings", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), token, async (cursor, auth) => {
        noServerError(
          await send(
            "GET",
            `/v1/events?after=${encodeURIComponent(cursor)}&x=${encodeURIComponent(cursor)}`,
            undefined,
            auth,
            "text/plain"
          )
        )
      }),
      { numRuns: 40 }
    )
  }, 120_000)

  it("every REST route listed by /openapi.json (when served), with random ids and bodies", async () => {
    const withMethods = routes.length > 0 ? routes : [{ method: "GET", path: "/v1/no-such-route/{id}" }]
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...withMethods),
        segment,
        jsonBody,
        token,
        async (route, id, body, auth) => {
          const concrete = route.path.replace(/\{[^}]+\}/g, encodeURIComponent(id))
          noServerError(await send(route.method, concrete, body, auth, "application/vnd.api+json"))
        }
      ),
      { numRuns: Math.max(60, routes.length * 5) }
    )
  }, 300_000)

  /** The error documents of the contract by status: what /openapi.json is generated from. */
  const errorSchemas: Record<number, Schema.Schema.Any> = {
    400: BadRequest,
    401: Unauthenticated,
    403: Denied,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    429: TooManyRequests,
    503: Unavailable
  }

  const nul = fc.string({ maxLength: 20 }).map((s) => `${s}\u0000${s}`)
  const hostileId = fc.oneof(
    nul,
    fc.integer({ min: 101, max: 128 }).map((n) => "k".repeat(n)),
    fc.integer({ min: 129, max: 300 }).map((n) => "k".repeat(n)),
    fc.constant("svc_x")
  )
  const hostileBody = fc.oneof(
    fc.constant(""),
    fc.constantFrom(" ", "\n", " \t \r\n "),
    nul.map((s) =>
      JSON.stringify({ data: { type: "x", attributes: { name: s, url: s, email: s, role: s } } })
    ),
    fc.dictionary(fc.string({ maxLength: 10 }), nul).map((d) => JSON.stringify({ data: { attributes: d } }))
  )

  it("answers conform to /openapi.json: NUL bytes, long ids, empty and whitespace bodies", async () => {
    expect(routes.length).toBeGreaterThan(10)
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        hostileId,
        hostileBody,
        fc.oneof(nul, fc.constant("10")),
        async (route, id, body, query) => {
          const concrete =
            route.path.replace(/\{[^}]+\}/g, encodeURIComponent(id)) +
            `?page%5Bsize%5D=${encodeURIComponent(query)}`
          const res = await fetch(`${ts.base}${concrete}`, {
            method: route.method,
            headers: { authorization: `Bearer ${ts.owner.token}`, "content-type": JSON_API },
            ...(route.method === "GET" || route.method === "DELETE" ? {} : { body }),
            signal: AbortSignal.timeout(10_000)
          })
          const text = await res.text()
          const what = `${route.method} ${concrete.slice(0, 120)} → ${res.status} ${text.slice(0, 200)}`
          expect(res.status, what).toBeLessThan(500)
          const documented = spec.paths?.[route.path]?.[route.method.toLowerCase()]?.responses ?? {}
          // An id the router cannot take (over 100 characters) is an unknown route: a 404 document.
          const routerLimit = res.status === 404 && id.length > 100
          expect(routerLimit || String(res.status) in documented, `undocumented status: ${what}`).toBe(true)
          if (res.status === 204) return
          const contentType = res.headers.get("content-type") ?? ""
          const declared = Object.keys(documented[String(res.status)]?.content ?? { [JSON_API]: {} })
          expect(
            declared.some((t) => contentType.startsWith(t)),
            `content type ${contentType}: ${what}`
          ).toBe(true)
          const json = JSON.parse(text)
          const schema = errorSchemas[res.status]
          if (schema) {
            const decoded = Schema.decodeUnknownEither(schema as Schema.Schema<unknown, unknown, never>)(json)
            expect(Either.isRight(decoded), `body does not match the ${res.status} schema: ${what}`).toBe(
              true
            )
          } else expect(json).toHaveProperty("data")
        }
      ),
      { numRuns: Math.max(80, routes.length * 4) }
    )
  }, 300_000)

  it("the server still answers /healthz", async () => {
    const r = await ts.server.get("/healthz")
    expect(r.status).toBe(200)
    expect(ts.server.child.exitCode).toBeNull()
  })
})

/**
 * The server's own answers (real process, embedded database): `DATABASE_URL=` (set but empty)
 * means the embedded database, `/healthz` reports a live uptime, and `/metrics` counts answers by
 * route pattern and status (never by raw path, so ids do not explode the label set).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { caller, start, type Started } from "./support/rest.js"

let s: Started

beforeAll(async () => {
  s = await start("kyozo-basics-", { DATABASE_URL: "" })
}, 120_000)

afterAll(async () => {
  await s?.stop()
})

describe("server basics", () => {
  it("an empty DATABASE_URL starts on the embedded database", () => {
    expect(s.server.log()).toContain("embedded PGlite")
  })

  it("/healthz uptime moves", async () => {
    const first = (await s.server.get("/healthz")).body.uptimeSeconds as number
    await new Promise((r) => setTimeout(r, 2_100))
    const second = (await s.server.get("/healthz")).body.uptimeSeconds as number
    expect(second - first).toBeGreaterThanOrEqual(2)
  })

  it("/metrics counts requests by route and status", async () => {
    const owner = caller(s.server.port, s.ownerToken)
    await owner("GET", "/v1/teams/current")
    await owner("GET", "/v1/services/svc_0000000000000001")
    await owner("GET", "/v1/services/svc_0000000000000002")
    const text = await (
      await fetch(`http://127.0.0.1:${s.server.port}/metrics`, {
        headers: { authorization: `Bearer ${s.ownerToken}` }
      })
    ).text()
    expect(text).toMatch(
      /kyozo_http_requests_total\{method="GET",route="\/v1\/teams\/current",status="200"\} \d+/
    )
    expect(text).toMatch(
      /kyozo_http_requests_total\{method="GET",route="\/v1\/services\/:serviceId",status="404"\} 2/
    )
    expect(text).not.toContain("svc_0000000000000001")
  })
})

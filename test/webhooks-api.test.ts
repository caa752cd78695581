/**
 * Webhooks and recommendations through the REST API, against a real server on the mock runtime:
 * the secret is shown once and never again, only http(s) URLs are taken (400 pointing at the
 * field), owners/admins manage while members and viewers read, the delivery log of a receiving
 * endpoint fills up; recommendations come from the service's own metric samples.
 */
import * as fs from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"

import { afterAll, beforeAll, describe, expect, it } from "vitest"

import {
  type Call,
  caller,
  deployService,
  doc,
  expectStatus,
  memberWithKey,
  workspaceApp
} from "./support/rest.js"
import { type ServerProcess, startServer, waitFor } from "./support/server.js"

let server: ServerProcess
let dataDir: string
let owner: Call
let member: Call
let viewer: Call
let receiver: Server
let receiverUrl: string
const received: Array<{ headers: Record<string, unknown>; body: string }> = []

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = ""
    req.on("data", (c) => (body += c))
    req.on("end", () => {
      received.push({ headers: req.headers, body })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r))
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`

  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-webhooks-api-"))
  // Metrics every second, so the recommendation has samples to work on.
  server = await startServer({
    KYOZO_RUNTIME: "mock",
    KYOZO_DATA_DIR: dataDir,
    KYOZO_RATE_LIMIT: "off",
    KYOZO_METRICS_INTERVAL: "1 second",
    // The receiver is on loopback: an admin's switch allows private targets.
    KYOZO_WEBHOOK_ALLOW_PRIVATE: "1"
  })
  await waitFor("server /healthz", 60_000, async () =>
    (await server.get("/healthz")).status === 200 ? true : undefined
  ).catch((e) => {
    throw new Error(`${e}\n${server.log()}`)
  })
  const creds = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
  workspaceApp(dataDir, creds.teamId, "app")
  owner = caller(server.port, creds.token)
  member = caller(server.port, (await memberWithKey(owner, "mia@example.com", "member")).token)
  viewer = caller(server.port, (await memberWithKey(owner, "vic@example.com", "viewer")).token)
}, 120_000)

afterAll(async () => {
  await server?.stop()
  receiver?.close()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

/** A webhook to the test's receiver for deploy events and removals, made for one test. */
const makeHook = async () => {
  const created = expectStatus(
    await owner(
      "POST",
      "/v1/webhooks",
      doc("webhooks", { url: receiverUrl, eventTypes: ["deploy.*", "service.removed"] })
    ),
    201,
    "create"
  )
  return { created, hookId: created.body.data.id as string }
}

describe("webhooks", () => {
  it("creates a webhook and shows its secret only in that answer", async () => {
    const { created, hookId } = await makeHook()
    const secret: string = created.body.data.attributes.secret
    expect(hookId).toMatch(/^whk_/)
    expect(secret).toMatch(/^[0-9a-f]{64}$/)
    expect(created.body.data.attributes).toMatchObject({
      url: receiverUrl,
      eventTypes: ["deploy.*", "service.removed"],
      enabled: true
    })

    const got = expectStatus(await owner("GET", `/v1/webhooks/${hookId}`), 200, "get")
    expect(got.body.data.attributes.secret).toBeUndefined()
    expect(got.text).not.toContain(secret)
    const list = expectStatus(await viewer("GET", "/v1/webhooks"), 200, "list")
    expect(list.body.data.map((w: any) => w.id)).toContain(hookId)
    expect(list.text).not.toContain(secret)
  })

  it("keeps a secret given by the caller, and shows it once", async () => {
    const given = "s3cret-of-at-least-16-chars"
    const created = expectStatus(
      await owner("POST", "/v1/webhooks", doc("webhooks", { url: "https://example.com/x", secret: given })),
      201,
      "create with secret"
    )
    expect(created.body.data.attributes.secret).toBe(given)
    expect(created.body.data.attributes.eventTypes).toEqual([])
    expect((await owner("GET", `/v1/webhooks/${created.body.data.id}`)).text).not.toContain(given)
    expectStatus(await owner("DELETE", `/v1/webhooks/${created.body.data.id}`), 204, "delete")
    expectStatus(await owner("GET", `/v1/webhooks/${created.body.data.id}`), 404, "gone")
  })

  it("rejects URLs that are not http(s) with a 400 pointing at the field", async () => {
    for (const url of [
      "file:///etc/passwd",
      "ftp://example.com/",
      "gopher://x",
      "not a url",
      "javascript:alert(1)"
    ]) {
      const r = await owner("POST", "/v1/webhooks", doc("webhooks", { url }))
      expect(r.status, url).toBe(400)
      expect(r.body.errors[0].source.pointer, url).toBe("/data/attributes/url")
    }
    const bad = await owner(
      "POST",
      "/v1/webhooks",
      doc("webhooks", { url: receiverUrl, eventTypes: ["BAD TYPE"] })
    )
    expect(bad.status).toBe(400)
    expect(bad.body.errors[0].source.pointer).toMatch(/^\/data\/attributes\/eventTypes/)
  })

  it("members and viewers read webhooks but may not create or delete them", async () => {
    const { hookId } = await makeHook()
    for (const who of [member, viewer]) {
      expectStatus(await who("GET", `/v1/webhooks/${hookId}`), 200, "read")
      expectStatus(await who("GET", `/v1/webhooks/${hookId}/deliveries`), 200, "deliveries")
      expectStatus(await who("POST", "/v1/webhooks", doc("webhooks", { url: receiverUrl })), 403, "create")
      expectStatus(await who("DELETE", `/v1/webhooks/${hookId}`), 403, "delete")
    }
    expectStatus(await owner("GET", `/v1/webhooks/whk_0000000000000000`), 404, "unknown")
    expectStatus(await owner("DELETE", `/v1/webhooks/whk_0000000000000000`), 404, "unknown delete")
    expectStatus(await owner("GET", `/v1/webhooks/whk_0000000000000000/deliveries`), 404, "unknown log")
  })

  it("logs deliveries of matching events, visible through the API", async () => {
    const { hookId } = await makeHook()
    const svc = await deployService(owner, "app", "hooked")
    await waitFor("a delivery", 30_000, async () => {
      const r = await owner("GET", `/v1/webhooks/${hookId}/deliveries`)
      return r.body.data.length > 0 ? r : undefined
    })
    const log = expectStatus(await viewer("GET", `/v1/webhooks/${hookId}/deliveries`), 200, "log")
    const first = log.body.data[0]
    expect(first.type).toBe("webhook-deliveries")
    expect(first.attributes).toMatchObject({ outcome: "delivered", responseStatus: 204 })
    expect(first.relationships.webhook.data.id).toBe(hookId)
    expect(received.length).toBeGreaterThan(0)
    const types = received.map((r) => r.headers["x-kyozo-event"] as string)
    expect(
      types.every((t) => t.startsWith("deploy.") || t === "service.removed"),
      types.join()
    ).toBe(true)
    expect(received.some((r) => r.body.includes(svc.serviceId))).toBe(true)
  }, 60_000)

  it("deletes a webhook; its log goes with it", async () => {
    const { hookId } = await makeHook()
    expectStatus(await owner("DELETE", `/v1/webhooks/${hookId}`), 204, "delete")
    expectStatus(await owner("GET", `/v1/webhooks/${hookId}`), 404, "gone")
    expectStatus(await owner("GET", `/v1/webhooks/${hookId}/deliveries`), 404, "log gone")
    expect((await owner("GET", "/v1/webhooks")).body.data.map((w: any) => w.id)).not.toContain(hookId)
  })
})

describe("recommendations", () => {
  it("suggests limits and a monthly cost from the service's p95 usage", async () => {
    const svc = await deployService(owner, "app", "measured")
    // Wait for a few minute samples of the service.
    await waitFor("metric samples", 30_000, async () => {
      const r = await owner("GET", `/v1/services/${svc.serviceId}/metrics?window=hour`)
      return r.body.data.length >= 3 ? r : undefined
    })
    const samples = (await owner("GET", `/v1/services/${svc.serviceId}/metrics?window=hour`)).body.data
    const r = expectStatus(
      await viewer("GET", `/v1/services/${svc.serviceId}/recommendations?window=day`),
      200,
      "recommendations"
    )
    const a = r.body.data.attributes
    expect(r.body.data.type).toBe("recommendations")
    expect(a.window).toBe("day")
    expect(a.samples).toBeGreaterThanOrEqual(samples.length)
    // p95 is one of the sampled values, and the limits are above it.
    const memories = samples.map((s: any) => s.attributes.memoryBytes)
    expect(a.p95MemoryBytes).toBeGreaterThan(0)
    expect(a.p95MemoryBytes).toBeLessThanOrEqual(Math.max(...memories) * 1.2)
    expect(a.memoryMb * 1024 ** 2).toBeGreaterThan(a.p95MemoryBytes)
    expect(a.memoryMb % 16).toBe(0)
    expect(a.cpuMillis % 50).toBe(0)
    expect(a.prices).toEqual({ vcpuHour: 0.04, gbHour: 0.005 })
    const expectedCost =
      Math.round(((a.cpuMillis / 1000) * 0.04 + (a.memoryMb / 1024) * 0.005) * 730 * 100) / 100
    expect(a.monthlyCost).toBe(expectedCost)
    expect(a.currentMemoryMb).toBeGreaterThan(0)
    expect(a.currentMonthlyCost).toBeGreaterThan(0)

    // The week reads hourly roll-ups: none yet, so the floors apply.
    const week = expectStatus(
      await owner("GET", `/v1/services/${svc.serviceId}/recommendations`),
      200,
      "week"
    ).body.data.attributes
    expect(week.window).toBe("week")
    expect(week.samples).toBe(0)
    expect([week.cpuMillis, week.memoryMb]).toEqual([50, 32])

    expectStatus(
      await owner("GET", `/v1/services/${svc.serviceId}/recommendations?window=year`),
      400,
      "window"
    )
    expectStatus(await owner("GET", `/v1/services/svc_0000000000000000/recommendations`), 404, "unknown")
  }, 60_000)
})

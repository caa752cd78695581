/**
 * `GET /v1/events` against a real server (mock runtime, its own PostgreSQL schema): resume with
 * Last-Event-ID misses nothing and repeats nothing, a team sees only its own events, heartbeats
 * arrive, and events the server appends itself wake readers at once (not only at the fallback poll).
 */
import { describe, expect, it } from "@effect/vitest"
import type { TeamId } from "@kyozo/api/domain/Ids"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { Effect } from "effect"
import { afterAll, beforeAll } from "vitest"

import { openSse, type SseConnection } from "./support/sse.js"
import { startTenantServer, type Tenant, type TenantServer } from "./support/tenants.js"

let ts: TenantServer
let teamA: Tenant
let teamB: Tenant
const open: Array<SseConnection> = []

// The fallback poll is long, so an event seen quickly must have come through the in-process wake-up.
const POLL_MS = 4_000

beforeAll(async () => {
  ts = await startTenantServer({ KYOZO_SSE_HEARTBEAT_MS: "300", KYOZO_SSE_POLL_MS: String(POLL_MS) })
  teamA = await ts.newTenant("sse-a")
  teamB = await ts.newTenant("sse-b")
}, 90_000)

afterAll(async () => {
  for (const c of open) c.close()
  await ts?.close()
})

const connect = async (token: string, headers: Record<string, string> = {}, query = "") => {
  const c = await openSse(`${ts.base}/v1/events${query}`, { authorization: `Bearer ${token}`, ...headers })
  open.push(c)
  return c
}

const append = (teamId: TeamId, type: string, n = 1) =>
  ts.run(
    Effect.gen(function* () {
      const events = yield* DeploymentEventRepo
      const ids: Array<number> = []
      for (let i = 0; i < n; i++) ids.push(yield* events.append({ teamId, type, message: `${type} ${i}` }))
      return ids
    })
  )

describe("GET /v1/events", () => {
  it("answers 401 without a key and 400 for a malformed cursor", async () => {
    const anonymous = await openSse(`${ts.base}/v1/events`)
    expect(anonymous.status).toBe(401)
    const bad = await connect(teamA.token, { "last-event-id": "12abc" })
    expect(bad.status).toBe(400)
    expect(JSON.parse(bad.raw()).errors[0].code).toBe("InvalidCursor")
  })

  it("resumes with Last-Event-ID: nothing missed, nothing repeated", async () => {
    const first = await append(teamA.teamId, "test.before", 3)
    const c1 = await connect(teamA.token)
    expect(c1.status).toBe(200)
    expect(c1.contentType).toMatch(/^text\/event-stream/)
    await c1.waitUntil("the first three events", () => c1.ids().length >= 3)
    expect(c1.ids()).toEqual(first)
    const lastSeen = c1.ids().at(-1)!
    c1.close()

    // Appended while the client is away, and while it reconnects.
    const whileAway = await append(teamA.teamId, "test.away", 5)
    const reconnecting = connect(teamA.token, { "last-event-id": String(lastSeen) })
    const duringReconnect = await append(teamA.teamId, "test.reconnect", 5)
    const c2 = await reconnecting
    const afterward = await append(teamA.teamId, "test.after", 2)
    const expected = [...whileAway, ...duringReconnect, ...afterward]
    await c2.waitUntil("every event after the cursor", () => c2.ids().length >= expected.length, 15_000)
    // A little longer: a duplicate would show up now.
    await new Promise((r) => setTimeout(r, 500))
    expect(c2.ids()).toEqual(expected)
    const frame = c2.frames.find((f) => f.id === String(whileAway[0]))!
    expect(frame.event).toBe("test.away")
    expect(JSON.parse(frame.data!)).toMatchObject({
      id: whileAway[0],
      teamId: teamA.teamId,
      type: "test.away"
    })
  }, 30_000)

  it("?after= is a cursor too", async () => {
    const ids = await append(teamA.teamId, "test.after-param", 2)
    const c = await connect(teamA.token, {}, `?after=${ids[0]}`)
    await c.waitUntil("the second event", () => c.ids().includes(ids[1]!))
    expect(c.ids()[0]).toBe(ids[1])
  })

  it("?after=latest starts at the newest event: no history, its cursor first, then live ones", async () => {
    const history = await append(teamA.teamId, "test.history", 3)
    const c = await connect(teamA.token, {}, "?after=latest")
    const live = await append(teamA.teamId, "test.live", 2)
    await c.waitUntil("the live events", () => live.every((id) => c.ids().includes(id)))
    // The first frame is the bare cursor (no data): a reconnect with it misses nothing.
    const cursor = c.frames.find((f) => f.id !== undefined)!
    expect(cursor.data).toBeUndefined()
    expect(Number(cursor.id)).toBeGreaterThanOrEqual(history.at(-1)!)
    const withData = c.frames
      .filter((f) => f.data !== undefined && f.id !== undefined)
      .map((f) => Number(f.id))
    expect(withData).toEqual(live)
    for (const id of history) expect(withData).not.toContain(id)
    // Last-Event-ID wins over ?after=latest (a resume).
    const resumed = await connect(teamA.token, { "last-event-id": String(history[0]) }, "?after=latest")
    await resumed.waitUntil("events after the cursor", () => resumed.ids().includes(live[1]!))
    expect(resumed.ids().slice(0, 2)).toEqual(history.slice(1))
  })

  it("team B's stream never shows team A's events", async () => {
    const cb = await connect(teamB.token)
    const ca = await connect(teamA.token, {}, `?after=${(await append(teamA.teamId, "test.marker"))[0]}`)
    const aIds = await append(teamA.teamId, "test.secret-a", 3)
    const bIds = await append(teamB.teamId, "test.mine-b", 2)
    await cb.waitUntil("team B's events", () => cb.ids().length >= 2, 10_000)
    await ca.waitUntil("team A's events", () => ca.ids().length >= 3, 10_000)
    await new Promise((r) => setTimeout(r, 500))
    expect(cb.ids()).toEqual(bIds)
    expect(ca.ids()).toEqual(aIds)
    expect(cb.raw()).not.toContain(teamA.teamId)
    expect(cb.raw()).not.toContain("secret-a")
  }, 20_000)

  it("sends heartbeat comments at the configured interval", async () => {
    const c = await connect(teamB.token)
    const started = Date.now()
    await c.waitUntil(
      "two heartbeats",
      () => c.frames.filter((f) => f.comment === "heartbeat").length >= 2,
      3_000
    )
    expect(Date.now() - started).toBeGreaterThanOrEqual(500)
  })

  it("an event the server appends wakes the stream at once, not at the fallback poll", async () => {
    const service = await ts.run(
      Effect.flatMap(ServiceRepo, (s) => s.create({ teamId: teamA.teamId, name: `gone-${Date.now()}` }))
    )
    const last = await ts.run(Effect.flatMap(DeploymentEventRepo, (e) => e.lastId(teamA.teamId)))
    const c = await connect(teamA.token, { "last-event-id": String(last) })
    await c.waitUntil("connected", () => c.frames.some((f) => f.comment === "connected"))
    await Effect.runPromise(
      Effect.flatMap(KyozoClient, (client) => client.RemoveService({ service: service.id })).pipe(
        Effect.provide(KyozoClient.layer({ url: ts.base, token: teamA.token }))
      )
    )
    const removedAt = Date.now()
    await c.waitUntil("service.removed", () => c.frames.some((f) => f.event === "service.removed"), 10_000)
    expect(Date.now() - removedAt).toBeLessThan(POLL_MS / 2)
  }, 30_000)
})

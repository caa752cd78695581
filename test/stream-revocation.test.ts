/**
 * A key that stops being valid ends the streams it opened: an SSE `/v1/events` stream and an RPC
 * event stream end within a second of the key's revocation (through the API or straight in the
 * database), its expiry, or the removal of its member from the team.
 */
import { describe, expect, it } from "@effect/vitest"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { ApiKeyRepo } from "@kyozo/core/store/ApiKeyRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { UserRepo } from "@kyozo/core/store/UserRepo"
import { Effect, Fiber, Stream } from "effect"
import { afterAll, beforeAll } from "vitest"

import { startTenantServer, type Tenant, type TenantServer } from "./support/tenants.js"

let ts: TenantServer
let team: Tenant

beforeAll(async () => {
  ts = await startTenantServer()
  team = await ts.newTenant("streams", "owner")
}, 90_000)

afterAll(async () => {
  await ts?.close()
})

const issue = (expiresAt: Date | null = null, userId = team.userId) =>
  ts.run(
    Effect.flatMap(ApiKeyRepo, (keys) =>
      keys.issue({ teamId: team.teamId, userId, name: "stream", expiresAt })
    )
  )

/** Opens `/v1/events`; resolves with the time the server ended the stream (or rejects after 10 s). */
const openSse = async (token: string) => {
  const res = await fetch(`${ts.base}/v1/events`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000)
  })
  expect(res.status).toBe(200)
  const reader = res.body!.getReader()
  const first = await reader.read()
  expect(new TextDecoder().decode(first.value)).toContain(": connected")
  const ended = (async () => {
    for (;;) {
      const r = await reader.read()
      if (r.done) return Date.now()
    }
  })()
  return { ended }
}

const endsWithinASecond = async (ended: Promise<number>, act: () => Promise<unknown>) => {
  await new Promise((r) => setTimeout(r, 300))
  const at = Date.now()
  await act()
  const end = await ended
  expect(end - at).toBeLessThan(1_000)
}

describe("open streams end with their key", () => {
  it("revocation through the API ends an open SSE stream", async () => {
    const { apiKey, key } = await issue()
    const { ended } = await openSse(key)
    await endsWithinASecond(ended, () =>
      fetch(`${ts.base}/v1/api-keys/${apiKey.id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${team.token}` }
      }).then((r) => expect(r.status).toBe(204))
    )
  })

  it("revocation in the database (another process) ends an open SSE stream", async () => {
    const { apiKey, key } = await issue()
    const { ended } = await openSse(key)
    await endsWithinASecond(ended, () =>
      ts.run(Effect.flatMap(ApiKeyRepo, (keys) => keys.revoke(team.teamId, apiKey.id)))
    )
  })

  it("expiry ends an open SSE stream", async () => {
    const expiresAt = new Date(Date.now() + 1_500)
    const { key } = await issue(expiresAt)
    const { ended } = await openSse(key)
    expect((await ended) - expiresAt.getTime()).toBeLessThan(1_000)
  })

  it("removing the member ends the streams of their keys", async () => {
    const user = await ts.run(
      Effect.gen(function* () {
        const u = yield* (yield* UserRepo).create({
          email: `leaver-${Date.now()}@example.test`,
          name: "leaver"
        })
        yield* (yield* TeamRepo).addMember(team.teamId, u.id, "member")
        return u
      })
    )
    const { key } = await issue(null, user.id)
    const { ended } = await openSse(key)
    await endsWithinASecond(ended, () =>
      fetch(`${ts.base}/v1/members/${user.id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${team.token}` }
      }).then((r) => expect(r.status).toBe(204))
    )
  })

  it("revocation ends an open RPC event stream", async () => {
    const { apiKey, key } = await issue()
    const program = Effect.gen(function* () {
      const client = yield* KyozoClient
      const fiber = yield* client.Events({ follow: true }).pipe(Stream.runDrain, Effect.fork)
      yield* Effect.sleep("500 millis")
      const at = Date.now()
      yield* Effect.promise(() => ts.run(Effect.flatMap(ApiKeyRepo, (k) => k.revoke(team.teamId, apiKey.id))))
      yield* Fiber.join(fiber).pipe(Effect.timeout("5 seconds"), Effect.either)
      return Date.now() - at
    }).pipe(Effect.scoped, Effect.provide(KyozoClient.layer({ url: ts.base, token: key })))
    expect(await Effect.runPromise(program)).toBeLessThan(1_000)
  })
})

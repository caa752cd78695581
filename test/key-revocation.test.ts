/**
 * Revoked and expired API keys fail at once, on every front door: RPC, `POST /v1/uploads` and
 * `GET /v1/events`. Verification is never cached, so the very next request after a revocation
 * (or after the expiry instant) is refused.
 */
import { describe, expect, it } from "@effect/vitest"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Unauthorized } from "@kyozo/api/KyozoRpc"
import { ApiKeyRepo } from "@kyozo/core/ApiKeyRepo"
import { Effect, Either } from "effect"
import { afterAll, beforeAll } from "vitest"
import { startTenantServer, type Tenant, type TenantServer } from "./support/tenants.js"

let ts: TenantServer
let team: Tenant

beforeAll(async () => {
  ts = await startTenantServer()
  team = await ts.newTenant("revoke", "owner")
}, 90_000)

afterAll(async () => {
  await ts?.close()
})

const rpc = <A, E>(token: string, f: (c: KyozoClient["Type"]) => Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.flatMap(KyozoClient, f).pipe(
      Effect.either,
      Effect.provide(KyozoClient.layer({ url: ts.base, token }))
    )
  )

const uploadStatus = async (token: string) =>
  (
    await fetch(`${ts.base}/v1/uploads`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: new Uint8Array(512)
    })
  ).status

const eventsStatus = async (token: string) => {
  const res = await fetch(`${ts.base}/v1/events`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(5_000)
  })
  await res.body?.cancel()
  return res.status
}

const expectRefusedEverywhere = async (token: string) => {
  const who = await rpc(token, (c) => c.WhoAmI())
  expect(Either.isLeft(who)).toBe(true)
  expect(Either.getLeft(who).pipe((o) => (o._tag === "Some" ? o.value : undefined))).toBeInstanceOf(
    Unauthorized
  )
  expect(await uploadStatus(token)).toBe(401)
  expect(await eventsStatus(token)).toBe(401)
}

const expectAcceptedEverywhere = async (token: string) => {
  expect(Either.isRight(await rpc(token, (c) => c.WhoAmI()))).toBe(true)
  // Zero blocks are an empty tar: accepted (past authentication).
  expect(await uploadStatus(token)).toBe(201)
  expect(await eventsStatus(token)).toBe(200)
}

describe("key lifecycle", () => {
  it("a revoked key is refused by the very next request", async () => {
    const issued = await rpc(team.token, (c) => c.IssueApiKey({ name: "short-lived" }))
    const key = Either.getOrThrow(issued)
    await expectAcceptedEverywhere(key.key)
    const revoked = await rpc(team.token, (c) => c.RevokeApiKey({ keyId: key.keyId }))
    expect(Either.isRight(revoked)).toBe(true)
    await expectRefusedEverywhere(key.key)
    // The key that revoked it still works.
    await expectAcceptedEverywhere(team.token)
  })

  it("an expired key is refused from its expiry on", async () => {
    const { key } = await ts.run(
      Effect.flatMap(ApiKeyRepo, (keys) =>
        keys.issue({ teamId: team.teamId, userId: team.userId, expiresAt: new Date(Date.now() + 1_500) })
      )
    )
    await expectAcceptedEverywhere(key)
    await new Promise((r) => setTimeout(r, 1_700))
    await expectRefusedEverywhere(key)
  })
})

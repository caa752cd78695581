/**
 * Revoked and expired API keys fail at once, on every front door: RPC, `POST /v1/uploads`,
 * `GET /v1/events` and the service list (`GET /v1/services`, whose repeated answers come from
 * memory without the HTTP stack: the hot route). A verified key is cached only until anything that can end it changes, so the
 * very next request after a revocation (or after the expiry instant) is refused, on PostgreSQL and
 * on the embedded database; a revocation by another process reaches the server through NOTIFY.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { describe, expect, it } from "@effect/vitest"
import type { ApiKeyId } from "@kyozo/api/domain/Ids"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Unauthorized } from "@kyozo/api/KyozoRpc"
import { ApiKeyRepo } from "@kyozo/core/store/ApiKeyRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { Effect, Either } from "effect"
import { afterAll, beforeAll } from "vitest"

import { rpcAt } from "./support/rpc.js"
import { startServer, waitFor } from "./support/server.js"
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
  rpcAt(ts.base, token, f)

/** Polls until the key is refused; returns how long that took. */
const refusedWithin = async (token: string, ms: number) => {
  const started = Date.now()
  await waitFor("the key to be refused", ms, async () =>
    Either.isLeft(await rpc(token, (c) => c.WhoAmI())) ? true : undefined
  )
  return Date.now() - started
}

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

/** The service list, asked twice: the second answer is the hot route's (key and page cached). */
const servicesStatus = async (token: string, base = ts.base) => {
  const statuses: Array<number> = []
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`${base}/v1/services?page[size]=10`, {
      headers: { authorization: `Bearer ${token}` }
    })
    await res.arrayBuffer()
    statuses.push(res.status)
  }
  return statuses
}

const expectRefusedEverywhere = async (token: string) => {
  const who = await rpc(token, (c) => c.WhoAmI())
  expect(Either.isLeft(who)).toBe(true)
  expect(Either.getLeft(who).pipe((o) => (o._tag === "Some" ? o.value : undefined))).toBeInstanceOf(
    Unauthorized
  )
  expect(await uploadStatus(token)).toBe(401)
  expect(await eventsStatus(token)).toBe(401)
  expect(await servicesStatus(token)).toEqual([401, 401])
}

const expectAcceptedEverywhere = async (token: string) => {
  expect(Either.isRight(await rpc(token, (c) => c.WhoAmI()))).toBe(true)
  // Zero blocks are an empty tar: accepted (past authentication).
  expect(await uploadStatus(token)).toBe(201)
  expect(await eventsStatus(token)).toBe(200)
  expect(await servicesStatus(token)).toEqual([200, 200])
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

  it("a key revoked by another process on the same database is refused promptly, well before the cache's 10 s bound", async () => {
    const { key, apiKey } = await ts.run(
      Effect.flatMap(ApiKeyRepo, (keys) => keys.issue({ teamId: team.teamId, userId: team.userId }))
    )
    // Used twice: the second answer comes from the server's cache of verified keys.
    await expectAcceptedEverywhere(key)
    await expectAcceptedEverywhere(key)
    // This test process is the other process: the server learns of it only through the database.
    await ts.run(Effect.flatMap(ApiKeyRepo, (keys) => keys.revoke(team.teamId, apiKey.id as ApiKeyId)))
    expect(await refusedWithin(key, 3_000)).toBeLessThan(3_000)
    await expectRefusedEverywhere(key)
  })

  it("a member removed by another process loses access promptly", async () => {
    const member = await ts.newTenant("leaver", "member")
    await ts.run(Effect.flatMap(TeamRepo, (teams) => teams.addMember(team.teamId, member.userId, "member")))
    const { key } = await ts.run(
      Effect.flatMap(ApiKeyRepo, (keys) => keys.issue({ teamId: team.teamId, userId: member.userId }))
    )
    await expectAcceptedEverywhere(key)
    await ts.run(Effect.flatMap(TeamRepo, (teams) => teams.removeMember(team.teamId, member.userId)))
    expect(await refusedWithin(key, 3_000)).toBeLessThan(3_000)
  })
})

describe("key lifecycle on the embedded database", () => {
  it("a revoked key is refused by the very next request", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-revoke-pglite-"))
    const server = await startServer({ KYOZO_RUNTIME: "mock", KYOZO_DATA_DIR: dataDir })
    try {
      await waitFor("server /healthz", 60_000, async () =>
        (await server.get("/healthz")).status === 200 ? true : undefined
      )
      const base = `http://127.0.0.1:${server.port}`
      const owner = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
        .token as string
      const issued = Either.getOrThrow(await rpcAt(base, owner, (c) => c.IssueApiKey({ name: "embedded" })))
      for (let i = 0; i < 3; i++)
        expect(Either.isRight(await rpcAt(base, issued.key, (c) => c.WhoAmI()))).toBe(true)
      expect(await servicesStatus(issued.key, base)).toEqual([200, 200])
      expect(Either.isRight(await rpcAt(base, owner, (c) => c.RevokeApiKey({ keyId: issued.keyId })))).toBe(
        true
      )
      expect(await servicesStatus(issued.key, base)).toEqual([401, 401])
      expect(Either.isLeft(await rpcAt(base, issued.key, (c) => c.WhoAmI()))).toBe(true)
      expect(Either.isRight(await rpcAt(base, owner, (c) => c.WhoAmI()))).toBe(true)
    } finally {
      await server.stop()
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }, 90_000)
})

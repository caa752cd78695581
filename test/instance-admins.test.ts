/**
 * Instance admins (real server, PostgreSQL): the bootstrap user is one (whoami says so); only
 * instance admins create teams, change quotas (REST `PATCH /v1/teams/{id}`, RPC SetTeamQuotas,
 * `kyozo team quota`) and read `/metrics` (or a scrape token does). Others get 403 on their own team
 * and 404 on another's. New teams get the configured default quotas.
 */
import { execFile } from "node:child_process"

import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { type Call, caller, doc, expectStatus } from "./support/rest.js"
import { rpcAt, tagOf } from "./support/rpc.js"
import { repoRoot } from "./support/server.js"
import { startTenantServer, type Tenant, type TenantServer } from "./support/tenants.js"

const SCRAPE = "scrape-token-0123456789abcdef"
let ts: TenantServer
let admin: Call
let other: Tenant
let otherCall: Call

beforeAll(async () => {
  ts = await startTenantServer({
    KYOZO_RATE_LIMIT: "off",
    KYOZO_METRICS_TOKEN: SCRAPE,
    KYOZO_DEFAULT_QUOTA_SERVICES: "77"
  })
  admin = caller(ts.server.port, ts.owner.token)
  other = await ts.newTenant("plain-owner", "owner")
  otherCall = caller(ts.server.port, other.token)
}, 90_000)

afterAll(async () => {
  await ts?.close()
})

const rpc = <A, E>(token: string, f: (c: KyozoClient["Type"]) => Effect.Effect<A, E>) =>
  rpcAt(ts.base, token, f)

const quotas = (attrs: Record<string, number>) => doc("teams", attrs)

describe("instance admins", () => {
  it("the bootstrap user is an instance admin; a team owner is not", async () => {
    const me = Either.getOrThrow(await rpc(ts.owner.token, (c) => c.WhoAmI()))
    expect(me.instanceAdmin).toBe(true)
    const them = Either.getOrThrow(await rpc(other.token, (c) => c.WhoAmI()))
    expect(them.instanceAdmin).toBe(false)
  })

  it("only instance admins create teams; new teams get the configured default quotas", async () => {
    const denied = await otherCall("POST", "/v1/teams", doc("teams", { name: `nope-${Date.now()}` }))
    expect(denied.status, denied.text).toBe(403)
    expect(denied.body.errors[0].code).toBe("instance_admin_required")
    const made = expectStatus(
      await admin("POST", "/v1/teams", doc("teams", { name: `made-${Date.now()}` })),
      201,
      "create"
    )
    expect(made.body.data.attributes.quotaServices).toBe(77)
    // The built-in defaults hold at least 50 services of the default size (500 m, 512 MB).
    expect(made.body.data.attributes.quotaCpuMillis).toBeGreaterThanOrEqual(50 * 500)
    expect(made.body.data.attributes.quotaMemoryMb).toBeGreaterThanOrEqual(50 * 512)
  })

  it("PATCH /v1/teams/{id}: 200 for an instance admin, 403 on one's own team, 404 on another's", async () => {
    const own = await otherCall("PATCH", `/v1/teams/${other.teamId}`, quotas({ quotaServices: 999 }))
    expect(own.status, own.text).toBe(403)
    const foreign = await otherCall("PATCH", `/v1/teams/${ts.owner.teamId}`, quotas({ quotaServices: 999 }))
    expect(foreign.status, foreign.text).toBe(404)
    const unknown = await otherCall(
      "PATCH",
      "/v1/teams/team_0000000000000000",
      quotas({ quotaServices: 999 })
    )
    expect(unknown.status).toBe(404)
    expect(foreign.body.errors[0].detail).toBe(unknown.body.errors[0].detail)
    const ok = expectStatus(
      await admin(
        "PATCH",
        `/v1/teams/${other.teamId}`,
        quotas({ quotaServices: 7, quotaCpuMillis: 3_000, quotaMemoryMb: 4_096 })
      ),
      200,
      "admin"
    )
    expect(ok.body.data.attributes).toMatchObject({
      quotaServices: 7,
      quotaCpuMillis: 3_000,
      quotaMemoryMb: 4_096
    })
    expectStatus(
      await admin("PATCH", `/v1/teams/${other.teamId}`, quotas({ quotaServices: -1 })),
      400,
      "negative"
    )
    expect((await otherCall("GET", "/v1/teams/current")).body.data.attributes.quotaServices).toBe(7)
  })

  it("RPC SetTeamQuotas follows the same rule", async () => {
    const own = await rpc(other.token, (c) => c.SetTeamQuotas({ teamId: other.teamId, quotaServices: 999 }))
    expect(Either.isLeft(own) && own.left._tag).toBe("InstanceAdminRequired")
    const foreign = await rpc(other.token, (c) =>
      c.SetTeamQuotas({ teamId: ts.owner.teamId, quotaServices: 1 })
    )
    expect(Either.isLeft(foreign) && foreign.left._tag).toBe("TeamNotFound")
    const ok = await rpc(ts.owner.token, (c) => c.SetTeamQuotas({ teamId: other.teamId, quotaServices: 8 }))
    expect(Either.getOrThrow(ok).quotaServices).toBe(8)
  })

  it("an instance admin makes another user an instance admin; others cannot", async () => {
    const third = await ts.newTenant("promoted", "owner")
    expect(
      tagOf(await rpc(other.token, (c) => c.SetInstanceAdmin({ userId: third.userId, instanceAdmin: true })))
    ).toBe("InstanceAdminRequired")
    expect(
      tagOf(
        await rpc(ts.owner.token, (c) =>
          c.SetInstanceAdmin({ userId: "usr_0000000000000000", instanceAdmin: true })
        )
      )
    ).toBe("UserNotFound")
    expect(
      tagOf(
        await rpc(ts.owner.token, (c) => c.SetInstanceAdmin({ userId: third.userId, instanceAdmin: true }))
      )
    ).toBe("ok")
    expect(Either.getOrThrow(await rpc(third.token, (c) => c.WhoAmI())).instanceAdmin).toBe(true)
    const made = await caller(ts.server.port, third.token)(
      "POST",
      "/v1/teams",
      doc("teams", { name: `by-third-${Date.now()}` })
    )
    expect(made.status, made.text).toBe(201)
  })

  it("kyozo team quota changes a team's quotas", async () => {
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const env: Record<string, string> = { ...(process.env as Record<string, string>) }
      Object.assign(env, { KYOZO_URL: ts.base, KYOZO_TOKEN: ts.owner.token, KYOZO_DATA_DIR: ts.dataDir })
      execFile(
        "pnpm",
        ["--silent", "kyozo", "team", "quota", other.teamId, "--services", "9", "--json"],
        { cwd: repoRoot, env, timeout: 60_000 },
        (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr })
      )
    })
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ id: other.teamId, quotaServices: 9 })
  })

  it("/metrics: 401 without a token or with a plain key; 200 for the scrape token or an admin key", async () => {
    const get = (token?: string) =>
      fetch(`${ts.base}/metrics`, {
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` }
      })
    for (const token of [undefined, other.token, "wrong-token", ""]) {
      const r = await get(token)
      expect(r.status, String(token)).toBe(401)
      expect(r.headers.get("content-type")).toContain("json")
      expect(await r.text()).not.toContain("kyozo_")
    }
    for (const token of [SCRAPE, ts.owner.token]) {
      const r = await get(token)
      expect(r.status).toBe(200)
      expect(await r.text()).toContain("# TYPE")
    }
  })
})

/**
 * API keys and members, one rule for REST and RPC (real server, PostgreSQL): anyone revokes their
 * own key, only admins others'; nobody mints keys above their role; removing a member revokes
 * their keys for good; a user of another team joins only by accepting an invitation, and the
 * inviting team learns nothing about the user's other teams. RPC inputs carry REST's bounds.
 */
import { KyozoClient } from "@kyozo/api/KyozoClient"
import type { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { type Call, caller, doc, expectStatus, memberWithKey } from "./support/rest.js"
import { rpcAt, tagOf } from "./support/rpc.js"
import { startTenantServer, type Tenant, type TenantServer } from "./support/tenants.js"

let ts: TenantServer
let team: Tenant
let owner: Call

beforeAll(async () => {
  ts = await startTenantServer({ KYOZO_RATE_LIMIT: "off" })
  team = await ts.newTenant("keys", "owner")
  owner = caller(ts.server.port, team.token)
}, 90_000)

afterAll(async () => {
  await ts?.close()
})

const rpc = <A, E>(token: string, f: (c: KyozoClient["Type"]) => Effect.Effect<A, E>) =>
  rpcAt(ts.base, token, f)

let n = 0
const email = (who: string) => `${who}-${process.pid}-${++n}@keys.example`

describe("one API-key policy", () => {
  it("a member revokes their own key over REST and RPC alike, but nobody else's", async () => {
    const alice = await memberWithKey(owner, email("alice"), "member")
    const bob = await memberWithKey(owner, email("bob"), "member")
    const a = caller(ts.server.port, alice.token)
    // Someone else's key: 403 on REST, Forbidden on RPC.
    expectStatus(await a("DELETE", `/v1/api-keys/${bob.keyId}`), 403, "REST other's")
    expect(tagOf(await rpc(alice.token, (c) => c.RevokeApiKey({ keyId: bob.keyId })))).toBe("Forbidden")
    // One's own: both doors allow it.
    const second = expectStatus(
      await owner("POST", "/v1/api-keys", doc("api-keys", { userId: alice.userId, name: "second" })),
      201,
      "second key"
    )
    expect(tagOf(await rpc(alice.token, (c) => c.RevokeApiKey({ keyId: second.body.data.id })))).toBe("ok")
    expectStatus(await a("DELETE", `/v1/api-keys/${alice.keyId}`), 204, "REST own")
    expectStatus(await a("GET", "/v1/teams/current"), 401, "revoked")
  })

  it("an admin cannot mint keys for an owner, over REST or RPC", async () => {
    const admin = await memberWithKey(owner, email("adm"), "admin")
    const ad = caller(ts.server.port, admin.token)
    expectStatus(await ad("POST", "/v1/api-keys", doc("api-keys", { userId: team.userId })), 403, "REST")
    expect(tagOf(await rpc(admin.token, (c) => c.IssueApiKey({ userId: team.userId })))).toBe("Forbidden")
    expect(tagOf(await rpc(admin.token, (c) => c.IssueApiKey({ userId: "usr_0000000000000000" })))).toBe(
      "MemberNotFound"
    )
  })

  it("RPC inputs are bounded like REST's (key expiry, name length, ids, afterId)", async () => {
    const post = (body: unknown) =>
      fetch(`${ts.base}/rpc`, {
        method: "POST",
        headers: { authorization: `Bearer ${team.token}`, "content-type": "application/ndjson" },
        body: JSON.stringify(body) + "\n"
      }).then(async (r) => ({ status: r.status, text: await r.text() }))
    for (const payload of [
      { tag: "IssueApiKey", payload: { expiresInSeconds: -5 } },
      { tag: "IssueApiKey", payload: { expiresInSeconds: 1e12 } },
      { tag: "IssueApiKey", payload: { name: "x".repeat(5_000) } },
      { tag: "Events", payload: { afterId: 1e300 } },
      { tag: "GetService", payload: { service: "svc\u0000x" } },
      { tag: "GetService", payload: { service: "s".repeat(129) } }
    ]) {
      const r = await post({ _tag: "Request", id: "1", headers: [], ...payload })
      expect(r.status, r.text).toBe(200)
      // Refused at decoding: never a database error, never a key.
      expect(r.text, JSON.stringify(payload).slice(0, 80)).not.toMatch(/SqlError|"key":"kz_/)
      expect(r.text).toMatch(/Expected|Parse|between|length|NUL/i)
    }
  })

  it("a credential in an RPC message's headers does not override the HTTP header", async () => {
    const r = await fetch(`${ts.base}/rpc`, {
      method: "POST",
      headers: { "content-type": "application/ndjson" },
      body:
        JSON.stringify({
          _tag: "Request",
          id: "1",
          tag: "WhoAmI",
          payload: {},
          headers: [["authorization", `Bearer ${team.token}`]]
        }) + "\n"
    })
    const text = await r.text()
    expect(text).toContain("Unauthorized")
    expect(text).not.toContain(team.userId)
  })
})

describe("members", () => {
  it("removing a member revokes their keys: re-adding them does not bring a key back", async () => {
    const who = email("leaver")
    const m = await memberWithKey(owner, who, "member")
    const c = caller(ts.server.port, m.token)
    expectStatus(await c("GET", "/v1/teams/current"), 200, "before")
    expectStatus(await owner("DELETE", `/v1/members/${m.userId}`), 204, "remove")
    expectStatus(await c("GET", "/v1/teams/current"), 401, "after removal")
    const keys = (await owner("GET", "/v1/api-keys")).body.data.filter(
      (k: any) => k.attributes.userId === m.userId
    )
    expect(keys.length).toBeGreaterThan(0)
    for (const k of keys) expect(k.attributes.revokedAt).not.toBeNull()
    // Back in the team (the server's instance admin adds them directly): the old key stays dead.
    const admin = caller(ts.server.port, ts.owner.token)
    const added = await admin("POST", "/v1/members", doc("members", { email: who, role: "member" }))
    expect(added.status).toBe(202)
    expectStatus(await c("GET", "/v1/teams/current"), 401, "after re-add")
  })

  it("a user of another team is invited, sees the invitation, and joins by accepting it", async () => {
    // A user of team A, known there as "Secret Name".
    const teamA = await ts.newTenant("inv-a", "owner")
    const a = caller(ts.server.port, teamA.token)
    const invited = email("carol")
    expectStatus(
      await a("POST", "/v1/members", doc("members", { email: invited, name: "Secret Name", role: "member" })),
      202,
      "carol in A"
    )
    const carol = await memberWithKey(a, `${invited}`, "member").catch(() => undefined)
    expect(carol).toBeUndefined() // already a member: the helper's add is a 409
    const carolId = (await a("GET", "/v1/members")).body.data.find(
      (m: any) => m.attributes.email === invited
    ).id
    const carolKey = expectStatus(
      await a("POST", "/v1/api-keys", doc("api-keys", { userId: carolId })),
      201,
      "carol's key"
    ).body.data.attributes.key as string
    // Team B's owner (no instance admin) adds her by email: an invitation, revealing nothing of A.
    const teamB = await ts.newTenant("inv-b", "owner")
    const b = caller(ts.server.port, teamB.token)
    const inv = expectStatus(
      await b("POST", "/v1/members", doc("members", { email: invited, role: "viewer" })),
      202,
      "invite"
    )
    expect(inv.body.data.type).toBe("invitations")
    expect(inv.text).not.toContain("Secret Name")
    expect(inv.text).not.toContain(teamA.teamId)
    // B lists her at once, as pending (the e-mail and role B gave; not the name she has in A).
    const bMembers = expectStatus(await b("GET", "/v1/members"), 200, "B's members")
    const pending = (bMembers.body.data as Array<any>).find((m) => m.attributes.email === invited)
    expect(pending.attributes).toMatchObject({ state: "pending", role: "viewer", name: "" })
    expect(bMembers.text).not.toContain("Secret Name")
    // No key for someone who has not joined.
    expect(
      (await b("POST", "/v1/api-keys", doc("api-keys", { userId: pending.id }))).status
    ).toBeGreaterThanOrEqual(400)
    // A role change before she accepts changes what she is offered.
    const changed = expectStatus(
      await b("PATCH", `/v1/members/${pending.id}`, doc("members", { role: "member" })),
      200,
      "re-invite as member"
    )
    expect(changed.body.data.attributes).toMatchObject({ state: "pending", role: "member" })
    // Carol sees it and accepts it: she gets a key for B.
    const c = caller(ts.server.port, carolKey)
    const mine = expectStatus(await c("GET", "/v1/invitations"), 200, "mine")
    expect(mine.body.data).toHaveLength(1)
    expect(mine.body.data[0].attributes.role).toBe("member")
    expectStatus(await b("POST", `/v1/invitations/${inv.body.data.id}/accept`), 404, "not B's to accept")
    const accepted = expectStatus(
      await c("POST", `/v1/invitations/${inv.body.data.id}/accept`),
      201,
      "accept"
    )
    const bKey = accepted.body.meta.key.attributes.key as string
    const asB = caller(ts.server.port, bKey)
    const current = expectStatus(await asB("GET", "/v1/teams/current"), 200, "B key")
    expect(current.body.data.id).toBe(teamB.teamId)
    const joined = (await b("GET", "/v1/members")).body.data.filter(
      (m: any) => m.attributes.email === invited
    )
    expect(joined.map((m: any) => [m.attributes.state, m.attributes.role])).toEqual([["active", "member"]])
    expectStatus(await c("POST", `/v1/invitations/${inv.body.data.id}/accept`), 404, "used up")
  })

  it("inviting answers alike whether the e-mail has an account or not", async () => {
    const other = await ts.newTenant("acct-a", "owner")
    const known = email("known")
    expectStatus(
      await caller(ts.server.port, other.token)(
        "POST",
        "/v1/members",
        doc("members", { email: known, role: "member" })
      ),
      202,
      "known in A"
    )
    const team = await ts.newTenant("acct-b", "owner")
    const b = caller(ts.server.port, team.token)
    const unknown = email("nobody")
    const toKnown = await b("POST", "/v1/members", doc("members", { email: known, role: "viewer" }))
    const toUnknown = await b("POST", "/v1/members", doc("members", { email: unknown, role: "viewer" }))
    expect(toKnown.status).toBe(toUnknown.status)
    expect(toKnown.status).toBe(202)
    const shape = (r: typeof toKnown) => ({
      type: r.body.data.type,
      id: /^inv_/.test(r.body.data.id),
      keys: Object.keys(r.body.data.attributes).sort(),
      role: r.body.data.attributes.role,
      top: Object.keys(r.body).sort()
    })
    expect(shape(toKnown)).toEqual(shape(toUnknown))
    expect(toKnown.body.data.attributes.email).toBe(known)
    expect(toUnknown.body.data.attributes.email).toBe(unknown)
    // Each still gets what they need: the new person is a member (an admin issues their key),
    // the one with an account holds an invitation to accept.
    // Both are listed at once: the new person active, the one with an account pending.
    const members = (await b("GET", "/v1/members")).body.data as Array<any>
    const stateOf = (e: string) => members.find((m) => m.attributes.email === e)?.attributes.state
    expect(stateOf(unknown)).toBe("active")
    expect(stateOf(known)).toBe("pending")
    // Withdrawn: gone from the list, and the invitation with it.
    const knownId = members.find((m) => m.attributes.email === known).id
    expectStatus(await b("DELETE", `/v1/members/${knownId}`), 204, "withdraw")
    expect(JSON.stringify((await b("GET", "/v1/members")).body)).not.toContain(known)
    expect((await b("PATCH", `/v1/members/${knownId}`, doc("members", { role: "admin" }))).status).toBe(404)
  })
})

/**
 * Role × action matrix, on REST and RPC alike (one Policy behind both): team roles
 * owner/admin/member/viewer, and per-service grants that raise one user's rights on one service
 * only. "allowed" means the policy let the call through (any answer but 403 / Forbidden);
 * "denied" means exactly 403 / Forbidden.
 */
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import {
  type Call,
  caller,
  deployService,
  doc,
  expectStatus,
  memberWithKey,
  start,
  type Started
} from "./support/rest.js"

type Who = "owner" | "admin" | "member" | "viewer" | "viewerDeployS1" | "memberAdminS1"
const WHO: ReadonlyArray<Who> = ["owner", "admin", "member", "viewer", "viewerDeployS1", "memberAdminS1"]

let s: Started
const tokens = {} as Record<Who, string>
const users = {} as Record<Who, string>
let S1: string
let S2: string

beforeAll(async () => {
  s = await start("kyozo-roles-")
  const owner = caller(s.server.port, s.ownerToken)
  tokens.owner = s.ownerToken
  for (const [who, role] of [
    ["admin", "admin"],
    ["member", "member"],
    ["viewer", "viewer"],
    ["viewerDeployS1", "viewer"],
    ["memberAdminS1", "member"]
  ] as const) {
    const m = await memberWithKey(owner, `${who.toLowerCase()}@example.com`, role)
    tokens[who] = m.token
    users[who] = m.userId
  }
  S1 = (await deployService(owner, "app", "s-one")).serviceId
  S2 = (await deployService(owner, "app2", "s-two")).serviceId
  for (const [who, permission] of [
    ["viewerDeployS1", "deploy"],
    ["memberAdminS1", "admin"]
  ] as const)
    expectStatus(
      await owner(
        "POST",
        `/v1/services/${S1}/permissions`,
        doc("service-permissions", { userId: users[who], permission })
      ),
      201,
      `grant ${permission}`
    )
}, 120_000)

afterAll(async () => {
  await s?.stop()
})

interface Action {
  readonly name: string
  readonly allowed: ReadonlyArray<Who>
  /** The error code of a refusal (default "forbidden"). */
  readonly code?: string
  readonly run: (call: Call, who: Who) => Promise<{ status: number; text: string }>
}

const ALL = WHO
const ADMINS: ReadonlyArray<Who> = ["owner", "admin"]
const MEMBERS: ReadonlyArray<Who> = ["owner", "admin", "member", "memberAdminS1"]

let n = 0
const actions: ReadonlyArray<Action> = [
  { name: "view a service", allowed: ALL, run: (c) => c("GET", `/v1/services/${S1}`) },
  { name: "list services", allowed: ALL, run: (c) => c("GET", "/v1/services") },
  { name: "read logs", allowed: ALL, run: (c) => c("GET", `/v1/services/${S1}/logs`) },
  { name: "read metrics", allowed: ALL, run: (c) => c("GET", `/v1/services/${S2}/metrics?window=week`) },
  { name: "list permissions", allowed: ALL, run: (c) => c("GET", `/v1/services/${S1}/permissions`) },
  {
    name: "change settings of S1",
    allowed: MEMBERS,
    run: (c) => c("PATCH", `/v1/services/${S1}`, doc("services", { memoryMb: 256 }))
  },
  {
    name: "redeploy S1 (grant applies)",
    allowed: [...MEMBERS, "viewerDeployS1"],
    run: (c) => c("POST", `/v1/services/${S1}/deployments`)
  },
  {
    name: "redeploy S2 (no grant)",
    allowed: MEMBERS,
    run: (c) => c("POST", `/v1/services/${S2}/deployments`)
  },
  {
    name: "roll back S1",
    allowed: [...MEMBERS, "viewerDeployS1"],
    run: (c) => c("POST", `/v1/services/${S1}/rollback`, doc("rollbacks", {}))
  },
  {
    name: "grant on S1 (admin grant applies)",
    allowed: [...ADMINS, "memberAdminS1"],
    run: (c) =>
      c(
        "POST",
        `/v1/services/${S1}/permissions`,
        doc("service-permissions", { userId: users.viewer, permission: "view" })
      )
  },
  {
    name: "grant on S2",
    allowed: ADMINS,
    run: (c) =>
      c(
        "POST",
        `/v1/services/${S2}/permissions`,
        doc("service-permissions", { userId: users.viewer, permission: "view" })
      )
  },
  {
    name: "deploy a new service",
    allowed: MEMBERS,
    run: (c, who) =>
      c(
        "POST",
        "/v1/services",
        doc("services", { source: { path: "app2" }, name: `new-${who.toLowerCase()}` })
      )
  },
  {
    name: "add a member",
    allowed: ADMINS,
    run: (c) => c("POST", "/v1/members", doc("members", { email: `m${n++}@example.com`, role: "viewer" }))
  },
  {
    name: "issue an API key",
    allowed: ADMINS,
    run: (c) => c("POST", "/v1/api-keys", doc("api-keys", { name: "k" }))
  },
  {
    // Teams are an instance admin's act (the bootstrap owner here), not a team role's.
    name: "create a team",
    allowed: ["owner"],
    code: "instance_admin_required",
    run: (c) => c("POST", "/v1/teams", doc("teams", { name: `t${n++}` }))
  }
]

describe("REST role × action matrix", () => {
  for (const action of actions)
    it(action.name, async () => {
      for (const who of WHO) {
        const r = await action.run(caller(s.server.port, tokens[who]), who)
        if (action.allowed.includes(who)) expect(r.status, `${who}: ${r.text}`).not.toBe(403)
        else {
          expect(r.status, `${who}: ${r.text}`).toBe(403)
          expect(JSON.parse(r.text).errors[0].code).toBe(action.code ?? "forbidden")
        }
        expect(r.status, `${who}: ${r.text}`).toBeLessThan(500)
      }
    })

  it("the service document says what the caller may do there (meta.can), grants included", async () => {
    const can = async (who: Who, service: string) =>
      expectStatus(await caller(s.server.port, tokens[who])("GET", `/v1/services/${service}`), 200, who).body
        .meta.can
    expect(await can("viewer", S1)).toEqual({ deploy: false, manage: false, admin: false })
    // A viewer with a deploy grant on S1: deploy controls there, and only there.
    expect(await can("viewerDeployS1", S1)).toEqual({ deploy: true, manage: false, admin: false })
    expect(await can("viewerDeployS1", S2)).toEqual({ deploy: false, manage: false, admin: false })
    expect(await can("member", S1)).toEqual({ deploy: true, manage: true, admin: false })
    expect(await can("memberAdminS1", S1)).toEqual({ deploy: true, manage: true, admin: true })
    expect(await can("memberAdminS1", S2)).toEqual({ deploy: true, manage: true, admin: false })
    expect(await can("admin", S2)).toEqual({ deploy: true, manage: true, admin: true })
    // What it says is what the server does: the granted viewer redeploys S1 but not S2.
    const v = caller(s.server.port, tokens.viewerDeployS1)
    expect((await v("POST", `/v1/services/${S1}/deployments`)).status).not.toBe(403)
    expect((await v("POST", `/v1/services/${S2}/deployments`)).status).toBe(403)
  })

  it("admins cannot make owners; only owners can", async () => {
    const admin = caller(s.server.port, tokens.admin)
    expectStatus(
      await admin("POST", "/v1/members", doc("members", { email: "o1@example.com", role: "owner" })),
      403,
      "admin"
    )
    expectStatus(
      await caller(s.server.port, tokens.owner)(
        "POST",
        "/v1/members",
        doc("members", { email: "o2@example.com", role: "owner" })
      ),
      202,
      "owner"
    )
  })

  it("deleting a service needs manage: viewer denied, member allowed", async () => {
    const doomed = (await deployService(caller(s.server.port, tokens.owner), "app2", "doomed")).serviceId
    expectStatus(
      await caller(s.server.port, tokens.viewer)("DELETE", `/v1/services/${doomed}`),
      403,
      "viewer"
    )
    expectStatus(
      await caller(s.server.port, tokens.member)("DELETE", `/v1/services/${doomed}`),
      204,
      "member"
    )
  })
})

describe("RPC role × action matrix", () => {
  const rpc = <A, E>(who: Who, f: (client: KyozoClient["Type"]) => Effect.Effect<A, E>) =>
    Effect.runPromise(
      Effect.flatMap(KyozoClient, f).pipe(
        Effect.either,
        Effect.map((e) => (Either.isLeft(e) ? (e.left as { _tag: string })._tag : "ok")),
        Effect.provide(KyozoClient.layer({ url: `http://127.0.0.1:${s.server.port}`, token: tokens[who] }))
      )
    )

  const rpcActions: ReadonlyArray<{
    name: string
    allowed: ReadonlyArray<Who>
    run: (who: Who) => Promise<string>
  }> = [
    { name: "GetService", allowed: ALL, run: (w) => rpc(w, (c) => c.GetService({ service: S1 })) },
    {
      name: "RestartService S1 (grant applies)",
      allowed: [...MEMBERS, "viewerDeployS1"],
      run: (w) => rpc(w, (c) => c.RestartService({ service: S1 }))
    },
    {
      name: "RestartService S2",
      allowed: MEMBERS,
      run: (w) => rpc(w, (c) => c.RestartService({ service: S2 }))
    },
    {
      name: "StartService by name (grant applies)",
      allowed: [...MEMBERS, "viewerDeployS1"],
      run: (w) => rpc(w, (c) => c.StartService({ service: "s-one" }))
    },
    { name: "IssueApiKey", allowed: ADMINS, run: (w) => rpc(w, (c) => c.IssueApiKey({ name: "x" })) }
  ]

  for (const action of rpcActions)
    it(action.name, async () => {
      for (const who of WHO) {
        const tag = await action.run(who)
        if (action.allowed.includes(who)) expect(tag, who).not.toBe("Forbidden")
        else expect(tag, who).toBe("Forbidden")
      }
    })

  it("GetService and GraphQL report the same `can` as REST's meta.can", async () => {
    for (const [who, service] of [
      ["viewerDeployS1", S1],
      ["viewerDeployS1", S2],
      ["memberAdminS1", S1],
      ["viewer", S1]
    ] as const) {
      const rest = (await caller(s.server.port, tokens[who])("GET", `/v1/services/${service}`)).body.meta.can
      const view = await Effect.runPromise(
        Effect.flatMap(KyozoClient, (c) => c.GetService({ service })).pipe(
          Effect.provide(KyozoClient.layer({ url: `http://127.0.0.1:${s.server.port}`, token: tokens[who] }))
        )
      )
      expect(view.can, `${who} rpc`).toEqual(rest)
      const gql = await fetch(`http://127.0.0.1:${s.server.port}/graphql`, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens[who]}`, "content-type": "application/json" },
        body: JSON.stringify({ query: `{ service(id: "${service}") { can { deploy manage admin } } }` })
      }).then((r) => r.json() as Promise<any>)
      expect(gql.data?.service?.can, `${who} graphql ${JSON.stringify(gql.errors)}`).toEqual(rest)
    }
  })

  it("RemoveService needs manage: viewer with a deploy grant is Forbidden, member may", async () => {
    expect(await rpc("viewerDeployS1", (c) => c.RemoveService({ service: S1 }))).toBe("Forbidden")
    expect(await rpc("viewer", (c) => c.RemoveService({ service: S2 }))).toBe("Forbidden")
    expect(await rpc("member", (c) => c.RemoveService({ service: S2 }))).toBe("ok")
  })
})

/**
 * Tenant isolation, REST and RPC: team B, holding team A's ids, gets exactly what an unknown id
 * gets (404 / ServiceNotFound / ApiKeyNotFound / InvalidSource), and nothing of team A shows up
 * in any list or error text. Where the id is B's own but B's role forbids, the answer is 403.
 * The REST part walks every route of `KyozoHttpApi`, so a new endpoint without a case fails here.
 * Also: webhook targets, workspaces, uploads, /metrics, invitations and event streams after a
 * key's revocation.
 */
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { KyozoHttpApi, routesOf } from "@kyozo/api/KyozoHttpApi"
import { Effect, Either, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import {
  type Call,
  caller,
  deployService,
  doc,
  expectStatus,
  memberWithKey,
  start,
  type Started,
  workspaceApp
} from "./support/rest.js"
import { INTERNAL_TARGETS } from "./support/targets.js"

let s: Started
let a: Call
let b: Call
let bViewer: Call
let bToken: string
let bViewerToken: string
const A: Record<string, string> = {}
const B: Record<string, string> = {}

beforeAll(async () => {
  s = await start("kyozo-tenants-")
  a = caller(s.server.port, s.ownerToken)
  // Team A: a service with a deployment, a grant, a member with a key, an upload.
  const svc = await deployService(a, "app", "alpha-secret-svc")
  A.serviceId = svc.serviceId
  A.deploymentId = svc.deploymentId
  A.teamId = s.teamId
  const member = await memberWithKey(a, "alice-secret@a.example", "admin")
  A.userId = member.userId
  A.keyId = member.keyId
  A.aliceToken = member.token
  const grant = expectStatus(
    await a(
      "POST",
      `/v1/services/${A.serviceId}/permissions`,
      doc("service-permissions", { userId: A.userId, permission: "admin" })
    ),
    201,
    "grant"
  )
  A.permissionId = grant.body.data.id
  expectStatus(
    await a(
      "POST",
      `/v1/services/${A.serviceId}/domains`,
      doc("domains", { hostname: "a-shop.example.test" })
    ),
    201,
    "A's domain"
  )
  const hook = expectStatus(
    await a(
      "POST",
      "/v1/webhooks",
      doc("webhooks", { url: "https://hooks.alpha.example/alpha-secret-hook" })
    ),
    201,
    "webhook"
  )
  A.webhookId = hook.body.data.id
  const rule = expectStatus(
    await a(
      "POST",
      "/v1/alert-rules",
      doc("alert-rules", { metric: "memory_percent", comparator: ">", threshold: 90, serviceId: A.serviceId })
    ),
    201,
    "alert rule"
  )
  A.alertRuleId = rule.body.data.id
  const detections = (await a("GET", "/v1/detections")).body.data
  A.detectionId = detections[0]?.id ?? "det_none"
  const upload = await fetch(`http://127.0.0.1:${s.server.port}/v1/uploads`, {
    method: "POST",
    headers: { authorization: `Bearer ${s.ownerToken}` },
    body: new Uint8Array(1024)
  })
  if (upload.status !== 201) throw new Error(`upload: ${upload.status}`)
  A.uploadId = upload.status === 201 ? ((await upload.json()) as { uploadId: string }).uploadId : "upl_none"

  // Team B, made through the API: its owner is bob, who is no member of A.
  const team = expectStatus(await a("POST", "/v1/teams", doc("teams", { name: "team-b" })), 201, "team b")
  B.teamId = team.body.data.id
  const bootstrapB = caller(s.server.port, team.body.meta.ownerKey.attributes.key)
  const bob = await memberWithKey(bootstrapB, "bob@b.example", "owner")
  bToken = bob.token
  b = caller(s.server.port, bToken)
  // The creator of B (A's owner) leaves B, so B shares no one with A; its B key dies with it.
  const creator = (await b("GET", "/v1/members")).body.data.find(
    (m: any) => m.attributes.email === "admin@kyozo.local"
  )
  expectStatus(await b("DELETE", `/v1/members/${creator.id}`), 204, "creator leaves B")
  expectStatus(await bootstrapB("GET", "/v1/teams/current"), 401, "creator's B key")
  const own = await deployService(b, workspaceApp(s.dataDir, B.teamId, "app2"), "bravo")
  B.serviceId = own.serviceId
  B.deploymentId = own.deploymentId
  bViewerToken = (await memberWithKey(b, "vera@b.example", "viewer")).token
  // An invitation into team A for someone else (made by A's admin alice, who is no instance admin).
  const aliceCall = caller(s.server.port, A.aliceToken!)
  const bystander = await memberWithKey(b, "bystander@b.example", "viewer")
  void bystander
  const inv = expectStatus(
    await aliceCall("POST", "/v1/members", doc("members", { email: "bystander@b.example", role: "viewer" })),
    202,
    "invitation into A"
  )
  A.invitationId = inv.body.data.id
  bViewer = caller(s.server.port, bViewerToken)
}, 120_000)

afterAll(async () => {
  await s?.stop()
})

/** Strings of team A that must never reach team B (ids B did not send, names, emails). */
const secretsOfA = () => [
  A.teamId!,
  "alpha-secret-svc",
  "alice-secret@a.example",
  "admin@kyozo.local",
  "alpha-secret-hook"
]

const expectClean = (text: string, sent: ReadonlyArray<string> = []) => {
  for (const secret of [
    ...secretsOfA(),
    A.serviceId!,
    A.deploymentId!,
    A.userId!,
    A.keyId!,
    A.webhookId!,
    A.alertRuleId!
  ].filter((x) => !sent.includes(x)))
    expect(text).not.toContain(secret)
}

/** Every REST route with team A's ids filled in, and a body where one is needed. */
const crossTeamCases = (): Record<string, { path: string; body?: unknown }> => ({
  "GET /v1/teams/:teamId": { path: `/v1/teams/${A.teamId}` },
  "PATCH /v1/teams/:teamId": { path: `/v1/teams/${A.teamId}`, body: doc("teams", { quotaServices: 1000 }) },
  "PATCH /v1/members/:userId": { path: `/v1/members/${A.userId}`, body: doc("members", { role: "viewer" }) },
  "DELETE /v1/members/:userId": { path: `/v1/members/${A.userId}` },
  "DELETE /v1/api-keys/:keyId": { path: `/v1/api-keys/${A.keyId}` },
  "GET /v1/services/:serviceId": { path: `/v1/services/${A.serviceId}` },
  "PATCH /v1/services/:serviceId": {
    path: `/v1/services/${A.serviceId}`,
    body: doc("services", { memoryMb: 64 })
  },
  "DELETE /v1/services/:serviceId": { path: `/v1/services/${A.serviceId}` },
  "GET /v1/deployments/:deploymentId": { path: `/v1/deployments/${A.deploymentId}` },
  "POST /v1/services/:serviceId/deployments": { path: `/v1/services/${A.serviceId}/deployments` },
  "GET /v1/services/:serviceId/logs": { path: `/v1/services/${A.serviceId}/logs` },
  "POST /v1/services/:serviceId/rollback": {
    path: `/v1/services/${A.serviceId}/rollback`,
    body: doc("rollbacks", {})
  },
  "GET /v1/detections/:detectionId": { path: `/v1/detections/${A.detectionId}` },
  "GET /v1/services/:serviceId/health": { path: `/v1/services/${A.serviceId}/health` },
  "GET /v1/services/:serviceId/metrics": { path: `/v1/services/${A.serviceId}/metrics` },
  "GET /v1/services/:serviceId/recommendations": {
    path: `/v1/services/${A.serviceId}/recommendations?window=day`
  },
  "GET /v1/webhooks/:webhookId": { path: `/v1/webhooks/${A.webhookId}` },
  "DELETE /v1/webhooks/:webhookId": { path: `/v1/webhooks/${A.webhookId}` },
  "GET /v1/webhooks/:webhookId/deliveries": { path: `/v1/webhooks/${A.webhookId}/deliveries` },
  "GET /v1/alert-rules/:alertRuleId": { path: `/v1/alert-rules/${A.alertRuleId}` },
  "PATCH /v1/alert-rules/:alertRuleId": {
    path: `/v1/alert-rules/${A.alertRuleId}`,
    body: doc("alert-rules", { threshold: 1 })
  },
  "DELETE /v1/alert-rules/:alertRuleId": { path: `/v1/alert-rules/${A.alertRuleId}` },
  "GET /v1/services/:serviceId/permissions": { path: `/v1/services/${A.serviceId}/permissions` },
  "POST /v1/services/:serviceId/permissions": {
    path: `/v1/services/${A.serviceId}/permissions`,
    body: doc("service-permissions", { userId: A.userId, permission: "view" })
  },
  "DELETE /v1/services/:serviceId/permissions/:permissionId": {
    path: `/v1/services/${A.serviceId}/permissions/${A.permissionId}`
  },
  "GET /v1/services/:serviceId/domains": { path: `/v1/services/${A.serviceId}/domains` },
  "POST /v1/services/:serviceId/domains": {
    path: `/v1/services/${A.serviceId}/domains`,
    body: doc("domains", { hostname: "b-shop.example.test" })
  },
  "DELETE /v1/services/:serviceId/domains/:hostname": {
    path: `/v1/services/${A.serviceId}/domains/a-shop.example.test`
  },
  // Filters and cursors with A's ids.
  "GET /v1/deployments?filter": { path: `/v1/deployments?filter[service]=${A.serviceId}` },
  "GET /v1/detections?filter": { path: `/v1/detections?filter[service]=${A.serviceId}` },
  "POST /v1/invitations/:invitationId/accept": { path: `/v1/invitations/${A.invitationId}/accept` }
})

/** Routes without an id: lists and singletons of the caller's own team. */
const ownTeamRoutes = [
  "GET /v1/teams/current",
  "POST /v1/teams",
  "GET /v1/members",
  "POST /v1/members",
  "GET /v1/api-keys",
  "POST /v1/api-keys",
  "GET /v1/services",
  "POST /v1/services",
  "GET /v1/deployments",
  "GET /v1/detections",
  "GET /v1/webhooks",
  "POST /v1/webhooks",
  "GET /v1/alert-rules",
  "POST /v1/alert-rules",
  "GET /v1/runtime",
  "GET /v1/invitations"
]

describe("REST", () => {
  it("every route of the API is covered by this matrix", () => {
    const cases = crossTeamCases()
    for (const r of routesOf(KyozoHttpApi)) {
      const key = `${r.method} ${r.path}`
      expect(key in cases || ownTeamRoutes.includes(key), `no isolation case for ${key}`).toBe(true)
    }
  })

  it("team B using team A's ids gets 404, exactly like unknown ids, with no trace of A", async () => {
    for (const [route, c] of Object.entries(crossTeamCases())) {
      const method = route.split(" ")[0]!
      const foreign = await b(method, c.path, c.body)
      expect(foreign.status, `${route}: ${foreign.text}`).toBe(404)
      const sent = Object.values(A).filter(
        (id) => c.path.includes(id) || JSON.stringify(c.body ?? "").includes(id)
      )
      expectClean(foreign.text, sent)
      // Same answer as a made-up id of the same shape.
      const madeUp = await b(
        method,
        c.path.replace(/(svc|dep|usr|key|team|det|prm|whk|alr|inv)_[0-9a-z]+/g, "$1_0000000000000000"),
        c.body
      )
      expect(madeUp.status, route).toBe(404)
      expect(foreign.body.errors[0].detail, route).toBe(madeUp.body.errors[0].detail)
    }
    // A's things are untouched.
    const still = await a("GET", `/v1/services/${A.serviceId}`)
    expect(still.status).toBe(200)
    expect(still.body.data.attributes.memoryMb).not.toBe(64)
    expect((await a("GET", "/v1/members")).body.data.map((m: any) => m.id)).toContain(A.userId)
    expectStatus(await a("GET", `/v1/webhooks/${A.webhookId}`), 200, "A's webhook intact")
    const rule = expectStatus(await a("GET", `/v1/alert-rules/${A.alertRuleId}`), 200, "A's rule intact")
    expect(rule.body.data.attributes.threshold).toBe(90)
    const names = expectStatus(await a("GET", `/v1/services/${A.serviceId}/domains`), 200, "A's domains")
    expect(names.body.data.map((d: any) => d.id)).toEqual(["a-shop.example.test"])
  })

  it("a cursor of team A is a 400 for team B, like an unknown cursor", async () => {
    const r = expectStatus(await b("GET", `/v1/services?page[after]=${A.serviceId}`), 400, "cursor")
    expectClean(r.text, [A.serviceId!])
  })

  it("nothing of team A appears in any of team B's lists", async () => {
    for (const route of [
      "/v1/teams/current",
      "/v1/members",
      "/v1/api-keys",
      "/v1/services",
      "/v1/deployments",
      "/v1/detections",
      "/v1/webhooks",
      "/v1/alert-rules",
      "/v1/runtime"
    ]) {
      const r = expectStatus(await b("GET", route), 200, route)
      expectClean(r.text)
    }
    expect((await b("GET", "/v1/services")).body.data.map((x: any) => x.id)).toEqual([B.serviceId])
  })

  it("an alert rule on team A's service is a 404 for team B, pointing at the field", async () => {
    const body = (serviceId: string) =>
      doc("alert-rules", { metric: "cpu_percent", comparator: ">", threshold: 50, serviceId })
    const foreign = expectStatus(await b("POST", "/v1/alert-rules", body(A.serviceId!)), 404, "foreign")
    expect(foreign.body.errors[0].source.pointer).toBe("/data/attributes/serviceId")
    expectClean(foreign.text, [A.serviceId!])
    const madeUp = expectStatus(
      await b("POST", "/v1/alert-rules", body("svc_0000000000000000")),
      404,
      "unknown"
    )
    expect(foreign.body.errors[0].detail).toBe(madeUp.body.errors[0].detail)
    expect((await b("GET", "/v1/alert-rules")).body.data).toEqual([])
  })

  it("a deploy from team A's upload is refused for team B as an unknown upload", async () => {
    const r = await b("POST", "/v1/services", doc("services", { source: { uploadId: A.uploadId } }))
    expect(r.status).toBe(422)
    expect(r.body.errors[0].code).toBe("invalid_source")
    expectClean(r.text)
  })

  it("webhook targets on the server's own network are refused, in every spelling, never a 500", async () => {
    for (const url of INTERNAL_TARGETS) {
      const r = await b("POST", "/v1/webhooks", doc("webhooks", { url }))
      expect(r.status, `${url}: ${r.text}`).toBe(422)
      expect(r.headers.get("content-type"), url).toContain("application/vnd.api+json")
      expect(r.body.errors[0].source.pointer, url).toBe("/data/attributes/url")
    }
    for (const url of ["http://user:pass@hooks.example.com/", "http:/x", "http://"]) {
      const r = await b("POST", "/v1/webhooks", doc("webhooks", { url }))
      expect(r.status, `${url}: ${r.text}`).toBe(400)
      expect(r.body.errors[0].source.pointer, url).toBe("/data/attributes/url")
    }
    const ok = expectStatus(
      await b("POST", "/v1/webhooks", doc("webhooks", { url: "HTTPS://Hooks.Bravo.Example/h" })),
      201,
      "public target"
    )
    expect(ok.body.data.attributes.url).toBe("https://hooks.bravo.example/h")
    expectStatus(await b("DELETE", `/v1/webhooks/${ok.body.data.id}`), 204, "cleanup")
  })

  it("a folder in team A's workspace does not exist for team B", async () => {
    // "app" lies in A's workspace only: B's deploy by that path is an unknown folder, naming nothing of A.
    const r = await b("POST", "/v1/services", doc("services", { source: { path: "app" }, name: "stolen" }))
    expect(r.status, r.text).toBe(422)
    expect(r.body.errors[0].code).toBe("invalid_source")
    expect(r.text).not.toContain(s.dataDir)
    for (const path of [`../${A.teamId}/app`, `${s.dataDir}/workspaces/${A.teamId}/app`])
      expectStatus(await b("POST", "/v1/services", doc("services", { source: { path } })), 422, path)
    // Detections show folders relative to the team's own workspace, never the server's paths.
    const detections = expectStatus(await a("GET", "/v1/detections"), 200, "detections")
    expect(detections.text).not.toContain(s.dataDir)
  })

  it("an upload needs the deploy right: team B's viewer is refused", async () => {
    const r = await fetch(`http://127.0.0.1:${s.server.port}/v1/uploads`, {
      method: "POST",
      headers: { authorization: `Bearer ${bViewerToken}`, "content-type": "application/x-tar" },
      body: new Uint8Array(1024)
    })
    expect(r.status).toBe(403)
  })

  it("/metrics is closed to team keys: it names every team's services", async () => {
    for (const token of [bToken, bViewerToken]) {
      const r = await fetch(`http://127.0.0.1:${s.server.port}/metrics`, {
        headers: { authorization: `Bearer ${token}` }
      })
      expect(r.status).toBe(401)
      expectClean(await r.text())
    }
  })

  it("inviting one of team A's users tells team B nothing about them or A", async () => {
    const invite = await b(
      "POST",
      "/v1/members",
      doc("members", { email: "alice-secret@a.example", role: "member" })
    )
    expect(invite.status, invite.text).toBe(202)
    expectClean(invite.text, ["alice-secret@a.example"])
    expect(invite.text).not.toContain(A.userId!)
    // Not a member until alice accepts: B lists her as pending, with only what B gave (the e-mail,
    // the role), named by the invitation, not by her user id.
    const listed = await b("GET", "/v1/members")
    expectClean(listed.text, ["alice-secret@a.example"])
    const alice = (listed.body.data as Array<any>).find(
      (m) => m.attributes.email === "alice-secret@a.example"
    )
    expect(alice.id).toBe(invite.body.data.id)
    expect(alice.attributes).toMatchObject({ state: "pending", role: "member", name: "" })
    // Someone else's invitation cannot be accepted by B.
    expectStatus(await b("POST", `/v1/invitations/${invite.body.data.id}/accept`), 404, "not bob's")
  })

  it("team B's event stream ends when B's key is revoked; A's events never reach it", async () => {
    const own = await memberWithKey(b, `streamer-${Date.now()}@b.example`, "member")
    const res = await fetch(`http://127.0.0.1:${s.server.port}/v1/events`, {
      headers: { authorization: `Bearer ${own.token}` },
      signal: AbortSignal.timeout(10_000)
    })
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    let text = ""
    const ended = (async () => {
      for (;;) {
        const r = await reader.read()
        if (r.done) return Date.now()
        text += new TextDecoder().decode(r.value)
      }
    })()
    await new Promise((r) => setTimeout(r, 300))
    // A's activity while B listens.
    await a("PATCH", `/v1/services/${A.serviceId}`, doc("services", { env: { ALPHA: "1" } }))
    const at = Date.now()
    expectStatus(await b("DELETE", `/v1/api-keys/${own.keyId}`), 204, "revoke")
    expect((await ended) - at).toBeLessThan(1_000)
    expectClean(text)
  })

  it("team B's own ids with a role too low are 403, not 404", async () => {
    expectStatus(
      await bViewer("PATCH", `/v1/services/${B.serviceId}`, doc("services", { memoryMb: 64 })),
      403,
      "patch"
    )
    expectStatus(await bViewer("DELETE", `/v1/services/${B.serviceId}`), 403, "delete")
    expectStatus(await bViewer("POST", `/v1/services/${B.serviceId}/deployments`), 403, "deploy")
    expectStatus(await bViewer("GET", `/v1/services/${B.serviceId}`), 200, "view is fine")
    // …while A's ids stay 404 for the same viewer.
    expectStatus(await bViewer("DELETE", `/v1/services/${A.serviceId}`), 404, "foreign")
  })
})

describe("RPC", () => {
  const rpc = <A, E>(f: (client: KyozoClient["Type"]) => Effect.Effect<A, E>) =>
    Effect.runPromise(
      Effect.flatMap(KyozoClient, f).pipe(
        Effect.either,
        Effect.provide(KyozoClient.layer({ url: `http://127.0.0.1:${s.server.port}`, token: bToken }))
      )
    )
  const failureOf = (e: Either.Either<unknown, unknown>) =>
    Either.isLeft(e) ? (e.left as { _tag: string; message?: string }) : { _tag: "ok", message: "" }

  it("every RPC with team A's ids fails as not found, naming nothing of A", async () => {
    const service = A.serviceId!
    const cases: Record<string, Promise<Either.Either<unknown, unknown>>> = {
      GetService: rpc((c) => c.GetService({ service })),
      StopService: rpc((c) => c.StopService({ service })),
      StartService: rpc((c) => c.StartService({ service })),
      RestartService: rpc((c) => c.RestartService({ service })),
      RemoveService: rpc((c) => c.RemoveService({ service })),
      Rollback: rpc((c) => c.Rollback({ service })),
      Logs: rpc((c) => Stream.runCollect(c.Logs({ service, tail: 10 }))),
      RevokeApiKey: rpc((c) => c.RevokeApiKey({ keyId: A.keyId! })),
      Detect: rpc((c) => c.Detect({ source: { _tag: "Upload", uploadId: A.uploadId! } })),
      Deploy: rpc((c) => Stream.runCollect(c.Deploy({ source: { _tag: "Upload", uploadId: A.uploadId! } })))
    }
    const expected: Record<string, string> = {
      RevokeApiKey: "ApiKeyNotFound",
      Detect: "InvalidSource",
      Deploy: "InvalidSource"
    }
    for (const [name, pending] of Object.entries(cases)) {
      const failure = failureOf(await pending)
      expect(failure._tag, name).toBe(expected[name] ?? "ServiceNotFound")
      expectClean(JSON.stringify(failure) + (failure.message ?? ""), [service, A.keyId!, A.uploadId!])
    }
    // Also by name: A's service name means nothing to B.
    expect(failureOf(await rpc((c) => c.GetService({ service: "alpha-secret-svc" })))._tag).toBe(
      "ServiceNotFound"
    )
  })

  it("lists, events, whoami and runtime status show nothing of team A", async () => {
    const list = await rpc((c) => c.ListServices())
    expect(Either.isRight(list)).toBe(true)
    expectClean(JSON.stringify(list))
    const events = await rpc((c) => Stream.runCollect(c.Events({ follow: false })))
    expectClean(JSON.stringify(events))
    const foreignEvents = await rpc((c) =>
      Stream.runCollect(c.Events({ follow: false, service: A.serviceId! }))
    )
    expectClean(JSON.stringify(foreignEvents), [A.serviceId!])
    expectClean(JSON.stringify(await rpc((c) => c.WhoAmI())))
    expectClean(JSON.stringify(await rpc((c) => c.RuntimeStatus())))
  })

  it("team A still has its service afterwards", async () => {
    expectStatus(await a("GET", `/v1/services/${A.serviceId}`), 200, "A intact")
  })
})

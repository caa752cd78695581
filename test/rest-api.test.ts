/**
 * The REST API (JSON:API under /v1) against a real server on the mock runtime: CRUD round trips,
 * document shapes, pagination links, and every kind of bad input (400 with a pointer, 401, 404,
 * 405, 413, 415) — never a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { type Call, caller, deployService, doc, expectStatus, start, type Started } from "./support/rest.js"

let s: Started
let api: Call

beforeAll(async () => {
  s = await start("kyozo-rest-")
  api = caller(s.server.port, s.ownerToken)
}, 90_000)

afterAll(async () => {
  await s?.stop()
})

const JSON_API = "application/vnd.api+json"

describe("documents", () => {
  it("GET /v1/teams/current is a JSON:API resource document", async () => {
    const r = expectStatus(await api("GET", "/v1/teams/current"), 200, "team")
    expect(r.headers.get("content-type")).toBe(JSON_API)
    expect(r.body.data).toMatchObject({ type: "teams", id: s.teamId, attributes: { name: "default" } })
  })

  it("errors are JSON:API error documents with the media type", async () => {
    const r = expectStatus(await api("GET", "/v1/services/svc_doesnotexist"), 404, "unknown service")
    expect(r.headers.get("content-type")).toBe(JSON_API)
    expect(r.body).toEqual({
      errors: [
        { status: "404", code: "not_found", title: "Not found", detail: "No such service in your team." }
      ]
    })
  })

  it("runtime status names the mode, the breaker and each schedule", async () => {
    const r = expectStatus(await api("GET", "/v1/runtime"), 200, "runtime")
    expect(r.body.data.type).toBe("runtime-status")
    expect(r.body.data.attributes.mode).toBe("mock")
    expect(r.body.data.attributes.circuit_breaker_status.state).toBe("closed")
    expect(r.body.data.attributes.schedules.map((x: any) => x.pass).sort()).toEqual([
      "cleanup",
      "health",
      "metrics"
    ])
  })
})

describe("services and deployments", () => {
  it("POST /v1/services deploys a workspace folder and answers 202 with the deployment", async () => {
    const { serviceId, deploymentId } = await deployService(api, "app", "web")
    expect(serviceId).toMatch(/^svc_/)
    expect(deploymentId).toMatch(/^dep_/)
    const got = expectStatus(await api("GET", `/v1/services/${serviceId}`), 200, "get")
    expect(got.body.data).toMatchObject({
      type: "services",
      id: serviceId,
      attributes: { name: "web", status: "running" },
      relationships: { team: { data: { type: "teams", id: s.teamId } } }
    })
    const dep = expectStatus(await api("GET", `/v1/deployments/${deploymentId}`), 200, "deployment")
    expect(dep.body.data.attributes.status).toBe("succeeded")
    expect(dep.body.data.relationships.service.data.id).toBe(serviceId)
  })

  it("PATCH changes limits, env, health settings and restart policy; env values are never shown", async () => {
    const { serviceId } = await deployService(api, "app", "web-patch")
    const r = expectStatus(
      await api(
        "PATCH",
        `/v1/services/${serviceId}`,
        doc("services", {
          cpuMillis: 250,
          memoryMb: 128,
          env: { SECRET_TOKEN: "hunter2" },
          healthConfig: { type: "http", path: "/ready" },
          restartPolicy: "always"
        })
      ),
      200,
      "patch"
    )
    expect(r.body.data.attributes).toMatchObject({
      cpuMillis: 250,
      memoryMb: 128,
      envKeys: ["SECRET_TOKEN"],
      restartPolicy: "always",
      healthConfig: { type: "http", path: "/ready" }
    })
    expect(r.text).not.toContain("hunter2")
    const again = await api("GET", `/v1/services/${serviceId}`)
    expect(again.body.data.attributes.memoryMb).toBe(128)
  })

  it("PATCH autoscale: the policy is on the document, the count moves inside [min, max]; min > max is a 400", async () => {
    const { serviceId } = await deployService(api, "app", "web-autoscale")
    const r = expectStatus(
      await api(
        "PATCH",
        `/v1/services/${serviceId}`,
        doc("services", { autoscale: { minReplicas: 2, maxReplicas: 3, targetCpuPercent: 60 } })
      ),
      200,
      "autoscale"
    )
    expect(r.body.data.attributes).toMatchObject({
      replicas: 2,
      autoscale: { minReplicas: 2, maxReplicas: 3, targetCpuPercent: 60 }
    })
    const bad = expectStatus(
      await api(
        "PATCH",
        `/v1/services/${serviceId}`,
        doc("services", { autoscale: { minReplicas: 4, maxReplicas: 3, targetCpuPercent: 60 } })
      ),
      400,
      "min > max"
    )
    expect(JSON.stringify(bad.body.errors)).toContain("must not exceed maxReplicas")
    const off = expectStatus(
      await api("PATCH", `/v1/services/${serviceId}`, doc("services", { autoscale: null, replicas: 1 })),
      200,
      "autoscale off"
    )
    expect(off.body.data.attributes).toMatchObject({ replicas: 1, autoscale: null })
  })

  it("lists deployments, logs, health, metrics and detections of the service", async () => {
    const { serviceId, deploymentId } = await deployService(api, "app", "web-lists")
    const deps = expectStatus(await api("GET", `/v1/deployments?filter[service]=${serviceId}`), 200, "deps")
    expect(deps.body.data.map((d: any) => d.id)).toContain(deploymentId)
    const logs = expectStatus(await api("GET", `/v1/services/${serviceId}/logs?tail=5`), 200, "logs")
    expect(Array.isArray(logs.body.data)).toBe(true)
    for (const route of ["health", "metrics?window=day", "permissions"]) {
      const r = expectStatus(await api("GET", `/v1/services/${serviceId}/${route}`), 200, route)
      expect(Array.isArray(r.body.data)).toBe(true)
      expect(r.body.links.self).toBe(`/v1/services/${serviceId}/${route}`)
    }
    const detections = expectStatus(await api("GET", "/v1/detections"), 200, "detections")
    for (const d of detections.body.data) {
      const one = expectStatus(await api("GET", `/v1/detections/${d.id}`), 200, "detection")
      expect(one.body.data.id).toBe(d.id)
    }
  })

  it("POST /v1/services/:id/deployments redeploys from the stored source", async () => {
    const { serviceId, deploymentId } = await deployService(api, "app", "web-redeploy")
    const r = expectStatus(await api("POST", `/v1/services/${serviceId}/deployments`), 202, "redeploy")
    expect(r.body.data[0].type).toBe("deployments")
    expect(r.body.data[0].id).not.toBe(deploymentId)
    expect(r.body.data[0].relationships.service.data.id).toBe(serviceId)
  })

  it("DELETE removes the service: 204, then 404", async () => {
    const { serviceId: doomed } = await deployService(api, "app2", "doomed")
    expectStatus(await api("DELETE", `/v1/services/${doomed}`), 204, "delete")
    expectStatus(await api("GET", `/v1/services/${doomed}`), 404, "gone")
    expectStatus(await api("DELETE", `/v1/services/${doomed}`), 404, "twice")
  })
})

describe("pagination", () => {
  it("page[size] and page[after] walk the list with links.next, ending with null", async () => {
    for (let i = 0; i < 5; i++) await deployService(api, "app2", `page-${i}`)
    const all = expectStatus(await api("GET", "/v1/services?page[size]=100"), 200, "all")
    const ids: Array<string> = all.body.data.map((x: any) => x.id)
    expect(ids.length).toBeGreaterThanOrEqual(5)
    const walked: Array<string> = []
    let next: string | null = "/v1/services?page[size]=2"
    while (next !== null) {
      const r = expectStatus(await api("GET", next), 200, next)
      expect(r.body.data.length).toBeLessThanOrEqual(2)
      walked.push(...r.body.data.map((x: any) => x.id))
      next = r.body.links.next
      if (next !== null) expect(next).toMatch(/page\[size\]=2&page\[after\]=svc_/)
    }
    expect(walked).toEqual(ids)
  })

  it("a bad page size or cursor is a 400 naming the parameter", async () => {
    const r = expectStatus(await api("GET", "/v1/services?page[size]=0"), 400, "size")
    expect(r.body.errors[0].source).toEqual({ parameter: "page[size]" })
    const c = expectStatus(await api("GET", "/v1/services?page[after]=svc_unknown"), 400, "cursor")
    expect(c.body.errors[0].source).toEqual({ parameter: "page[after]" })
  })
})

describe("members and keys", () => {
  it("adds a member, changes the role, issues and revokes a key for them", async () => {
    const added = expectStatus(
      await api("POST", "/v1/members", doc("members", { email: "carol@example.com", role: "viewer" })),
      202,
      "add"
    )
    expect(added.body.data.type).toBe("invitations")
    expect(added.body.data.attributes).toMatchObject({ email: "carol@example.com", role: "viewer" })
    // A new person is a member at once.
    const userId = (await api("GET", "/v1/members")).body.data.find(
      (m: any) => m.attributes.email === "carol@example.com"
    ).id
    const changed = expectStatus(
      await api("PATCH", `/v1/members/${userId}`, doc("members", { role: "member" })),
      200,
      "role"
    )
    expect(changed.body.data.attributes.role).toBe("member")
    const listed = await api("GET", "/v1/members")
    expect(listed.body.data.map((m: any) => m.id)).toContain(userId)

    const key = expectStatus(
      await api("POST", "/v1/api-keys", doc("api-keys", { userId, name: "carol" })),
      201,
      "key"
    )
    const token = key.body.data.attributes.key
    expect(token).toMatch(/^kz_/)
    const carol = caller(s.server.port, token)
    expectStatus(await carol("GET", "/v1/teams/current"), 200, "carol works")
    const keys = await api("GET", "/v1/api-keys")
    // The key in clear is shown once: never in a list.
    expect(keys.text).not.toContain(token)
    expectStatus(await api("DELETE", `/v1/api-keys/${key.body.data.id}`), 204, "revoke")
    expectStatus(await carol("GET", "/v1/teams/current"), 401, "revoked key fails at once")
    expectStatus(await api("DELETE", `/v1/members/${userId}`), 204, "remove")
    expectStatus(await api("DELETE", `/v1/members/${userId}`), 404, "remove twice")
  })

  it("the last owner cannot be demoted", async () => {
    const me = (await api("GET", "/v1/members")).body.data.find((m: any) => m.attributes.role === "owner")
    const r = expectStatus(
      await api("PATCH", `/v1/members/${me.id}`, doc("members", { role: "viewer" })),
      409,
      "last"
    )
    expect(r.body.errors[0].code).toBe("last_owner")
  })
})

describe("bad input", () => {
  it("a schema failure in the body is a 400 pointing at the field", async () => {
    const r = expectStatus(
      await api("PATCH", "/v1/services/svc_x", doc("services", { memoryMb: "lots" })),
      400,
      "patch"
    )
    expect(r.body.errors[0]).toMatchObject({
      status: "400",
      code: "invalid",
      source: { pointer: "/data/attributes/memoryMb" }
    })
    const role = expectStatus(
      await api("POST", "/v1/members", doc("members", { email: "x@y.z", role: "god" })),
      400,
      "role"
    )
    expect(role.body.errors[0].source.pointer).toBe("/data/attributes/role")
  })

  it("malformed JSON is a 400 pointing at the document, not a 500", async () => {
    const r = expectStatus(await api("POST", "/v1/members", "{not json"), 400, "malformed")
    expect(r.body.errors[0]).toMatchObject({ code: "malformed_json", source: { pointer: "" } })
  })

  it("missing, empty and wrong bearer tokens are 401", async () => {
    expectStatus(await caller(s.server.port, undefined)("GET", "/v1/services"), 401, "missing")
    expectStatus(await api("GET", "/v1/services", undefined, { authorization: "Bearer " }), 401, "empty")
    expectStatus(
      await caller(s.server.port, "kz_aaaaaaaa_" + "b".repeat(32))("GET", "/v1/services"),
      401,
      "unknown"
    )
  })

  it("unknown routes are 404, wrong methods 405 with Allow", async () => {
    expectStatus(await api("GET", "/v1/nothing-here"), 404, "unknown")
    const r = expectStatus(await api("PUT", "/v1/services"), 405, "put")
    expect(r.headers.get("allow")).toBe("GET, POST")
    expect(r.body.errors[0].status).toBe("405")
    expectStatus(await api("POST", "/v1/runtime", {}), 405, "post runtime")
  })

  it("a body that is not JSON is 415", async () => {
    const r = expectStatus(
      await api("POST", "/v1/members", "email=a", { "content-type": "application/x-www-form-urlencoded" }),
      415,
      "form"
    )
    expect(r.body.errors[0].code).toBe("unsupported_media_type")
    expectStatus(await api("POST", "/v1/members", "hello", { "content-type": "text/plain" }), 415, "text")
  })

  it("an oversized body is 413 and changes nothing", async () => {
    const before = (await api("GET", "/v1/members")).body.data.length
    const huge = JSON.stringify(
      doc("members", { email: "big@example.com", role: "viewer", name: "x".repeat(2_000_000) })
    )
    expectStatus(await api("POST", "/v1/members", huge), 413, "huge")
    expect((await api("GET", "/v1/members")).body.data.length).toBe(before)
    expect((await s.server.get("/healthz")).status).toBe(200)
  })
})

/**
 * Alert rules through the REST API, against a real server on the mock runtime: create, list, get,
 * patch and delete; invalid metric/comparator and unknown services answer with the field in
 * `source.pointer`; every member reads, viewers may not change, members change only rules of a
 * service (team-wide rules are for owners and admins).
 */
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

let s: Started
let owner: Call
let member: Call
let viewer: Call
let serviceId: string

beforeAll(async () => {
  s = await start("kyozo-alerts-api-")
  owner = caller(s.server.port, s.ownerToken)
  member = caller(s.server.port, (await memberWithKey(owner, "mia@example.com", "member")).token)
  viewer = caller(s.server.port, (await memberWithKey(owner, "vic@example.com", "viewer")).token)
  serviceId = (await deployService(owner, "app", "web")).serviceId
}, 120_000)

afterAll(async () => {
  await s?.stop()
})

/** A team-wide rule (by the owner) and a rule of the service (by a member), made for one test. */
const makeRules = async () => {
  const created = expectStatus(
    await owner(
      "POST",
      "/v1/alert-rules",
      doc("alert-rules", { metric: "memory_percent", comparator: ">", threshold: 90 })
    ),
    201,
    "team rule"
  )
  const own = expectStatus(
    await member(
      "POST",
      "/v1/alert-rules",
      doc("alert-rules", {
        metric: "cpu_percent",
        comparator: ">=",
        threshold: 80.5,
        durationSeconds: 60,
        serviceId
      })
    ),
    201,
    "service rule by a member"
  )
  return { created, own, teamRule: created.body.data.id as string, serviceRule: own.body.data.id as string }
}

describe("alert rules", () => {
  it("creates team-wide and per-service rules, lists and gets them", async () => {
    const { created, own, teamRule, serviceRule } = await makeRules()
    expect(teamRule).toMatch(/^alr_/)
    expect(created.body.data.type).toBe("alert-rules")
    expect(created.body.data.attributes).toMatchObject({
      serviceId: null,
      metric: "memory_percent",
      comparator: ">",
      threshold: 90,
      durationSeconds: 300,
      enabled: true
    })
    expect(own.body.data.attributes).toMatchObject({ serviceId, durationSeconds: 60, threshold: 80.5 })
    expect(own.body.data.relationships.service.data).toEqual({ type: "services", id: serviceId })

    const list = expectStatus(await viewer("GET", "/v1/alert-rules"), 200, "list")
    const ours = (id: string) => id === teamRule || id === serviceRule
    expect(list.body.data.map((r: any) => r.id).filter(ours)).toEqual([teamRule, serviceRule])
    expect(list.body.links.self).toBe("/v1/alert-rules")
    const got = expectStatus(await viewer("GET", `/v1/alert-rules/${serviceRule}`), 200, "get")
    expect(got.body.data.attributes.metric).toBe("cpu_percent")
  })

  it("patches a rule and keeps what the patch leaves out", async () => {
    const { teamRule } = await makeRules()
    const patched = expectStatus(
      await owner(
        "PATCH",
        `/v1/alert-rules/${teamRule}`,
        doc("alert-rules", { threshold: 95, durationSeconds: 120, enabled: false })
      ),
      200,
      "patch"
    )
    expect(patched.body.data.attributes).toMatchObject({
      metric: "memory_percent",
      comparator: ">",
      threshold: 95,
      durationSeconds: 120,
      enabled: false
    })
    const again = expectStatus(await owner("GET", `/v1/alert-rules/${teamRule}`), 200, "get")
    expect(again.body.data.attributes.threshold).toBe(95)
  })

  it("rejects an invalid metric or comparator with a 400 pointing at the field", async () => {
    const { teamRule } = await makeRules()
    const badMetric = await owner(
      "POST",
      "/v1/alert-rules",
      doc("alert-rules", { metric: "disk_percent", comparator: ">", threshold: 1 })
    )
    expect(badMetric.status).toBe(400)
    expect(badMetric.body.errors[0].source.pointer).toBe("/data/attributes/metric")
    const badComparator = await owner(
      "PATCH",
      `/v1/alert-rules/${teamRule}`,
      doc("alert-rules", { comparator: "==" })
    )
    expect(badComparator.status).toBe(400)
    expect(badComparator.body.errors[0].source.pointer).toBe("/data/attributes/comparator")
  })

  it("answers 404 for unknown rules and for a service not in the team (pointing at the field)", async () => {
    expectStatus(await owner("GET", "/v1/alert-rules/alr_0000000000000000"), 404, "get")
    expectStatus(
      await owner("PATCH", "/v1/alert-rules/alr_0000000000000000", doc("alert-rules", { threshold: 1 })),
      404,
      "patch"
    )
    expectStatus(await owner("DELETE", "/v1/alert-rules/alr_0000000000000000"), 404, "delete")
    const r = expectStatus(
      await owner(
        "POST",
        "/v1/alert-rules",
        doc("alert-rules", {
          metric: "pids",
          comparator: ">",
          threshold: 100,
          serviceId: "svc_0000000000000000"
        })
      ),
      404,
      "unknown service"
    )
    expect(r.body.errors[0].source.pointer).toBe("/data/attributes/serviceId")
  })

  it("viewers may not change rules; members may not change team-wide ones", async () => {
    const { teamRule, serviceRule } = await makeRules()
    const body = doc("alert-rules", { metric: "pids", comparator: ">", threshold: 100 })
    expectStatus(await viewer("POST", "/v1/alert-rules", body), 403, "viewer create")
    expectStatus(
      await viewer("POST", "/v1/alert-rules", doc("alert-rules", { ...body.data.attributes, serviceId })),
      403,
      "viewer create on service"
    )
    expectStatus(
      await viewer("PATCH", `/v1/alert-rules/${serviceRule}`, doc("alert-rules", { threshold: 1 })),
      403,
      "viewer patch"
    )
    expectStatus(await viewer("DELETE", `/v1/alert-rules/${serviceRule}`), 403, "viewer delete")
    expectStatus(await member("POST", "/v1/alert-rules", body), 403, "member team-wide create")
    expectStatus(await member("DELETE", `/v1/alert-rules/${teamRule}`), 403, "member team-wide delete")
    const still = expectStatus(await owner("GET", `/v1/alert-rules/${serviceRule}`), 200, "intact")
    expect(still.body.data.attributes.threshold).toBe(80.5)
  })

  it("deletes rules", async () => {
    const { teamRule, serviceRule } = await makeRules()
    expectStatus(await member("DELETE", `/v1/alert-rules/${serviceRule}`), 204, "member deletes service rule")
    expectStatus(await owner("DELETE", `/v1/alert-rules/${teamRule}`), 204, "owner deletes team rule")
    expectStatus(await owner("GET", `/v1/alert-rules/${teamRule}`), 404, "gone")
    const left = (await owner("GET", "/v1/alert-rules")).body.data.map((r: any) => r.id)
    expect(left).not.toContain(teamRule)
    expect(left).not.toContain(serviceRule)
  })
})

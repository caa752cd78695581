/**
 * One quota check for every change (real server, PostgreSQL): PATCH of a service's limits cannot
 * take a team over its CPU or memory quota, and two deploys racing for the last free service slot
 * cannot both pass (the check and the insert run under the team's lock).
 */
import * as fs from "node:fs"
import * as path from "node:path"

import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { type Call, caller, doc, expectStatus } from "./support/rest.js"
import { startTenantServer, type Tenant, type TenantServer } from "./support/tenants.js"

let ts: TenantServer
let team: Tenant
let call: Call

const site = (name: string) => {
  const dir = path.join(ts.dataDir, "workspaces", team.teamId, name)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, "index.html"), `<h1>${name}</h1>\n`)
  return name
}

const setQuotas = (q: { quotaServices?: number; quotaCpuMillis?: number; quotaMemoryMb?: number }) =>
  ts.run(Effect.flatMap(TeamRepo, (t) => t.setQuotas(team.teamId, q)))

const deploy = (name: string) =>
  call("POST", "/v1/services", doc("services", { source: { path: site(name) }, name }))

beforeAll(async () => {
  ts = await startTenantServer({ KYOZO_RATE_LIMIT: "off" })
  team = await ts.newTenant("quota", "owner")
  call = caller(ts.server.port, team.token)
}, 90_000)

afterAll(async () => {
  await ts?.close()
})

describe("quotas", () => {
  it("PATCH of limits is checked against the team's quota; lowering always passes", async () => {
    await setQuotas({ quotaServices: 10, quotaCpuMillis: 2_000, quotaMemoryMb: 2_048 })
    const created = expectStatus(await deploy("patchme"), 202, "deploy")
    const serviceId = created.body.data[0].relationships.service.data.id
    const over = await call("PATCH", `/v1/services/${serviceId}`, doc("services", { memoryMb: 4_096 }))
    expect(over.status, over.text).toBe(409)
    expect(over.body.errors[0].code).toBe("quota_exceeded")
    const cpuOver = await call("PATCH", `/v1/services/${serviceId}`, doc("services", { cpuMillis: 2_001 }))
    expect(cpuOver.status, cpuOver.text).toBe(409)
    const fits = expectStatus(
      await call(
        "PATCH",
        `/v1/services/${serviceId}`,
        doc("services", { memoryMb: 2_048, cpuMillis: 2_000 })
      ),
      200,
      "fits exactly"
    )
    expect(fits.body.data.attributes.memoryMb).toBe(2_048)
    // The quota shrinks below usage: raising is refused, lowering still works.
    await setQuotas({ quotaMemoryMb: 1_024 })
    expectStatus(
      await call("PATCH", `/v1/services/${serviceId}`, doc("services", { memoryMb: 1_536 })),
      200,
      "lower"
    )
    expectStatus(
      await call("PATCH", `/v1/services/${serviceId}`, doc("services", { memoryMb: 1_600 })),
      409,
      "raise"
    )
    expectStatus(await call("DELETE", `/v1/services/${serviceId}`), 204, "cleanup")
  })

  it("two deploys racing for the last service slot: exactly one passes", async () => {
    await setQuotas({ quotaServices: 1_000, quotaCpuMillis: 1_000_000, quotaMemoryMb: 1_000_000 })
    const listed = (await call("GET", "/v1/services?page[size]=100")).body.data.length
    for (let round = 0; round < 2; round++) {
      const used = listed + round
      await setQuotas({ quotaServices: used + 1 })
      const answers = await Promise.all([deploy(`race-${round}-a`), deploy(`race-${round}-b`)])
      const statuses = answers.map((a) => a.status).sort()
      expect(statuses, answers.map((a) => a.text).join("\n")).toEqual([202, 409])
      const now = (await call("GET", "/v1/services?page[size]=100")).body.data.length
      expect(now).toBe(used + 1)
    }
  })
})

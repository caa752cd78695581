/**
 * The REST service list is served from memory while no service changes: a change made through the
 * API shows in the very next list, and one made by another process on the same PostgreSQL shows
 * promptly (NOTIFY; without it the list would stay stale). Paging and cursors answer the same with and without the cache.
 */
import { describe, expect, it } from "@effect/vitest"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { Effect } from "effect"
import { afterAll, beforeAll } from "vitest"

import { waitFor } from "./support/server.js"
import { startTenantServer, type Tenant, type TenantServer } from "./support/tenants.js"

let ts: TenantServer
let team: Tenant

beforeAll(async () => {
  ts = await startTenantServer()
  team = await ts.newTenant("listcache", "owner")
}, 90_000)

afterAll(async () => {
  await ts?.close()
})

const list = async (query = "") => {
  const res = await fetch(`${ts.base}/v1/services${query}`, {
    headers: { authorization: `Bearer ${team.token}` }
  })
  expect(res.status).toBe(200)
  return (await res.json()) as {
    data: ReadonlyArray<{ id: string; attributes: { name: string; cpuMillis: number; status: string } }>
    links: { next: string | null }
  }
}

const createService = (name: string) =>
  ts.run(Effect.flatMap(ServiceRepo, (repo) => repo.create({ teamId: team.teamId, name })))

describe("service list cache", () => {
  it("an answer from memory is the HTTP stack's answer, byte for byte and header for header", async () => {
    const fresh = await ts.newTenant("listcache-bytes", "viewer")
    await ts.run(
      Effect.flatMap(ServiceRepo, (repo) => repo.create({ teamId: fresh.teamId, name: "bytes-1" }))
    )
    const answer = async () => {
      const res = await fetch(`${ts.base}/v1/services?page[size]=10`, {
        headers: { authorization: `Bearer ${fresh.token}` }
      })
      const headers = Object.fromEntries([...res.headers].filter(([name]) => name !== "date"))
      return { status: res.status, headers, body: Buffer.from(await res.arrayBuffer()).toString("hex") }
    }
    // A key never seen: the first answer goes through the HTTP stack (verify, query, encode); the
    // next ones come from memory (the hot route: key and page cached).
    const first = await answer()
    expect(first.status).toBe(200)
    expect(first.headers["content-type"]).toBe("application/vnd.api+json")
    expect(await answer()).toEqual(first)
    expect(await answer()).toEqual(first)
  })

  it("a change through the API shows in the very next list", async () => {
    const created = await createService("cached-api")
    const before = await list()
    expect(before.data.map((s) => s.attributes.name)).toContain("cached-api")
    // Twice: the second list is served from memory.
    expect((await list()).data).toEqual(before.data)
    const patched = await fetch(`${ts.base}/v1/services/${created.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${team.token}`, "content-type": "application/vnd.api+json" },
      body: JSON.stringify({ data: { type: "services", id: created.id, attributes: { cpuMillis: 250 } } })
    })
    expect(patched.status).toBe(200)
    const after = await list()
    expect(after.data.find((s) => s.id === created.id)?.attributes.cpuMillis).toBe(250)
  })

  it("a change by another process on the same database shows promptly", async () => {
    const created = await createService("cached-other")
    // The create came from this (other) process too, so it reaches the server's cache only through
    // NOTIFY: wait for it rather than expect it in the very next list.
    await waitFor("the created service to be listed", 3_000, async () =>
      (await list()).data.find((s) => s.id === created.id)?.attributes.status === "pending" ? true : undefined
    )
    await list()
    // This test process is the other process: the server learns of it only through the database.
    await ts.run(
      Effect.flatMap(ServiceRepo, (repo) => repo.updateObserved(created.id, { status: "running" }))
    )
    const started = Date.now()
    await waitFor("the list to show the new status", 3_000, async () =>
      (await list()).data.find((s) => s.id === created.id)?.attributes.status === "running" ? true : undefined
    )
    expect(Date.now() - started).toBeLessThan(3_000)
    // A new service by the other process appears too.
    const another = await createService("cached-new")
    await waitFor("the new service to be listed", 3_000, async () =>
      (await list()).data.some((s) => s.id === another.id) ? true : undefined
    )
  })

  it("pages and cursors: the same walk twice, and a foreign cursor is a 400", async () => {
    for (let i = 0; i < 3; i++) await createService(`cached-page-${i}`)
    const walk = async () => {
      const ids: Array<string> = []
      let query: string | null = "?page[size]=2"
      while (query !== null) {
        const page = await list(query)
        ids.push(...page.data.map((s) => s.id))
        query = page.links.next === null ? null : page.links.next.slice(page.links.next.indexOf("?"))
      }
      return ids
    }
    const first = await walk()
    expect(first.length).toBeGreaterThanOrEqual(3)
    expect(new Set(first).size).toBe(first.length)
    expect(await walk()).toEqual(first)
    const other = await ts.newTenant("listcache-other", "owner")
    const foreign = await ts.run(
      Effect.flatMap(ServiceRepo, (repo) => repo.create({ teamId: other.teamId, name: "foreign" }))
    )
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${ts.base}/v1/services?page[after]=${foreign.id}`, {
        headers: { authorization: `Bearer ${team.token}` }
      })
      expect(res.status).toBe(400)
      const body = (await res.json()) as { errors: ReadonlyArray<{ code: string }> }
      expect(body.errors[0]?.code).toBe("invalid_cursor")
    }
  })
})

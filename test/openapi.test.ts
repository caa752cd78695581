/**
 * `/openapi.json` is generated from `KyozoHttpApi`: it parses, is OpenAPI 3.x, lists every route of
 * every group with its method, declares bearer security on each operation, the JSON:API media type,
 * and error statuses; `/docs` serves the reader.
 */
import { KyozoHttpApi, routesOf } from "@kyozo/api/KyozoHttpApi"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { start, type Started } from "./support/rest.js"

let s: Started
let spec: any

beforeAll(async () => {
  s = await start("kyozo-openapi-")
  const r = await s.server.get("/openapi.json")
  expect(r.status).toBe(200)
  spec = r.body
}, 90_000)

afterAll(async () => {
  await s?.stop()
})

/** "/v1/services/:serviceId" → "/v1/services/{serviceId}" */
const openApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, "{$1}")

describe("/openapi.json", () => {
  it("is an OpenAPI 3.x document for the Kyozo API", () => {
    expect(typeof spec).toBe("object")
    expect(spec.openapi).toMatch(/^3\.\d+\.\d+$/)
    expect(spec.info.title).toBe("Kyozo API")
    expect(Object.keys(spec.paths).length).toBeGreaterThan(0)
  })

  it("lists exactly the routes of the HttpApi groups, each with its method", () => {
    const expected = routesOf(KyozoHttpApi)
      .map((r) => `${r.method.toUpperCase()} ${openApiPath(r.path)}`)
      .sort()
    const listed: Array<string> = []
    for (const [path, item] of Object.entries<any>(spec.paths))
      for (const method of Object.keys(item))
        if (["get", "post", "put", "patch", "delete"].includes(method))
          listed.push(`${method.toUpperCase()} ${path}`)
    expect(listed.sort()).toEqual(expected)
    // Every group of the API is there.
    const tags = new Set(
      Object.values<any>(spec.paths).flatMap((item) =>
        Object.values<any>(item).flatMap((op) => op.tags ?? [])
      )
    )
    for (const group of [
      "teams",
      "members",
      "apiKeys",
      "services",
      "deployments",
      "detections",
      "health",
      "metrics",
      "permissions",
      "recommendations",
      "webhooks",
      "runtime"
    ])
      expect(tags.has(group), group).toBe(true)
  })

  it("every operation requires the bearer scheme and answers JSON:API", () => {
    expect(spec.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" })
    for (const [path, item] of Object.entries<any>(spec.paths))
      for (const [method, op] of Object.entries<any>(item)) {
        expect(op.security, `${method} ${path}`).toEqual([{ bearer: [] }])
        expect(Object.keys(op.responses), `${method} ${path}`).toContain("401")
        expect(Object.keys(op.responses), `${method} ${path}`).toContain("400")
        const ok = Object.entries<any>(op.responses).find(([status]) => status.startsWith("2"))!
        if (ok[1].content) expect(Object.keys(ok[1].content)).toEqual(["application/vnd.api+json"])
      }
  })

  it("declares the statuses the handlers answer with", () => {
    const get = spec.paths["/v1/services/{serviceId}"].get
    expect(Object.keys(get.responses)).toEqual(expect.arrayContaining(["200", "400", "401", "403", "404"]))
    expect(Object.keys(spec.paths["/v1/services"].post.responses)).toContain("202")
    expect(Object.keys(spec.paths["/v1/services/{serviceId}"].delete.responses)).toContain("204")
  })
})

describe("/docs", () => {
  it("serves the Swagger UI page", async () => {
    const r = await fetch(`http://127.0.0.1:${s.server.port}/docs`)
    expect(r.status).toBe(200)
    expect(r.headers.get("content-type")).toContain("text/html")
    expect(await r.text()).toContain("swagger")
  })
})

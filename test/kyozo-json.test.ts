/**
 * kyozo.json: validated with a schema, a bad file answered with its line and field; read back by
 * detection, each entry overriding the detected service of its name (or the only one at its path).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import * as KyozoJson from "@kyozo/core/build/topology/KyozoJson"
import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"

import { repoRoot } from "./support/server.js"

const parseError = (text: string) =>
  Effect.runPromise(Effect.either(KyozoJson.parse("/x/kyozo.json", text))).then((e) =>
    Either.isLeft(e) ? e.left.message : "no error"
  )

const fixture = (name: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-json-"))
  fs.cpSync(path.join(repoRoot, "test", "fixtures", "detect", name), dir, { recursive: true })
  return dir
}

describe("kyozo.json", () => {
  it("names the line and the field that are wrong", async () => {
    const text = JSON.stringify(
      {
        services: [
          { name: "api", port: 8080 },
          { name: "web", port: 70000 }
        ]
      },
      null,
      2
    )
    const line = text.split("\n").findIndex((l) => l.includes("70000")) + 1
    expect(await parseError(text)).toMatch(
      new RegExp(`^/x/kyozo\\.json:${line}: services\\[1\\]\\.port: a port number from 1 to 65535`)
    )
    expect(await parseError('{\n  "services": [\n    { "name": "a", "replica": 2 }\n  ]\n}')).toMatch(
      /kyozo\.json:3: services\[0\]\.replica: is unexpected/
    )
    expect(await parseError('{ "services": [] }')).toContain("services: at least one service")
    expect(await parseError('{\n  "services": [\n    { "name": "a" },\n  ]\n}')).toMatch(
      /kyozo\.json:\d: not valid JSON/
    )
    expect(await parseError('{ "services": [{ "name": "a", "env": ["OK", "not ok"] }] }')).toContain(
      "services[0].env[1]: an environment variable name"
    )
  })

  it("accepts what init writes and applies it: rename, port, start command, dependsOn follows", async () => {
    const dir = fixture("compose-stack")
    const before = await Effect.runPromise(detectPlan(dir))
    const web = before.services.find((p) => p.service.name === "web")!.service
    const dependents = before.services
      .filter((p) => p.service.dependsOn.includes("web"))
      .map((p) => p.service.name)
    expect(dependents.length).toBeGreaterThan(0)
    fs.writeFileSync(
      path.join(dir, "kyozo.json"),
      JSON.stringify({
        services: [{ name: "frontend", path: web.path, port: 3999, startCommand: "node other.js" }]
      })
    )
    const after = await Effect.runPromise(detectPlan(dir))
    expect(after.services.map((p) => p.service.name)).toEqual(
      before.services.map((p) => (p.service.name === "web" ? "frontend" : p.service.name))
    )
    const frontend = after.services.find((p) => p.service.name === "frontend")!.service
    expect(frontend).toMatchObject({ port: 3999, startCommand: "node other.js", path: web.path })
    for (const name of dependents) {
      const s = after.services.find((p) => p.service.name === name)!.service
      expect(s.dependsOn).toContain("frontend")
      expect(s.dependsOn).not.toContain("web")
    }
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("autoscale in kyozo.json reaches the plan; a policy with min > max names its line", async () => {
    const dir = fixture("compose-stack")
    const before = await Effect.runPromise(detectPlan(dir))
    const web = before.services.find((p) => p.service.name === "web")!.service
    const autoscale = { minReplicas: 1, maxReplicas: 3, targetCpuPercent: 60 }
    fs.writeFileSync(
      path.join(dir, "kyozo.json"),
      JSON.stringify({ services: [{ name: "web", path: web.path, autoscale }] })
    )
    const after = await Effect.runPromise(detectPlan(dir))
    expect(after.services.find((p) => p.service.name === "web")!.autoscale).toEqual(autoscale)
    expect(after.services.find((p) => p.service.name !== "web")!.autoscale).toBeUndefined()
    expect(
      await parseError(
        '{\n  "services": [\n    { "name": "a", "autoscale": { "minReplicas": 3, "maxReplicas": 2, "targetCpuPercent": 50 } }\n  ]\n}'
      )
    ).toMatch(/kyozo\.json:3: services\[0\]\.autoscale: minReplicas \(3\) must not exceed maxReplicas \(2\)/)
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("an entry that matches no service, or several, is an error naming it", async () => {
    const dir = fixture("compose-stack")
    fs.writeFileSync(
      path.join(dir, "kyozo.json"),
      JSON.stringify({ services: [{ name: "x", path: "nowhere" }] })
    )
    const missing = await Effect.runPromise(Effect.either(detectPlan(dir)))
    expect(Either.isLeft(missing) && missing.left.reason).toBe("InvalidKyozoJson")
    expect(Either.isLeft(missing) && missing.left.message).toContain(
      'services[0].path: no service was detected at "nowhere"'
    )
    fs.writeFileSync(
      path.join(dir, "kyozo.json"),
      JSON.stringify({ services: [{ name: "renamed", path: "." }] })
    )
    const several = await Effect.runPromise(Effect.either(detectPlan(dir)))
    expect(Either.isLeft(several) && several.left.message).toMatch(
      /services\[0\]: several services live at "\."/
    )
    fs.rmSync(dir, { recursive: true, force: true })
  })
})

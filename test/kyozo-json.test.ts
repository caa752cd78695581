/**
 * kyozo.json: validated with a schema, a bad file answered with its line and field; read back by
 * detection, each entry overriding the detected service of its name (or the only one at its path).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { HealthCheckConfig } from "@kyozo/api/domain/HealthCheckConfig"
import { makeServiceId, makeTeamId } from "@kyozo/api/domain/Ids"
import { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import * as KyozoJson from "@kyozo/core/build/topology/KyozoJson"
import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
import { additionsOf, rowSettingsOf } from "@kyozo/workers/deploy/PlannedSettings"
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

  it("replicas, health check and env values reach the plan; env names alone are documentation", async () => {
    const dir = fixture("compose-stack")
    const before = await Effect.runPromise(detectPlan(dir))
    const web = before.services.find((p) => p.service.name === "web")!.service
    const other = before.services.find((p) => p.service.name !== "web")!.service
    fs.writeFileSync(
      path.join(dir, "kyozo.json"),
      JSON.stringify({
        services: [
          {
            name: "web",
            path: web.path,
            replicas: 2,
            healthCheck: { type: "http", path: "/ready" },
            env: { GREETING: "hello" }
          },
          { name: other.name, path: other.path, env: ["DATABASE_URL"] }
        ]
      })
    )
    const after = await Effect.runPromise(detectPlan(dir))
    const planned = after.services.find((p) => p.service.name === "web")!
    expect(planned).toMatchObject({
      replicas: 2,
      healthCheck: { type: "http", path: "/ready" },
      env: { GREETING: "hello" }
    })
    expect(after.services.find((p) => p.service.name === other.name)!.env).toBeUndefined()
    expect(await parseError('{\n  "services": [\n    { "name": "a", "replicas": 50 }\n  ]\n}')).toMatch(
      /kyozo\.json:3: services\[0\]\.replicas: a replica count from 1 to 20/
    )
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("a deploy writes the file's settings: all on a new service, only changes on a live one", () => {
    const planned = {
      service: { name: "web" } as never,
      replicas: 2,
      healthCheck: { path: "/ready" },
      env: { GREETING: "hello" }
    }
    const fresh = rowSettingsOf(planned)
    expect(fresh).toMatchObject({ replicas: 2, env: { GREETING: "hello" } })
    expect(fresh.healthConfig).toMatchObject({ type: "http", path: "/ready", intervalSeconds: 30 })
    // A new service reserves the default size per replica.
    expect(additionsOf(fresh)).toEqual({ services: 1, cpuMillis: 1000, memoryMb: 1024 })

    const live = new ServiceInstance({
      id: makeServiceId(),
      teamId: makeTeamId(),
      name: "web",
      kind: null,
      framework: null,
      image: null,
      desiredState: "running",
      status: "running",
      containerId: null,
      containerName: null,
      currentDeploymentId: null,
      internalPort: 8080,
      hostPort: null,
      cpuMillis: 250,
      memoryMb: 256,
      env: { GREETING: "hello", SECRET: "kept" },
      healthConfig: new HealthCheckConfig({ type: "http", path: "/ready", intervalSeconds: 5 }),
      restartPolicy: "always",
      replicas: 2,
      restartCount: 0,
      lastRestartAt: null,
      source: {},
      createdAt: new Date(0),
      updatedAt: new Date(0),
      deletedAt: null
    })
    // Nothing differs: nothing is written, nothing is added.
    expect(rowSettingsOf(planned, live)).toEqual({})
    const changed = rowSettingsOf({ ...planned, replicas: 5, env: { GREETING: "bye" } }, live)
    expect(changed.env).toEqual({ GREETING: "bye", SECRET: "kept" })
    expect(changed.replicas).toBe(5)
    expect(additionsOf(changed, live)).toEqual({ services: 0, cpuMillis: 750, memoryMb: 768 })
    // The row's own intervals stay under the file's type and path.
    expect(rowSettingsOf({ ...planned, healthCheck: { type: "tcp" } }, live).healthConfig).toMatchObject({
      type: "tcp",
      intervalSeconds: 5
    })
    // With autoscaling the autoscaler owns the count of a live service; the file brings it inside [min, max].
    const autoscale = { minReplicas: 3, maxReplicas: 4, targetCpuPercent: 50 }
    expect(rowSettingsOf({ ...planned, replicas: 1, autoscale }, live).replicas).toBe(3)
    expect(rowSettingsOf({ ...planned, replicas: 1, autoscale })).toMatchObject({ replicas: 3, autoscale })
  })
})

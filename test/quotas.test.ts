/**
 * Per-team quotas on the deploy path (mock runtime, embedded database): a deploy that would take a
 * team over its service count, CPU or memory quota fails with QuotaExceeded naming the quota, and
 * creates nothing; a redeploy of an existing service adds nothing and passes; other teams are
 * unaffected. QuotaExceeded is part of DeployError, so RPC clients receive it typed.
 */
import * as fs from "node:fs"
import * as path from "node:path"

import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { DeployError, QuotaExceeded } from "@kyozo/api/domain/Deploy"
import { makeTeamId, type TeamId } from "@kyozo/api/domain/Ids"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import * as InProcessEdge from "@kyozo/core/edge/InProcessEdge"
import * as MockRuntime from "@kyozo/core/engine/MockRuntime"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { TopologyRepo } from "@kyozo/core/store/TopologyRepo"
import { Deployer } from "@kyozo/workers/deploy/Deployer"
import * as DeployerLive from "@kyozo/workers/deploy/DeployerLive"
import * as DurableEngine from "@kyozo/workers/deploy/DurableEngine"
import { Effect, Layer, Schema, Stream } from "effect"

import { makeTempDir, pgliteLayer } from "./support/database.js"

const workspaces = makeTempDir("kyozo-quota-ws-")
const dataDir = makeTempDir("kyozo-quota-data-")

const writeSite = (name: string) => {
  const dir = path.join(workspaces, name)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, "index.html"), `<h1>${name}</h1>\n`)
  return name
}

const Repos = Layer.mergeAll(
  ServiceRepo.Default,
  DeploymentRepo.Default,
  DeploymentEventRepo.Default,
  TopologyRepo.Default,
  TeamRepo.Default
)

const TestLayer = DeployerLive.layerAll({
  dataDir,
  workspacesRoot: workspaces,
  settings: {
    healthTimeout: "1500 millis",
    healthPollInterval: "20 millis",
    drainTimeout: "100 millis",
    probe: () => Effect.succeed(true)
  }
}).pipe(
  Layer.provideMerge(Layer.mergeAll(ImageBuilder.Default, InProcessEdge.layer({ reason: "test" }), Repos)),
  Layer.provideMerge(DurableEngine.layerTest),
  Layer.provideMerge(MockRuntime.layer),
  Layer.provideMerge(pgliteLayer),
  Layer.orDie
)

const newTeam = (quotas: { services?: number; cpu?: number; memory?: number }) =>
  Effect.gen(function* () {
    const teams = yield* TeamRepo
    const sql = yield* SqlClient.SqlClient
    const id = makeTeamId()
    yield* teams.create({ id, name: `quota-${id}` })
    yield* sql`UPDATE teams SET quota_services = ${quotas.services ?? 50},
      quota_cpu_millis = ${quotas.cpu ?? 8000}, quota_memory_mb = ${quotas.memory ?? 16384} WHERE id = ${id}`
    return id
  })

const deploy = (teamId: TeamId, folder: string, name: string) =>
  Effect.flatMap(Deployer, (d) =>
    Stream.runDrain(d.deploy(teamId, { source: { _tag: "Path", path: folder }, name }))
  )

const serviceCount = (teamId: TeamId) => Effect.flatMap(ServiceRepo, (s) => s.countByTeam(teamId))

describe("team quotas", () => {
  layer(TestLayer, { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.effect("the service-count quota: the second service is refused and nothing is created", () =>
      Effect.gen(function* () {
        const team = yield* newTeam({ services: 1 })
        const other = yield* newTeam({ services: 1 })
        yield* deploy(team, writeSite("one"), "one")
        const refused = yield* Effect.flip(deploy(team, writeSite("two"), "two"))
        expect(refused).toBeInstanceOf(QuotaExceeded)
        expect(refused).toMatchObject({ _tag: "QuotaExceeded", quota: "services", limit: 1, requested: 2 })
        expect(refused.message).toContain("services")
        expect(yield* serviceCount(team)).toBe(1)
        // A redeploy of the existing service needs no new quota.
        yield* deploy(team, "one", "one")
        expect(yield* serviceCount(team)).toBe(1)
        // Another team's quota is its own.
        yield* deploy(other, "two", "two")
        expect(yield* serviceCount(other)).toBe(1)
      })
    )

    it.effect("the memory and CPU quotas count what services reserve (512 MB, 500 millis by default)", () =>
      Effect.gen(function* () {
        const team = yield* newTeam({ memory: 1000 })
        yield* deploy(team, writeSite("mem-a"), "mem-a")
        const refused = yield* Effect.flip(deploy(team, writeSite("mem-b"), "mem-b"))
        expect(refused).toMatchObject({
          _tag: "QuotaExceeded",
          quota: "memory_mb",
          limit: 1000,
          requested: 1024
        })

        const cpuTeam = yield* newTeam({ cpu: 400 })
        const cpuRefused = yield* Effect.flip(deploy(cpuTeam, writeSite("cpu-a"), "cpu-a"))
        expect(cpuRefused).toMatchObject({
          _tag: "QuotaExceeded",
          quota: "cpu_millis",
          limit: 400,
          requested: 500
        })
        expect(yield* serviceCount(cpuTeam)).toBe(0)
      })
    )

    it("QuotaExceeded crosses the wire as a DeployError", () => {
      const error = new QuotaExceeded({ quota: "services", limit: 3, requested: 4 })
      const encoded = Schema.encodeSync(DeployError)(error)
      expect(encoded).toEqual({ _tag: "QuotaExceeded", quota: "services", limit: 3, requested: 4 })
      expect(Schema.decodeUnknownSync(DeployError)(encoded)).toBeInstanceOf(QuotaExceeded)
    })
  })
})

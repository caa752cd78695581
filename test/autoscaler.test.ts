/**
 * Autoscaling (HPA-like): the pure decision, then the pass on PGlite with the in-memory runtime,
 * synthetic metric samples and the TestClock: it scales out past the target at once, never beyond
 * max, holds a scale-in for the stabilisation window, never goes below min, and every change is an
 * `autoscale.scaled` event carrying the figures that caused it.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe as layerDescribe, expect as layerExpect, layer } from "@effect/vitest"
import type { AutoscalePolicy } from "@kyozo/api/domain/AutoscalePolicy"
import { AutoscalePolicy as PolicySchema } from "@kyozo/api/domain/AutoscalePolicy"
import { ServiceNotFound } from "@kyozo/api/domain/Deploy"
import type { ServiceId, TeamId } from "@kyozo/api/domain/Ids"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { MockRuntime } from "@kyozo/core/engine/MockRuntime"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { MetricSampleRepo } from "@kyozo/core/store/MetricSampleRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { Deployer, type DeployerShape } from "@kyozo/workers/deploy/Deployer"
import { Autoscaler, decide, type Reading } from "@kyozo/workers/maintenance/Autoscaler"
import { Effect, Layer, Option, Schema, TestClock } from "effect"
import { describe, expect, it } from "vitest"

import { pgliteLayer } from "./support/database.js"

const policy: AutoscalePolicy = {
  minReplicas: 2,
  maxReplicas: 4,
  targetCpuPercent: 50,
  stabilizationSeconds: 60
}
const cpu = (utilization: number, sampled = 1): Reading => ({
  metric: "cpu",
  utilization,
  target: 50,
  sampled
})

describe("autoscale decision (pure)", () => {
  it("scales out at once past the target, capped at max; within 10 % of the target nothing moves", () => {
    expect(decide(policy, 2, [cpu(100)], [], 0).desired).toBe(4)
    expect(decide(policy, 2, [cpu(400)], [], 0).desired).toBe(4)
    expect(decide(policy, 3, [cpu(54)], [], 0).desired).toBe(3)
    expect(decide(policy, 3, [cpu(70)], [], 0).desired).toBe(4)
  })

  it("scale-in takes the highest recommendation of the window; never below min", () => {
    const first = decide(policy, 4, [cpu(50)], [], 0)
    expect(first.desired).toBe(4)
    const low = decide(policy, 4, [cpu(5)], first.history, 30_000)
    expect(low.desired).toBe(4)
    expect(low.why).toContain("held at 4")
    const later = decide(policy, 4, [cpu(5)], low.history, 61_000)
    expect(later.desired).toBe(2)
    // A dip between loads does not flap: the high recommendation stays in the window.
    const peak = decide(policy, 2, [cpu(100)], [], 0)
    const dip = decide(policy, 4, [cpu(10)], peak.history, 20_000)
    expect(dip.desired).toBe(4)
  })

  it("the metric recommending the most decides; no readings keep the count inside [min, max]", () => {
    const both: AutoscalePolicy = { ...policy, targetMemoryPercent: 80 }
    const d = decide(
      both,
      2,
      [cpu(25), { metric: "memory", utilization: 160, target: 80, sampled: 2 }],
      [],
      0
    )
    expect(d.desired).toBe(4)
    expect(d.reading?.metric).toBe("memory")
    expect(decide(policy, 1, [], [], 0).desired).toBe(2)
    expect(decide(policy, 6, [], [], 0).desired).toBe(4)
  })

  it("the policy schema refuses min > max and a policy without a target", () => {
    const decodeEither = Schema.decodeUnknownEither(PolicySchema)
    expect(decodeEither({ minReplicas: 3, maxReplicas: 2, targetCpuPercent: 50 })._tag).toBe("Left")
    expect(decodeEither({ minReplicas: 1, maxReplicas: 2 })._tag).toBe("Left")
    expect(decodeEither({ minReplicas: 1, maxReplicas: 2, targetMemoryPercent: 70 })._tag).toBe("Right")
  })
})

// ---------------------------------------------------------------------------------------------
// The pass, on PGlite with the in-memory runtime and the TestClock.

const TEAM = "team_autoscale" as TeamId
const T0 = Date.UTC(2030, 0, 1, 12, 0, 0)

/** The quota-gated scale is the Deployer's; here its effect on the row is what matters. */
const scaleCalls: Array<number> = []
const FakeDeployer = Layer.effect(
  Deployer,
  Effect.map(ServiceRepo, (services) => {
    const scale: DeployerShape["scale"] = (teamId, service, replicas) =>
      Effect.gen(function* () {
        scaleCalls.push(replicas)
        const updated = yield* services.update(teamId, service as ServiceId, { replicas }).pipe(Effect.orDie)
        if (Option.isNone(updated)) return yield* new ServiceNotFound({ service })
        return { id: updated.value.id, replicas } as never
      })
    return { scale } as unknown as DeployerShape
  })
)

const Live = Autoscaler.Default.pipe(
  Layer.provideMerge(FakeDeployer),
  Layer.provideMerge(
    Layer.mergeAll(ServiceRepo.Default, DeploymentEventRepo.Default, MetricSampleRepo.Default)
  ),
  Layer.provideMerge(MockRuntime.layer),
  Layer.provideMerge(pgliteLayer),
  Layer.orDie
)

/** A fresh service per test (events are append-only): its row, deployment and 4 running replicas. */
const setup = (SVC: ServiceId) =>
  Effect.gen(function* () {
    const DEP = `dep_${SVC}`
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO teams (id, name) VALUES (${TEAM}, 'autoscale') ON CONFLICT DO NOTHING`
    yield* sql`INSERT INTO container_service_instances ${sql.insert({
      id: SVC,
      team_id: TEAM,
      name: SVC.replace(/_/g, "-"),
      desired_state: "running",
      status: "running",
      image: "busybox:latest",
      cpu_millis: 1000,
      replicas: 2,
      autoscale: JSON.stringify(policy)
    })}`
    yield* sql`INSERT INTO deployments (id, service_id, team_id, status) VALUES (${DEP}, ${SVC}, ${TEAM}, 'succeeded')`
    yield* sql`UPDATE container_service_instances SET current_deployment_id = ${DEP} WHERE id = ${SVC}`
    // Four running replicas of the deployment; samples are written for the first `replicas` only.
    const runtime = yield* ContainerRuntime
    const ids: Array<string> = []
    for (let i = 0; i < 4; i++) {
      const ref = yield* runtime.createContainer({
        name: `${SVC}-r${i}`,
        image: "busybox:latest",
        labels: Labels.labelsFor({ serviceId: SVC, teamId: TEAM, deploymentId: DEP })
      })
      yield* runtime.startContainer(ref.id)
      ids.push(ref.id)
    }
    return ids
  })

/** One sample per serving replica at the TestClock's now, CPU at `percent` of one CPU (the limit). */
const sample = (SVC: ServiceId, ids: ReadonlyArray<string>, percent: number) =>
  Effect.gen(function* () {
    const services = yield* ServiceRepo
    const row = Option.getOrThrow(yield* services.findByIdAnyTeam(SVC))
    const now = yield* TestClock.currentTimeMillis
    yield* (yield* MetricSampleRepo).insertMany(
      ids.slice(0, row.replicas).map((containerId) => ({
        serviceId: SVC,
        containerId,
        cpuPercent: percent,
        memoryBytes: 64 * 1024 * 1024,
        memoryLimitBytes: 512 * 1024 * 1024,
        sampledAt: new Date(now)
      }))
    )
    return row.replicas
  })

const replicasOf = (SVC: ServiceId) =>
  Effect.map(
    Effect.flatMap(ServiceRepo, (s) => s.findByIdAnyTeam(SVC)),
    (row) => Option.getOrThrow(row).replicas
  )

const scaledEvents = (SVC: ServiceId) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ type: string; message: string; data: Record<string, unknown> }>`
      SELECT type, message, data FROM container_deployment_events
      WHERE service_id = ${SVC} AND type LIKE 'autoscale.%' ORDER BY id`
  )

layerDescribe("autoscaler pass (PGlite, TestClock, synthetic metrics)", () => {
  layer(Live, { timeout: "120 seconds" })((it) => {
    it.effect(
      "out past the target at once, never beyond max; in only after the window, never below min",
      () =>
        Effect.gen(function* () {
          const svc = "svc_autoscale_a" as ServiceId
          const ids = yield* setup(svc)
          scaleCalls.length = 0
          yield* TestClock.setTime(T0)
          const autoscaler = yield* Autoscaler
          const pass = autoscaler.pass({ lookback: "20 seconds" })
          const tick = (seconds: number, percent: number) =>
            Effect.gen(function* () {
              yield* TestClock.adjust(`${seconds} seconds`)
              yield* sample(svc, ids, percent)
              yield* pass
              return yield* replicasOf(svc)
            })

          // 30 % of the limit with 2 replicas: below target, already at min.
          layerExpect(yield* tick(15, 30)).toBe(2)
          // 150 %: 2 × 150 / 50 = 6 recommended, capped at 4.
          layerExpect(yield* tick(15, 150)).toBe(4)
          // Even hotter: still 4 (max).
          layerExpect(yield* tick(15, 300)).toBe(4)
          // Idle: 1 recommended, but the window (60 s) still holds the 4s of the hot passes.
          layerExpect(yield* tick(15, 5)).toBe(4)
          layerExpect(yield* tick(15, 5)).toBe(4)
          layerExpect(yield* tick(15, 5)).toBe(4)
          // 61 s after the last hot recommendation: in, to min (2), not to 1.
          layerExpect(yield* tick(31, 5)).toBe(2)
          layerExpect(yield* tick(60, 0)).toBe(2)
          layerExpect(scaleCalls).toEqual([4, 2])

          const events = yield* scaledEvents(svc)
          layerExpect(events.map((e) => [e.type, e.data.from, e.data.to])).toEqual([
            ["autoscale.scaled", 2, 4],
            ["autoscale.scaled", 4, 2]
          ])
          layerExpect(events[0]!.data).toMatchObject({
            metric: "cpu",
            utilization: 150,
            target: 50,
            recommended: 4
          })
          layerExpect(events[0]!.message).toContain("cpu 150.0 % of the limit")
          layerExpect(events[1]!.message).toContain("highest recommendation of the last 60 s")
        })
    )

    it.effect("no fresh samples: nothing moves; stale ones do not count", () =>
      Effect.gen(function* () {
        const svc = "svc_autoscale_b" as ServiceId
        const ids = yield* setup(svc)
        scaleCalls.length = 0
        yield* TestClock.setTime(T0 + 3_600_000)
        const autoscaler = yield* Autoscaler
        yield* sample(svc, ids, 400)
        yield* TestClock.adjust("30 seconds")
        yield* autoscaler.pass({ lookback: "20 seconds" })
        layerExpect(yield* replicasOf(svc)).toBe(2)
        layerExpect(scaleCalls).toEqual([])
      })
    )
  })
})

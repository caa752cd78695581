/**
 * Alert evaluation, trend windows, and resource recommendations: pure logic; then alert rules
 * (AlertRepo) evaluated by the metrics pass on PGlite with the in-memory runtime and the TestClock.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe as layerDescribe, expect as layerExpect, layer } from "@effect/vitest"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { MockRuntime } from "@kyozo/core/engine/MockRuntime"
import { AlertRepo } from "@kyozo/core/store/AlertRepo"
import { MetricSampleRepo } from "@kyozo/core/store/MetricSampleRepo"
import { MetricsWorker } from "@kyozo/workers/maintenance/MetricsWorker"
import { bucket, trendSpec } from "@kyozo/workers/maintenance/MetricTrends"
import { percentile, recommend } from "@kyozo/workers/maintenance/Recommendations"
import { type AlertRule, evaluate, metricValue, type SamplePoint } from "@kyozo/workers/notify/AlertEvaluator"
import { Effect, Layer, Option, TestClock } from "effect"
import { describe, expect, it } from "vitest"

import { pgliteLayer } from "./support/database.js"

const MiB = 1024 ** 2
const memRule: AlertRule = {
  id: "r1",
  metric: "memory_percent",
  comparator: ">",
  threshold: 90,
  durationSeconds: 300
}
const at = (minutesAgo: number, memPercent: number, now: number): SamplePoint => ({
  at: now - minutesAgo * 60_000,
  cpuPercent: 10,
  memoryBytes: (memPercent / 100) * 512 * MiB,
  memoryLimitBytes: 512 * MiB,
  pids: 3
})

describe("AlertEvaluator", () => {
  const now = 10_000_000
  it("memory > 90 % for 5 min fires only once the breach spans 5 minutes", () => {
    const four = [0, 1, 2, 3, 4].map((m) => at(m, 95, now))
    expect(evaluate(memRule, four, now, false)._tag).toBe("Unchanged")
    const five = [0, 1, 2, 3, 4, 5].map((m) => at(m, 95, now))
    expect(evaluate(memRule, five, now, false)).toMatchObject({ _tag: "Fired" })
  })

  it("one sample under the threshold inside the window breaks the streak; a gap does too", () => {
    const dip = [0, 1, 2, 3, 4, 5].map((m) => at(m, m === 2 ? 50 : 95, now))
    expect(evaluate(memRule, dip, now, false)._tag).toBe("Unchanged")
    const gap = [0, 1, 5, 6].map((m) => at(m, 95, now))
    expect(evaluate(memRule, gap, now, false)._tag).toBe("Unchanged")
  })

  it("a firing alert resolves when the newest sample stops breaching, and stays firing otherwise", () => {
    expect(evaluate(memRule, [at(0, 95, now)], now, true)._tag).toBe("Unchanged")
    expect(evaluate(memRule, [at(1, 95, now), at(0, 40, now)], now, true)).toMatchObject({
      _tag: "Resolved",
      value: 40
    })
    expect(evaluate(memRule, [], now, true)._tag).toBe("Unchanged")
  })

  it("comparators and metrics", () => {
    const s = at(0, 50, now)
    expect(metricValue("memory_percent", s)).toBeCloseTo(50)
    expect(metricValue("pids", s)).toBe(3)
    const low: AlertRule = {
      id: "r2",
      metric: "cpu_percent",
      comparator: "<=",
      threshold: 10,
      durationSeconds: 0
    }
    expect(evaluate(low, [s], now, false)).toMatchObject({ _tag: "Fired", value: 10 })
  })
})

describe("MetricTrends", () => {
  it("hour: 60 one-minute buckets; day/week: hourly buckets from 1h roll-ups", () => {
    expect(trendSpec("hour")).toMatchObject({ resolution: "1m", stepMs: 60_000 })
    expect(trendSpec("week").resolution).toBe("1h")
    const now = 1_800_000_000_000
    const points = bucket(
      "hour",
      [
        { at: now - 30_000, cpuPercent: 10, memoryBytes: 100 },
        { at: now - 10_000, cpuPercent: 30, memoryBytes: 300 },
        { at: now - 2 * 3_600_000, cpuPercent: 99, memoryBytes: 999 }
      ],
      now
    )
    expect(points).toHaveLength(60)
    expect(points.filter((p) => p.cpuPercent !== null)).toHaveLength(1)
    const filled = points.find((p) => p.cpuPercent !== null)!
    expect(filled.cpuPercent).toBe(20)
    expect(filled.memoryBytes).toBe(200)
    expect(bucket("day", [], now)).toHaveLength(24)
    expect(bucket("week", [], now)).toHaveLength(168)
  })
})

describe("Recommendations", () => {
  it("p95 (nearest rank) and limits with headroom, monthly cost from prices", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1)
    expect(percentile(values, 95)).toBe(95)
    expect(percentile([], 95)).toBe(0)
    const samples = values.map((v) => ({ cpuPercent: v / 2, memoryBytes: v * MiB }))
    const r = recommend(samples, { vcpuHour: 0.04, gbHour: 0.005 }, 0.3)
    expect(r.p95CpuPercent).toBe(47.5)
    // 47.5 % of a CPU = 475 m; +30 % = 617.5 → 650 m. 95 MiB +30 % = 123.5 → 128 MiB.
    expect(r.cpuMillis).toBe(650)
    expect(r.memoryMb).toBe(128)
    expect(r.monthlyCost).toBeCloseTo((0.65 * 0.04 + 0.125 * 0.005) * 730, 2)
    // Floors for an idle service.
    const idle = recommend([{ cpuPercent: 0, memoryBytes: 0 }], { vcpuHour: 1, gbHour: 1 })
    expect(idle).toMatchObject({ cpuMillis: 50, memoryMb: 32 })
  })
})

// ---------------------------------------------------------------------------------------------
// Alert rules in the metrics pass.

const TEAM = "team_alerts"
const SVC = "svc_alerts_mem"
const T0 = Date.UTC(2030, 0, 1, 12, 0, 0)
const MINUTE = 60_000

const AlertsLive = Layer.mergeAll(MetricsWorker.Default, AlertRepo.Default, MetricSampleRepo.Default).pipe(
  Layer.provideMerge(MockRuntime.layer),
  Layer.provideMerge(pgliteLayer),
  Layer.orDie
)

const resetAlerts = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`DELETE FROM alert_rules WHERE team_id = ${TEAM}`
  yield* sql`DELETE FROM metric_samples WHERE service_id IN (SELECT id FROM container_service_instances WHERE team_id = ${TEAM})`
  yield* sql`TRUNCATE container_deployment_events`
  yield* sql`DELETE FROM container_service_instances WHERE team_id = ${TEAM}`
  yield* sql`DELETE FROM teams WHERE id = ${TEAM}`
  yield* sql`INSERT INTO teams (id, name) VALUES (${TEAM}, 'alerts')`
})

const insertService = (id: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql`INSERT INTO container_service_instances ${sql.insert({
        id,
        team_id: TEAM,
        name: id.replace(/_/g, "-"),
        desired_state: "running",
        status: "running"
      })}`
  )

const alertEvents = (serviceId: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ type: string; data: Record<string, unknown> }>`
      SELECT type, data FROM container_deployment_events
      WHERE service_id = ${serviceId} AND type LIKE 'alert.%' ORDER BY id`
  )

/** One "1m" sample at the TestClock's now, memory at `percent` of a 512 MiB limit. */
const sampleNow = (percent: number) =>
  Effect.gen(function* () {
    const now = yield* TestClock.currentTimeMillis
    const repo = yield* MetricSampleRepo
    yield* repo.insertMany([
      {
        serviceId: SVC,
        containerId: "c_alerts",
        cpuPercent: 5,
        memoryBytes: (percent / 100) * 512 * MiB,
        memoryLimitBytes: 512 * MiB,
        pids: 4,
        sampledAt: new Date(now)
      }
    ])
  })

layerDescribe("alert rules in the metrics pass (PGlite, TestClock)", () => {
  layer(AlertsLive, { timeout: "120 seconds" })((it) => {
    it.effect("AlertRepo: CRUD, team rules bind to every live service, fire/resolve once", () =>
      Effect.gen(function* () {
        yield* resetAlerts
        yield* insertService("svc_alerts_a")
        yield* insertService("svc_alerts_b")
        const repo = yield* AlertRepo
        const teamRule = yield* repo.create({
          teamId: TEAM,
          metric: "cpu_percent",
          comparator: ">",
          threshold: 80
        })
        layerExpect(teamRule).toMatchObject({ serviceId: null, durationSeconds: 300, enabled: true })
        const own = yield* repo.create({
          teamId: TEAM,
          serviceId: "svc_alerts_a",
          metric: "pids",
          comparator: ">=",
          threshold: 100,
          durationSeconds: 60
        })
        layerExpect((yield* repo.listByTeam(TEAM)).map((r) => r.id)).toEqual([teamRule.id, own.id])
        const bound = yield* repo.rulesForServices(["svc_alerts_a", "svc_alerts_b"])
        layerExpect(bound.map((b) => `${b.rule.metric}@${b.serviceId}`).sort()).toEqual([
          "cpu_percent@svc_alerts_a",
          "cpu_percent@svc_alerts_b",
          "pids@svc_alerts_a"
        ])
        const updated = yield* repo.update(TEAM, own.id, { enabled: false, threshold: 50 })
        layerExpect(Option.getOrThrow(updated)).toMatchObject({
          enabled: false,
          threshold: 50,
          comparator: ">="
        })
        layerExpect((yield* repo.rulesForServices(["svc_alerts_a"])).map((b) => b.rule.id)).toEqual([
          teamRule.id
        ])
        layerExpect(Option.isNone(yield* repo.update("team_other", own.id, { enabled: true }))).toBe(true)

        layerExpect(yield* repo.fire(teamRule.id, "svc_alerts_a", 95, new Date(T0))).toBe(true)
        layerExpect(yield* repo.fire(teamRule.id, "svc_alerts_a", 96, new Date(T0))).toBe(false)
        layerExpect((yield* repo.firing(["svc_alerts_a"])).map((f) => f.value)).toEqual([95])
        layerExpect(Option.isSome(yield* repo.resolve(teamRule.id, "svc_alerts_a"))).toBe(true)
        layerExpect(Option.isNone(yield* repo.resolve(teamRule.id, "svc_alerts_a"))).toBe(true)
        layerExpect(yield* repo.remove(TEAM, own.id)).toBe(true)
        layerExpect(yield* repo.remove(TEAM, own.id)).toBe(false)
      })
    )

    it.effect("memory > 90 % for 5 min fires once after 5 minutes over, resolves once when it drops", () =>
      Effect.gen(function* () {
        yield* resetAlerts
        yield* insertService(SVC)
        const repo = yield* AlertRepo
        const rule = yield* repo.create({
          teamId: TEAM,
          serviceId: SVC,
          metric: "memory_percent",
          comparator: ">",
          threshold: 90,
          durationSeconds: 300
        })
        const metrics = yield* MetricsWorker
        yield* TestClock.setTime(T0)
        const firedAtMinute: Array<number> = []
        const resolvedAtMinute: Array<number> = []
        // A sample a minute: 95 % for minutes 0..9, then 40 % for minutes 10..14.
        for (let minute = 0; minute < 15; minute++) {
          if (minute > 0) yield* TestClock.adjust("1 minute")
          yield* sampleNow(minute < 10 ? 95 : 40)
          const r = yield* metrics.evaluateAlerts([SVC])
          if (r.fired > 0) firedAtMinute.push(minute)
          if (r.resolved > 0) resolvedAtMinute.push(minute)
        }
        // The breach spans 5 minutes at minute 5 (samples at 0..5); it resolves at the first low sample.
        layerExpect(firedAtMinute).toEqual([5])
        layerExpect(resolvedAtMinute).toEqual([10])
        const events = yield* alertEvents(SVC)
        layerExpect(events.map((e) => e.type)).toEqual(["alert.fired", "alert.resolved"])
        layerExpect(events[0]!.data).toMatchObject({
          ruleId: rule.id,
          metric: "memory_percent",
          threshold: 90
        })
        layerExpect(events[0]!.data.value as number).toBeCloseTo(95)
        layerExpect(events[1]!.data.value as number).toBeCloseTo(40)
        layerExpect(events[1]!.data.firedAt).toBe(new Date(T0 + 5 * MINUTE).toISOString())
        layerExpect(yield* repo.firing([SVC])).toHaveLength(0)
      })
    )

    it.effect("the metrics pass evaluates the rules of the services it sampled", () =>
      Effect.gen(function* () {
        yield* resetAlerts
        yield* insertService("svc_alerts_pass")
        yield* insertService("svc_alerts_idle")
        yield* TestClock.setTime(T0)
        const runtime = yield* ContainerRuntime
        const ref = yield* runtime.createContainer({
          name: "alerts-pass",
          image: "busybox:latest",
          labels: Labels.labelsFor({ teamId: TEAM, serviceId: "svc_alerts_pass" })
        })
        yield* runtime.startContainer(ref.id)
        const repo = yield* AlertRepo
        // A team rule that any running container breaches at once (pids > 0, no duration).
        yield* repo.create({
          teamId: TEAM,
          metric: "pids",
          comparator: ">",
          threshold: 0,
          durationSeconds: 0
        })
        const metrics = yield* MetricsWorker
        const first = yield* metrics.run
        layerExpect(first).toMatchObject({ acted: 1, failures: 0 })
        layerExpect(first.notes).toContain("1 alerts fired, 0 resolved")
        yield* TestClock.adjust("1 minute")
        const second = yield* metrics.run
        layerExpect(second.notes).not.toContain("1 alerts fired, 0 resolved")
        layerExpect((yield* alertEvents("svc_alerts_pass")).map((e) => e.type)).toEqual(["alert.fired"])
        // A service with no container was not sampled, so nothing is evaluated for it.
        layerExpect(yield* alertEvents("svc_alerts_idle")).toHaveLength(0)
        yield* runtime.removeContainer(ref.id, { force: true })
      })
    )
  })
})

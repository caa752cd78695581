/**
 * Recovery: restart policy, backoff, OTP intensity, dependency-aware degradation, reconcile of
 * containers changed behind Kyozo's back, and health thresholds. PGlite (shared per process) with
 * the in-memory runtime; all time from TestClock.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { MockRuntime, MockRuntimeControl } from "@kyozo/core/engine/MockRuntime"
import { MaintenancePasses } from "@kyozo/core/supervision/MaintenancePasses"
import * as Dependencies from "@kyozo/workers/deploy/Dependencies"
import { applyThresholds, type HealthTracker } from "@kyozo/workers/maintenance/HealthWorker"
import { Recreate } from "@kyozo/workers/maintenance/RecoveryWorker"
import {
  backoffDelay,
  decide,
  initialRestartState,
  observeClean,
  policyAllows,
  RecoverySettings,
  type RestartState
} from "@kyozo/workers/maintenance/RestartPolicy"
import * as Workers from "@kyozo/workers/Workers"
import { Duration, Effect, Layer, TestClock } from "effect"

import { pgliteLayer } from "./support/database.js"

const TEAM = "team_recovery"
const settings = RecoverySettings.defaultValue()

describe("RestartPolicy (pure)", () => {
  it("backoff: first restart at once, then 10, 20, 40 … 300 s between restarts, capped", () => {
    let state: RestartState = initialRestartState
    let now = 1_000_000
    const waits: Array<number> = []
    const big = { ...settings, maxRestarts: 100, maxWindow: Duration.hours(10) }
    for (let i = 0; i < 8; i++) {
      const early = decide(state, now, big)
      const decision = early._tag === "Wait" ? decide(state, early.until, big) : early
      if (early._tag === "Wait") {
        // One millisecond earlier is still too early.
        expect(decide(state, early.until - 1, big)._tag).toBe("Wait")
        now = early.until
      }
      expect(decision._tag).toBe("Restart")
      if (decision._tag !== "Restart") return
      waits.push(Duration.toSeconds(decision.delay))
      state = decision.next
    }
    expect(waits).toEqual([0, 10, 20, 40, 80, 160, 300, 300])
    expect(Duration.toSeconds(backoffDelay(40, settings))).toBe(300)
  })

  it("backoff resets after 10 minutes of clean running", () => {
    const state: RestartState = { backoffLevel: 6, lastRestartAt: 0, restarts: [], gaveUpAt: null }
    expect(observeClean(state, 9 * 60_000, settings).backoffLevel).toBe(6)
    expect(observeClean(state, 10 * 60_000, settings).backoffLevel).toBe(0)
    // A failure 10 min after the last restart restarts at once, as the first of a new loop.
    const d = decide(state, 10 * 60_000, settings)
    expect(d).toMatchObject({ _tag: "Restart", next: { backoffLevel: 1 } })
    // Nine minutes in, the capped 5-min delay has passed, but the level keeps growing.
    expect(decide(state, 9 * 60_000, settings)).toMatchObject({ _tag: "Restart", next: { backoffLevel: 7 } })
  })

  it("intensity: MaxR restarts in MaxT tolerated, one more gives up (sliding window)", () => {
    const s = { ...settings, maxRestarts: 3, maxWindow: Duration.seconds(60) }
    const state: RestartState = {
      backoffLevel: 0,
      lastRestartAt: null,
      restarts: [30_000, 20_000],
      gaveUpAt: null
    }
    expect(decide(state, 40_000, s)).toMatchObject({
      _tag: "Restart",
      next: { restarts: [40_000, 30_000, 20_000] }
    })
    const full: RestartState = { ...state, restarts: [40_000, 30_000, 20_000] }
    expect(decide(full, 50_000, s)).toMatchObject({ _tag: "GiveUp", restartsInWindow: 3 })
    // Once the oldest restart is more than MaxT old it no longer counts.
    expect(decide(full, 80_001, s)._tag).toBe("Restart")
  })

  it("policies", () => {
    expect(policyAllows("always", { _tag: "Exited", exitCode: 0 })).toBe(true)
    expect(policyAllows("on-failure", { _tag: "Exited", exitCode: 0 })).toBe(false)
    expect(policyAllows("on-failure", { _tag: "Exited", exitCode: 137 })).toBe(true)
    expect(policyAllows("on-failure", { _tag: "Unhealthy" })).toBe(true)
    expect(policyAllows("never", { _tag: "Exited", exitCode: 1 })).toBe(false)
  })

  it("thresholds: failureThreshold 2 needs two failures in a row, successThreshold counts back", () => {
    const cfg = { failureThreshold: 2, successThreshold: 2 }
    let t: HealthTracker = { effective: "healthy", candidate: null, streak: 0 }
    t = applyThresholds(t, "unhealthy", cfg)
    expect(t.effective).toBe("healthy")
    t = applyThresholds(t, "healthy", cfg) // a success in between resets the count
    t = applyThresholds(t, "unhealthy", cfg)
    expect(t.effective).toBe("healthy")
    t = applyThresholds(t, "unhealthy", cfg)
    expect(t.effective).toBe("unhealthy")
    t = applyThresholds(t, "healthy", cfg)
    expect(t.effective).toBe("unhealthy")
    t = applyThresholds(t, "starting", cfg) // neither counts nor changes
    t = applyThresholds(t, "healthy", cfg)
    expect(t.effective).toBe("unhealthy")
    t = applyThresholds(t, "healthy", cfg)
    expect(t.effective).toBe("healthy")
    // A dead container is down at once.
    expect(applyThresholds(t, "unhealthy", cfg, true).effective).toBe("unhealthy")
  })

  it("dependencies: the root cause of a cascade is the bottom of the chain", () => {
    const edges = [
      { serviceId: "web", dependsOn: "api" },
      { serviceId: "api", dependsOn: "db" },
      { serviceId: "worker", dependsOn: "db" },
      { serviceId: "cron", dependsOn: "web" }
    ]
    const blocked = Dependencies.analyse(edges, new Set(["api", "db"]))
    expect(blocked.get("web")).toEqual({ down: ["api"], rootCauses: ["db"] })
    expect(blocked.get("api")).toEqual({ down: ["db"], rootCauses: ["db"] })
    expect(blocked.get("worker")).toEqual({ down: ["db"], rootCauses: ["db"] })
    expect(blocked.has("cron")).toBe(false) // web itself is not down
    expect(Dependencies.dependentsOf(edges, "db")).toEqual(["api", "worker"])
    // A cycle of down services reports its members instead of looping.
    const cyc = Dependencies.analyse(
      [
        { serviceId: "a", dependsOn: "b" },
        { serviceId: "b", dependsOn: "a" }
      ],
      new Set(["a", "b"])
    )
    expect(cyc.get("a")!.rootCauses).toEqual(["b"])
  })
})

// ---------------------------------------------------------------------------------------------
// Integration: the health pass followed by recovery, as the manager runs it.

const reset = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`TRUNCATE service_recovery, health_checks, metric_samples, container_deployment_events,
             container_service_dependencies, deployments, container_service_instances, teams CASCADE`
  yield* sql`INSERT INTO teams (id, name) VALUES (${TEAM}, 'recovery')`
})

const insertService = (
  id: string,
  containerId: string | null,
  options: {
    readonly policy?: string
    readonly healthConfig?: Record<string, unknown>
    readonly status?: string
    readonly desiredState?: string
  } = {}
) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql`INSERT INTO container_service_instances ${sql.insert({
        id,
        team_id: TEAM,
        name: id.replace(/_/g, "-"),
        desired_state: options.desiredState ?? "running",
        status: options.status ?? "running",
        container_id: containerId,
        restart_policy: options.policy ?? "on-failure",
        health_config: JSON.stringify(options.healthConfig ?? {})
      })}`
  )

const dependsOn = (serviceId: string, target: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`INSERT INTO container_service_dependencies (id, service_id, depends_on_service_id, condition)
                 VALUES (${`sdp_${serviceId}_${target}`}, ${serviceId}, ${target}, 'service_healthy')`
  )

const container = (serviceId: string) =>
  Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const ref = yield* runtime.createContainer({
      name: serviceId.replace(/_/g, "-"),
      image: "busybox:latest",
      labels: Labels.labelsFor({ teamId: TEAM, serviceId })
    })
    yield* runtime.startContainer(ref.id)
    return ref.id
  })

const row = (id: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{
        status: string
        restart_count: number
      }>`SELECT status, restart_count FROM container_service_instances WHERE id = ${id}`,
      (r) => r[0]!
    )
  )

const eventsOf = (id: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ type: string; data: Record<string, unknown> }>`
      SELECT type, data FROM container_deployment_events WHERE service_id = ${id} AND type <> 'health.changed' ORDER BY id`
  )

const isRunning = (id: string) =>
  Effect.flatMap(ContainerRuntime, (r) => Effect.map(r.inspectContainer(id), (i) => i.running))

const pass = Effect.flatMap(MaintenancePasses, (p) => p.health)

const Live = Workers.layer.pipe(Layer.provideMerge(MockRuntime.layer))

describe("recovery", () => {
  layer(pgliteLayer.pipe(Layer.orDie), { timeout: "120 seconds" })((it) => {
    it.effect("a container killed behind Kyozo's back is restarted by the next pass", () =>
      Effect.gen(function* () {
        yield* reset
        const control = yield* MockRuntimeControl
        const c = yield* container("svc_killed")
        yield* insertService("svc_killed", c)
        yield* pass
        yield* control.killContainer(c)
        yield* TestClock.adjust("30 seconds")
        const report = yield* pass
        expect(report.notes).toContain("svc_killed restarted")
        expect(yield* isRunning(c)).toBe(true)
        expect((yield* row("svc_killed")).restart_count).toBe(1)
        expect((yield* eventsOf("svc_killed")).map((e) => e.type)).toEqual(["service.restarted"])
        expect((yield* row("svc_killed")).status).toBe("starting")
        yield* TestClock.adjust("30 seconds")
        yield* pass
        expect((yield* row("svc_killed")).status).toBe("running")
      }).pipe(Effect.provide(Live))
    )

    it.effect(
      "a restarted container is `starting`, never `running`, until a probe after the restart passes",
      () =>
        Effect.gen(function* () {
          yield* reset
          const control = yield* MockRuntimeControl
          const runtime = yield* ContainerRuntime
          // Its own HEALTHCHECK: after every (re)start the engine says "starting" for 5 s.
          const ref = yield* runtime.createContainer({
            name: "svc-probed",
            image: "busybox:latest",
            labels: Labels.labelsFor({ teamId: TEAM, serviceId: "svc_probed" }),
            healthcheck: { test: ["CMD", "true"], intervalMs: 5_000 }
          })
          yield* runtime.startContainer(ref.id)
          yield* insertService("svc_probed", ref.id, { status: "starting" })
          const statuses: Array<string> = []
          const look = Effect.tap(row("svc_probed"), (r) => Effect.sync(() => statuses.push(r.status)))
          // Not probed healthy yet: a pass inside the engine's start period keeps it starting.
          yield* pass
          expect((yield* look).status).toBe("starting")
          yield* TestClock.adjust("6 seconds")
          yield* pass
          expect((yield* look).status).toBe("running")

          // Killed behind Kyozo's back: the pass sees it down, recovery restarts it → `starting`.
          yield* control.killContainer(ref.id)
          yield* TestClock.adjust("30 seconds")
          const report = yield* pass
          expect(report.notes).toContain("svc_probed restarted")
          expect(yield* isRunning(ref.id)).toBe(true)
          expect((yield* look).status).toBe("starting")
          // The restarted container fails its probes: never `running` (unhealthy after the threshold).
          yield* TestClock.adjust("6 seconds")
          yield* control.setHealth(ref.id, "unhealthy")
          for (let i = 0; i < 3; i++) {
            yield* pass
            yield* look
          }
          expect(statuses.slice(2)).not.toContain("running")
          expect(statuses.at(-1)).not.toBe("running")
          // Its probe passes: now it is `running`.
          yield* control.setHealth(ref.id, "healthy")
          yield* pass
          expect((yield* look).status).toBe("running")
        }).pipe(Effect.provide(Live))
    )

    it.effect(
      "a restart while a pass probes: the pass's healthy verdict does not make the restarted one running",
      () =>
        Effect.gen(function* () {
          yield* reset
          const control = yield* MockRuntimeControl
          const c = yield* container("svc_raced")
          yield* insertService("svc_raced", c, { status: "unhealthy" })
          // Every engine call takes a second (test time): the pass reads the rows, then waits on the engine.
          yield* control.slow("1 second")
          const passing = yield* Effect.fork(pass)
          while ((yield* TestClock.sleeps()).length === 0)
            yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
          // Meanwhile the service is restarted (kyozo restart): the row says starting.
          const sql = yield* SqlClient.SqlClient
          yield* sql`UPDATE container_service_instances SET status = 'starting' WHERE id = 'svc_raced'`
          while (passing.unsafePoll() === null) {
            yield* TestClock.adjust("1 second")
            yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
          }
          yield* control.slow(null)
          // The pass probed the container before the restart: healthy, but that says nothing of now.
          expect((yield* row("svc_raced")).status).toBe("starting")
          yield* pass
          expect((yield* row("svc_raced")).status).toBe("running")
        }).pipe(Effect.provide(Live))
    )

    it.effect(
      "crash loop: backoff between restarts, then MaxR exceeded → failed + alert, no more restarts",
      () =>
        Effect.gen(function* () {
          yield* reset
          const control = yield* MockRuntimeControl
          const c = yield* container("svc_loop")
          yield* insertService("svc_loop", c, { policy: "always" })
          const restartTimes: Array<number> = []
          // Kill at once after every restart; a pass every 5 s for 5 minutes of test time.
          for (let t = 0; t <= 300; t += 5) {
            if (yield* isRunning(c)) yield* control.killContainer(c, { exitCode: 1 })
            const report = yield* pass
            if (report.notes.includes("svc_loop restarted")) restartTimes.push(t)
            yield* TestClock.adjust("5 seconds")
          }
          // MaxR = 3: restarts at 0, 10, 30 (gaps 10, 20); the 4th (due at 70) gives up.
          expect(restartTimes).toEqual([0, 10, 30])
          const types = (yield* eventsOf("svc_loop")).map((e) => e.type)
          expect(types).toEqual([
            "service.restarted",
            "service.restarted",
            "service.restarted",
            "service.failed",
            "alert.fired"
          ])
          expect(yield* row("svc_loop")).toMatchObject({ status: "failed", restart_count: 3 })
          expect(yield* isRunning(c)).toBe(false)
        }).pipe(
          Effect.provide(Live),
          Effect.provide(
            Layer.succeed(RecoverySettings, { ...settings, maxRestarts: 3, maxWindow: Duration.minutes(5) })
          )
        )
    )

    it.effect(
      "policy never: not restarted, marked failed with an event; exit 0 under on-failure is stopped",
      () =>
        Effect.gen(function* () {
          yield* reset
          const control = yield* MockRuntimeControl
          const a = yield* container("svc_never")
          const b = yield* container("svc_done")
          yield* insertService("svc_never", a, { policy: "never" })
          yield* insertService("svc_done", b, { policy: "on-failure" })
          yield* control.killContainer(a, { exitCode: 2 })
          yield* control.killContainer(b, { exitCode: 0 })
          yield* pass
          yield* TestClock.adjust("1 minute")
          yield* pass
          expect(yield* isRunning(a)).toBe(false)
          expect(yield* isRunning(b)).toBe(false)
          expect((yield* row("svc_never")).status).toBe("failed")
          expect((yield* row("svc_done")).status).toBe("stopped")
          expect((yield* eventsOf("svc_never")).map((e) => e.type)).toEqual(["service.failed"])
          expect((yield* eventsOf("svc_done")).map((e) => e.type)).toEqual(["service.stopped"])
        }).pipe(Effect.provide(Live))
    )

    it.effect(
      "a removed container: container-missing + failed, or re-created through the Recreate seam",
      () =>
        Effect.gen(function* () {
          yield* reset
          const runtime = yield* ContainerRuntime
          const c = yield* container("svc_gone")
          yield* insertService("svc_gone", c)
          yield* runtime.removeContainer(c, { force: true })
          yield* pass
          yield* pass
          expect((yield* row("svc_gone")).status).toBe("failed")
          expect((yield* eventsOf("svc_gone")).map((e) => e.type)).toEqual(["service.container-missing"])

          const recreated: Array<string> = []
          const d = yield* container("svc_gone2")
          yield* insertService("svc_gone2", d)
          yield* runtime.removeContainer(d, { force: true })
          yield* pass.pipe(
            Effect.provideService(Recreate, {
              recreate: (service) => Effect.sync(() => (recreated.push(service.id), { containerId: "new" }))
            })
          )
          // Both want to run: the one already marked failed for want of a hook is re-created too.
          expect(recreated).toEqual(["svc_gone", "svc_gone2"])
          expect((yield* eventsOf("svc_gone2")).map((e) => e.type)).toEqual(["service.recreated"])
        }).pipe(Effect.provide(Live))
    )

    it.effect(
      "dependency down → dependent degraded, not restarted, root cause reported; recovery re-checks",
      () =>
        Effect.gen(function* () {
          yield* reset
          const control = yield* MockRuntimeControl
          const db = yield* container("svc_db")
          const api = yield* container("svc_api")
          const web = yield* container("svc_web")
          yield* insertService("svc_db", db, { policy: "never" })
          yield* insertService("svc_api", api)
          yield* insertService("svc_web", web)
          yield* dependsOn("svc_api", "svc_db")
          yield* dependsOn("svc_web", "svc_api")
          yield* pass
          // db dies (and stays down: policy never); api turns unhealthy because of it.
          yield* control.killContainer(db, { exitCode: 1 })
          yield* control.setHealth(api, "unhealthy")
          yield* TestClock.adjust("30 seconds")
          for (let i = 0; i < 3; i++) {
            yield* pass
            yield* TestClock.adjust("30 seconds")
          }
          expect((yield* row("svc_api")).status).toBe("degraded")
          expect((yield* row("svc_api")).restart_count).toBe(0)
          const apiEvents = yield* eventsOf("svc_api")
          expect(apiEvents.map((e) => e.type)).toEqual(["service.degraded"])
          expect(apiEvents[0]!.data).toMatchObject({ dependsOn: ["svc_db"], rootCause: ["svc_db"] })
          // web depends on api, which is down because of db: the root cause is db.
          const webEvents = yield* eventsOf("svc_web")
          expect(webEvents.map((e) => e.type)).toEqual(["service.degraded"])
          expect(webEvents[0]!.data).toMatchObject({ dependsOn: ["svc_api"], rootCause: ["svc_db"] })

          // db comes back (an operator starts it) and api is healthy again.
          const runtime = yield* ContainerRuntime
          yield* runtime.startContainer(db)
          yield* control.setHealth(api, "healthy")
          yield* pass
          yield* pass
          expect((yield* row("svc_db")).status).toBe("running")
          expect((yield* row("svc_api")).status).toBe("running")
          expect((yield* row("svc_web")).status).toBe("running")
          expect((yield* eventsOf("svc_api")).map((e) => e.type)).toEqual([
            "service.degraded",
            "service.rechecked"
          ])
          expect((yield* eventsOf("svc_web")).map((e) => e.type)).toEqual([
            "service.degraded",
            "service.rechecked"
          ])
        }).pipe(Effect.provide(Live))
    )

    it.effect("thresholds in the pass: failureThreshold 2 needs two failed checks; initial delay", () =>
      Effect.gen(function* () {
        yield* reset
        const control = yield* MockRuntimeControl
        const c = yield* container("svc_th")
        yield* insertService("svc_th", c, {
          policy: "never",
          healthConfig: { type: "docker", failureThreshold: 2, initialDelaySeconds: 20 }
        })
        yield* control.setHealth(c, "unhealthy")
        // Inside the initial delay nothing is probed.
        yield* pass
        expect((yield* row("svc_th")).status).toBe("running")
        yield* TestClock.adjust("30 seconds")
        yield* pass
        expect((yield* row("svc_th")).status).toBe("running")
        yield* TestClock.adjust("30 seconds")
        yield* pass
        expect((yield* row("svc_th")).status).toBe("failed") // unhealthy, and policy never
        const sql = yield* SqlClient.SqlClient
        const checks = yield* sql<{
          status: string
        }>`SELECT status FROM health_checks WHERE service_id = 'svc_th' ORDER BY id`
        // History keeps transitions (plus a sample per interval): the repeated "unhealthy" is no row.
        expect(checks.map((r) => r.status)).toEqual(["starting", "unhealthy"])
      }).pipe(Effect.provide(Live))
    )

    it.effect("reconcile: a container running although the row says stopped is stopped", () =>
      Effect.gen(function* () {
        yield* reset
        const c = yield* container("svc_off")
        yield* insertService("svc_off", c, { desiredState: "stopped", status: "stopped" })
        yield* pass
        expect(yield* isRunning(c)).toBe(false)
        expect((yield* eventsOf("svc_off")).map((e) => e.type)).toEqual(["service.stopped"])
      }).pipe(Effect.provide(Live))
    )
  })
})

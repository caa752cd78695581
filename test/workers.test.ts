/**
 * The health, metrics and cleanup passes on PGlite with the in-memory runtime. The database is
 * shared by the file (a fresh PGlite folder takes seconds); every test truncates the tables it
 * uses and gets a fresh MockRuntime and fresh workers.
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { ContainerRuntime, type ContainerSummary } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { MockRuntime, MockRuntimeControl } from "@kyozo/core/engine/MockRuntime"
import * as Database from "@kyozo/core/store/Database"
import { HealthCheckRepo } from "@kyozo/core/store/HealthCheckRepo"
import { MetricSampleRepo } from "@kyozo/core/store/MetricSampleRepo"
import { MaintenancePasses } from "@kyozo/core/supervision/MaintenancePasses"
import { CleanupWorker } from "@kyozo/workers/maintenance/CleanupWorker"
import { HealthWorker } from "@kyozo/workers/maintenance/HealthWorker"
import { MetricsWorker } from "@kyozo/workers/maintenance/MetricsWorker"
import * as Workers from "@kyozo/workers/Workers"
import { WorkerSettings } from "@kyozo/workers/WorkerSettings"
import { Clock, Duration, Effect, Layer, TestClock, TestContext } from "effect"
import { afterAll } from "vitest"

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-workers-test-"))
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }))

const DatabaseLive = Database.migrated(Database.layerPglite(dataDir)).pipe(Layer.orDie)

const TEAM = "team_workers"

/** A fresh runtime and fresh workers (their in-memory state, e.g. previous stats, starts empty). */
const WorkersLive = Layer.mergeAll(HealthWorker.Default, MetricsWorker.Default, CleanupWorker.Default).pipe(
  Layer.provideMerge(Layer.mergeAll(HealthCheckRepo.Default, MetricSampleRepo.Default)),
  Layer.provideMerge(MockRuntime.layer)
)

const reset = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // TRUNCATE skips the append-only row trigger of container_deployment_events.
  yield* sql`TRUNCATE health_checks, metric_samples, container_deployment_events, deployments,
             container_service_instances, teams CASCADE`
  yield* sql`INSERT INTO teams (id, name) VALUES (${TEAM}, 'workers')`
})

interface ServiceSeed {
  readonly id: string
  readonly status?: string
  readonly desiredState?: string
  readonly containerId?: string | null
  readonly currentDeploymentId?: string | null
  readonly hostPort?: number | null
  readonly internalPort?: number | null
  readonly healthConfig?: Record<string, unknown>
  readonly deleted?: boolean
}

const insertService = (s: ServiceSeed) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO container_service_instances ${sql.insert({
      id: s.id,
      team_id: TEAM,
      name: s.id.replace(/_/g, "-"),
      desired_state: s.desiredState ?? "running",
      status: s.status ?? "running",
      container_id: s.containerId ?? null,
      host_port: s.hostPort ?? null,
      internal_port: s.internalPort ?? null,
      health_config: JSON.stringify(s.healthConfig ?? {}),
      deleted_at: s.deleted ? new Date() : null
    })}`
    if (s.currentDeploymentId) {
      yield* insertDeployment(s.currentDeploymentId, s.id, "succeeded")
      yield* sql`UPDATE container_service_instances SET current_deployment_id = ${s.currentDeploymentId} WHERE id = ${s.id}`
    }
  })

const insertDeployment = (id: string, serviceId: string, status: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql`INSERT INTO deployments (id, service_id, team_id, status) VALUES (${id}, ${serviceId}, ${TEAM}, ${status})`
  )

/** A container carrying the kyozo labels of a service/deployment; started unless told otherwise. */
const container = (name: string, owner: Labels.Owner, options: { readonly start?: boolean } = {}) =>
  Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const ref = yield* runtime.createContainer({
      name,
      image: "busybox:latest",
      labels: Labels.labelsFor({ teamId: TEAM, ...owner })
    })
    if (options.start !== false) yield* runtime.startContainer(ref.id)
    return ref.id
  })

const healthEvents = (serviceId: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{ type: string; message: string; data: { from: string; to: string } }>`
      SELECT type, message, data FROM container_deployment_events
      WHERE service_id = ${serviceId} AND type = 'health.changed' ORDER BY id`
  )

const serviceStatus = (serviceId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ status: string }>`SELECT status FROM container_service_instances WHERE id = ${serviceId}`,
      (rows) => rows[0]?.status
    )
  )

const listen = <S extends net.Server>(server: S) =>
  Effect.acquireRelease(
    Effect.async<number>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as net.AddressInfo).port)))
    }),
    () => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  )

describe("workers", () => {
  layer(DatabaseLive, { excludeTestServices: true, timeout: "90 seconds" })((it) => {
    it.effect("health: healthy while running, unhealthy once killed, one event per transition", () =>
      Effect.gen(function* () {
        yield* reset
        const control = yield* MockRuntimeControl
        const health = yield* HealthWorker
        const repo = yield* HealthCheckRepo

        const a = yield* container("svc-a", { serviceId: "svc_a", deploymentId: "dep_a1" })
        // svc_b has no recorded container id: the pass finds it by its kyozo.service label.
        const b = yield* container("svc-b", { serviceId: "svc_b", deploymentId: "dep_b1" })
        yield* insertService({ id: "svc_a", containerId: a, currentDeploymentId: "dep_a1" })
        yield* insertService({ id: "svc_b", currentDeploymentId: "dep_b1" })
        yield* insertService({
          id: "svc_gone",
          containerId: "no-such-container",
          currentDeploymentId: "dep_g1"
        })
        // Not wanted running: not checked.
        yield* insertService({ id: "svc_stopped", desiredState: "stopped", status: "stopped" })

        const first = yield* health.run
        expect(first).toMatchObject({ pass: "health", examined: 3, failures: 0 })
        const latest = yield* repo.latestStatus(["svc_a", "svc_b", "svc_gone", "svc_stopped"])
        expect(latest.get("svc_a")).toMatchObject({ status: "healthy", checkType: "docker", containerId: a })
        expect(latest.get("svc_b")).toMatchObject({ status: "healthy", containerId: b })
        expect(latest.get("svc_gone")).toMatchObject({
          status: "unhealthy",
          checkType: "state",
          detail: "container missing"
        })
        expect(latest.has("svc_stopped")).toBe(false)
        // svc_a and svc_b were already "running": no transition. svc_gone was wrongly "running".
        expect(yield* healthEvents("svc_a")).toHaveLength(0)
        expect(yield* healthEvents("svc_gone")).toHaveLength(1)
        expect(yield* serviceStatus("svc_gone")).toBe("unhealthy")
        expect(first.acted).toBe(1)

        yield* control.killContainer(b)
        const second = yield* health.run
        expect(second).toMatchObject({ examined: 3, acted: 1, failures: 0 })
        const [newestB] = yield* repo.latestByService("svc_b", 1)
        expect(newestB).toMatchObject({
          status: "unhealthy",
          checkType: "state",
          detail: "exited (code 137)"
        })
        expect(yield* serviceStatus("svc_b")).toBe("unhealthy")
        const eventsB = yield* healthEvents("svc_b")
        expect(eventsB).toHaveLength(1)
        expect(eventsB[0]!.data).toMatchObject({ from: "healthy", to: "unhealthy" })

        // Still unhealthy: no new row within the sample interval, and no new event (transitions only).
        const third = yield* health.run
        expect(third.acted).toBe(0)
        expect(yield* repo.latestByService("svc_b", 10)).toHaveLength(2)
        expect(yield* healthEvents("svc_b")).toHaveLength(1)
        expect(yield* healthEvents("svc_gone")).toHaveLength(1)

        // Recovery is a transition back.
        yield* (yield* ContainerRuntime).startContainer(b)
        const fourth = yield* health.run
        expect(fourth.acted).toBe(1)
        expect(yield* serviceStatus("svc_b")).toBe("running")
        expect((yield* healthEvents("svc_b")).map((e) => e.data.to)).toEqual(["unhealthy", "healthy"])
      }).pipe(Effect.provide(WorkersLive))
    )

    it.effect(
      "health history: a steady status is one row plus a sample per interval, a change is stored at once",
      () =>
        Effect.gen(function* () {
          yield* reset
          const control = yield* MockRuntimeControl
          const health = yield* HealthWorker
          const repo = yield* HealthCheckRepo
          const a = yield* container("steady-a", { serviceId: "svc_steady", deploymentId: "dep_s1" })
          yield* insertService({ id: "svc_steady", containerId: a, currentDeploymentId: "dep_s1" })
          const rows = Effect.map(repo.latestByService("svc_steady", 100), (r) => r.map((c) => c.status))

          // Ten passes 30 s apart (4.5 minutes): one row.
          for (let i = 0; i < 10; i++) {
            yield* health.run
            yield* TestClock.adjust("30 seconds")
          }
          expect(yield* rows).toEqual(["healthy"])
          // Past the 5-minute sample interval: one more row, then quiet again.
          yield* health.run
          expect(yield* rows).toEqual(["healthy", "healthy"])
          yield* TestClock.adjust("30 seconds")
          yield* health.run
          expect(yield* rows).toHaveLength(2)

          // A change is stored in the very next pass, not at the next sample.
          yield* control.killContainer(a)
          yield* TestClock.adjust("30 seconds")
          yield* health.run
          expect(yield* rows).toEqual(["unhealthy", "healthy", "healthy"])
          const [newest] = yield* repo.latestByService("svc_steady", 1)
          expect(newest!.checkedAt.getTime()).toBe(yield* Clock.currentTimeMillis)

          // A fresh worker (a restart) seeds from the stored rows: a steady status stores nothing new.
          const restarted = yield* Effect.provide(HealthWorker, HealthWorker.Default)
          yield* TestClock.adjust("30 seconds")
          yield* restarted.run
          expect(yield* rows).toHaveLength(3)
        }).pipe(Effect.provide(WorkersLive), Effect.provide(TestContext.TestContext))
    )

    it.scoped("health: tcp and http probes go to 127.0.0.1:<host port>", () =>
      Effect.gen(function* () {
        yield* reset
        const health = yield* HealthWorker
        const repo = yield* HealthCheckRepo
        const tcpServer = net.createServer((s) => s.end())
        const tcpPort = yield* listen(tcpServer)
        const httpPort = yield* listen(
          http.createServer((req, res) => {
            res.statusCode = req.url === "/healthz" ? 204 : 500
            res.end()
          })
        )
        const t = yield* container("svc-tcp", { serviceId: "svc_tcp" })
        const h = yield* container("svc-http", { serviceId: "svc_http" })
        const h2 = yield* container("svc-http-bad", { serviceId: "svc_http_bad" })
        yield* insertService({
          id: "svc_tcp",
          containerId: t,
          hostPort: tcpPort,
          healthConfig: { type: "tcp", failureThreshold: 1 }
        })
        yield* insertService({
          id: "svc_http",
          containerId: h,
          hostPort: httpPort,
          healthConfig: { type: "http", path: "/healthz" }
        })
        yield* insertService({
          id: "svc_http_bad",
          containerId: h2,
          hostPort: httpPort,
          healthConfig: { type: "http", path: "/" }
        })

        const report = yield* health.run
        expect(report).toMatchObject({ examined: 3, failures: 0 })
        const latest = yield* repo.latestStatus(["svc_tcp", "svc_http", "svc_http_bad"])
        expect(latest.get("svc_tcp")).toMatchObject({ status: "healthy", checkType: "tcp" })
        expect(latest.get("svc_tcp")!.latencyMs).toBeGreaterThanOrEqual(0)
        expect(latest.get("svc_http")).toMatchObject({ status: "healthy", checkType: "http" })
        expect(latest.get("svc_http")!.detail).toContain("answered 204")
        expect(latest.get("svc_http_bad")).toMatchObject({ status: "unhealthy", checkType: "http" })
        expect(latest.get("svc_http_bad")!.detail).toContain("answered 500")

        yield* Effect.async<void>((resume) => void tcpServer.close(() => resume(Effect.void)))
        yield* health.run
        const [tcpAfter] = yield* repo.latestByService("svc_tcp", 1)
        expect(tcpAfter).toMatchObject({ status: "unhealthy", checkType: "tcp" })
        expect(tcpAfter!.detail).toMatch(/ECONNREFUSED|no answer/)
        expect(yield* healthEvents("svc_tcp")).toHaveLength(1)
      }).pipe(
        Effect.provide(WorkersLive),
        Effect.provide(
          Layer.succeed(WorkerSettings, {
            ...WorkerSettings.defaultValue(),
            probeTimeout: Duration.seconds(2)
          })
        )
      )
    )

    it.effect("health: a pass lists once and inspects only containers whose list entry changed", () =>
      Effect.gen(function* () {
        yield* reset
        const control = yield* MockRuntimeControl
        const health = yield* HealthWorker
        const repo = yield* HealthCheckRepo
        const ids: Array<string> = []
        for (const n of [1, 2, 3]) {
          const id = yield* container(`svc-c${n}`, { serviceId: `svc_c${n}`, deploymentId: `dep_c${n}` })
          yield* insertService({ id: `svc_c${n}`, containerId: id, currentDeploymentId: `dep_c${n}` })
          ids.push(id)
        }
        yield* health.run
        yield* control.resetCalls
        // Same clock, nothing changed: one listing, no inspect.
        expect(yield* health.run).toMatchObject({ examined: 3, failures: 0 })
        const quiet = yield* control.calls
        expect(quiet.byOperation["listContainers"]).toBe(1)
        expect(quiet.byOperation["inspectContainer"] ?? 0).toBe(0)
        // One dies: only it is inspected again, and its death is seen at once.
        yield* control.killContainer(ids[1]!)
        yield* control.resetCalls
        yield* health.run
        expect((yield* control.calls).byOperation["inspectContainer"]).toBe(1)
        const [dead] = yield* repo.latestByService("svc_c2", 1)
        expect(dead).toMatchObject({ status: "unhealthy", checkType: "state", detail: "exited (code 137)" })
      }).pipe(Effect.provide(WorkersLive))
    )

    it.effect("health: one failing container is counted and the pass reports the rest", () =>
      Effect.gen(function* () {
        yield* reset
        const control = yield* MockRuntimeControl
        const health = yield* HealthWorker
        const repo = yield* HealthCheckRepo
        for (const n of [1, 2, 3]) {
          const id = yield* container(`svc-f${n}`, { serviceId: `svc_f${n}` })
          yield* insertService({ id: `svc_f${n}`, containerId: id })
        }
        yield* control.failNext(1, undefined, { operation: "inspectContainer" })
        const report = yield* health.run
        expect(report).toMatchObject({ examined: 3, failures: 1 })
        const latest = yield* repo.latestStatus(["svc_f1", "svc_f2", "svc_f3"])
        expect(latest.size).toBe(2)
        for (const check of latest.values()) expect(check.status).toBe("healthy")
      }).pipe(Effect.provide(WorkersLive))
    )

    it.effect("metrics: samples stored in one go, sane CPU % from the second pass on", () =>
      Effect.gen(function* () {
        yield* reset
        const metrics = yield* MetricsWorker
        const repo = yield* MetricSampleRepo
        const control = yield* MockRuntimeControl
        const m1 = yield* container("svc-m1", { serviceId: "svc_m1" })
        const m2 = yield* container("svc-m2", { serviceId: "svc_m2" })
        yield* container("svc-orphan", { serviceId: "svc_unknown" })
        yield* container("svc-m1-stopped", { serviceId: "svc_m1" }, { start: false })
        yield* insertService({ id: "svc_m1", containerId: m1 })
        yield* insertService({ id: "svc_m2", containerId: m2 })
        const since = new Date(Date.now() - 60_000)

        const first = yield* metrics.run
        expect(first).toMatchObject({ pass: "metrics", examined: 3, acted: 2, failures: 0 })
        yield* Effect.sleep("40 millis")
        const second = yield* metrics.run
        expect(second).toMatchObject({ examined: 3, acted: 2, failures: 0 })

        const samples = yield* repo.listByService("svc_m1", "1m", since)
        expect(samples).toHaveLength(2)
        expect(samples[0]!.cpuPercent).toBe(0) // no previous sample yet
        expect(samples[1]!.cpuPercent).toBeGreaterThan(0)
        expect(samples[1]!.cpuPercent).toBeLessThanOrEqual(100 * 2) // the mock reports 2 CPUs
        expect(samples[1]!.memoryBytes).toBeGreaterThan(0)
        expect(samples[1]!.memoryBytes).toBeLessThanOrEqual(samples[1]!.memoryLimitBytes)
        expect(samples[1]!.containerId).toBe(m1)
        expect(yield* repo.listByService("svc_unknown", "1m", since)).toHaveLength(0)

        // One failing stats call: counted, the other sample still stored.
        yield* control.failNext(1, undefined, { operation: "stats" })
        const third = yield* metrics.run
        expect(third).toMatchObject({ examined: 3, acted: 1, failures: 1 })
        const total =
          (yield* repo.listByService("svc_m1", "1m", since)).length +
          (yield* repo.listByService("svc_m2", "1m", since)).length
        expect(total).toBe(5)
      }).pipe(Effect.provide(WorkersLive))
    )

    it.effect("cleanup: removes only superseded or orphaned kyozo containers", () =>
      Effect.gen(function* () {
        yield* reset
        const runtime = yield* ContainerRuntime
        const control = yield* MockRuntimeControl
        yield* insertService({ id: "svc_c", currentDeploymentId: "dep_c2" })
        yield* insertService({ id: "svc_deleted", desiredState: "removed", status: "removed", deleted: true })
        yield* insertDeployment("dep_c1", "svc_c", "superseded")
        yield* insertDeployment("dep_c3", "svc_c", "starting")

        const superseded = yield* container("c-old", { serviceId: "svc_c", deploymentId: "dep_c1" })
        yield* control.killContainer(superseded, { exitCode: 0 })
        const current = yield* container("c-current", { serviceId: "svc_c", deploymentId: "dep_c2" })
        yield* control.killContainer(current, { exitCode: 1 })
        const oldRunning = yield* container("c-old-running", { serviceId: "svc_c", deploymentId: "dep_c1" })
        const deploying = yield* container(
          "c-deploying",
          { serviceId: "svc_c", deploymentId: "dep_c3" },
          { start: false }
        )
        yield* (yield* MockRuntimeControl).killContainer(deploying).pipe(Effect.ignore)
        const ofDeleted = yield* container("c-deleted", { serviceId: "svc_deleted", deploymentId: "dep_x" })
        yield* control.killContainer(ofDeleted)
        const ofUnknown = yield* container("c-unknown", { serviceId: "svc_nobody" }, { start: false })

        const cleanup = yield* CleanupWorker
        const report = yield* cleanup.run
        expect(report).toMatchObject({ pass: "cleanup", examined: 6, acted: 3, failures: 0 })
        const left = (yield* runtime.listContainers({ all: true })).map((c) => c.id).sort()
        expect(left).toEqual([current, oldRunning, deploying].sort())
        expect(left).not.toContain(superseded)
        expect(left).not.toContain(ofDeleted)
        expect(left).not.toContain(ofUnknown)

        // Level-driven: nothing left to do on the next pass.
        expect((yield* cleanup.run).acted).toBe(0)
      }).pipe(Effect.provide(WorkersLive))
    )

    it.effect("cleanup: never touches a container without kyozo.managed, even if the engine lists it", () =>
      Effect.gen(function* () {
        yield* reset
        const removed: Array<string> = []
        const foreign: ContainerSummary = {
          id: "foreign0000",
          name: "someone-elses-db",
          image: "postgres:16",
          state: "exited",
          status: "Exited (0)",
          labels: { [Labels.Service]: "svc_nobody" },
          ports: [],
          createdAt: 0
        }
        // An engine that ignores label filters: the worker must check the label itself.
        const Leaky = Layer.effect(
          ContainerRuntime,
          Effect.map(ContainerRuntime, (inner) => ({
            ...inner,
            listContainers: (filter) => Effect.map(inner.listContainers(filter), (cs) => [...cs, foreign]),
            removeContainer: (id, options) => {
              removed.push(id)
              return inner.removeContainer(id, options)
            }
          }))
        )
        // The mock labels it kyozo.managed=true itself; its service is unknown, so it goes.
        const orphan = yield* Effect.flatMap(ContainerRuntime, (rt) =>
          rt.createContainer({
            name: "orphan",
            image: "busybox:latest",
            labels: { [Labels.Service]: "svc_nobody" }
          })
        )
        const report = yield* Effect.flatMap(CleanupWorker, (w) => w.run).pipe(
          Effect.provide(CleanupWorker.DefaultWithoutDependencies),
          Effect.provide(Layer.mergeAll(HealthCheckRepo.Default, MetricSampleRepo.Default)),
          Effect.provide(Leaky)
        )
        expect(removed).toEqual([orphan.id])
        expect(removed).not.toContain(foreign.id)
        expect(report.examined).toBe(1)
      }).pipe(Effect.provide(MockRuntime.layer))
    )

    it.effect("cleanup: retention, idempotent hourly roll-ups", () =>
      Effect.gen(function* () {
        yield* reset
        const sql = yield* SqlClient.SqlClient
        const health = yield* HealthCheckRepo
        const metrics = yield* MetricSampleRepo
        yield* insertService({ id: "svc_r" })
        const day = 86_400_000
        const now = Date.now()
        yield* health.record({
          serviceId: "svc_r",
          containerId: null,
          checkType: "state",
          status: "healthy",
          latencyMs: null,
          checkedAt: new Date(now - 8 * day)
        })
        yield* health.record({
          serviceId: "svc_r",
          containerId: null,
          checkType: "state",
          status: "healthy",
          latencyMs: 1.4
        })
        // Two samples in one past hour, one far past retention.
        const hour = new Date(Math.floor((now - 3 * 3_600_000) / 3_600_000) * 3_600_000)
        const sample = (cpu: number, mem: number, at: Date) => ({
          serviceId: "svc_r",
          containerId: "c1",
          cpuPercent: cpu,
          memoryBytes: mem,
          memoryLimitBytes: 1000,
          netRxBytes: mem * 2,
          sampledAt: at
        })
        expect(
          yield* metrics.insertMany([
            sample(10, 100, new Date(hour.getTime() + 60_000)),
            sample(30, 300, new Date(hour.getTime() + 120_000)),
            sample(50, 500, new Date(now - 40 * day))
          ])
        ).toBe(3)

        const cleanup = yield* CleanupWorker
        const report = yield* cleanup.run
        expect(report.failures).toBe(0)
        expect(report.notes).toContain("1 health checks pruned")
        expect(report.notes).toContain("1 1m samples pruned")
        expect(yield* health.latestByService("svc_r", 10)).toHaveLength(1)

        const hourly = yield* metrics.listByService("svc_r", "1h", new Date(0))
        expect(hourly).toHaveLength(1)
        expect(hourly[0]).toMatchObject({
          cpuPercent: 20,
          memoryBytes: 200,
          netRxBytes: 600,
          sampledAt: hour
        })

        // Again: no hour pending, and downsampling the same hour by hand replaces, never adds.
        const again = yield* cleanup.run
        expect(again.notes).toContain("0 hours downsampled")
        expect(yield* metrics.downsample(hour)).toBe(1)
        const rows = yield* sql<{
          n: number
        }>`SELECT count(*)::int AS n FROM metric_samples WHERE resolution = '1h'`
        expect(rows[0]!.n).toBe(1)
        expect(yield* metrics.pruneOlderThan("1h", new Date(now))).toBe(1)
      }).pipe(Effect.provide(WorkersLive))
    )

    it.effect("Workers.layer provides the MaintenancePasses", () =>
      Effect.gen(function* () {
        yield* reset
        const id = yield* container("svc-w", { serviceId: "svc_w" })
        yield* insertService({ id: "svc_w", containerId: id })
        const passes = yield* MaintenancePasses
        expect(yield* passes.health).toMatchObject({ pass: "health", examined: 1, failures: 0 })
        expect(yield* passes.metrics).toMatchObject({ pass: "metrics", examined: 1, acted: 1 })
        expect(yield* passes.cleanup).toMatchObject({ pass: "cleanup", examined: 1, acted: 0, failures: 0 })
      }).pipe(Effect.provide(Workers.layer.pipe(Layer.provideMerge(MockRuntime.layer))))
    )
  })
})

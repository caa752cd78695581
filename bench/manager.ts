/**
 * bench/manager: 1,000 mock services under the three schedules (health 30 s, metrics 60 s,
 * cleanup 5 min) for one simulated hour on the real workers and an embedded PGlite database.
 * Prints wall time, heap bytes per service and events per second, and the same hour with no-op
 * passes as the baseline (the manager's own overhead), both run in this process.
 *
 *   pnpm bench:manager            (KYOZO_BENCH_SERVICES=200 for a quicker run)
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import * as SqlClient from "@effect/sql/SqlClient"
import * as CircuitBreaker from "@kyozo/core/engine/CircuitBreaker"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import * as MockRuntime from "@kyozo/core/engine/MockRuntime"
import { RuntimeInfo } from "@kyozo/core/engine/RuntimeSelection"
import * as Database from "@kyozo/core/store/Database"
import * as ContainerManagerModule from "@kyozo/core/supervision/ContainerManager"
import { ContainerManager, type ManagerEvent } from "@kyozo/core/supervision/ContainerManager"
import { MaintenancePasses } from "@kyozo/core/supervision/MaintenancePasses"
import * as Workers from "@kyozo/workers/Workers"
import { Duration, Effect, Layer, Queue, TestClock, TestContext } from "effect"

const SERVICES = Number(process.env.KYOZO_BENCH_SERVICES ?? 1000)
const TICK = Duration.seconds(30)
const TICKS = 120 // one hour

const runtimeLayer = CircuitBreaker.layerRuntime({ name: "mock" }).pipe(
  Layer.provideMerge(MockRuntime.layer),
  Layer.provideMerge(Layer.succeed(RuntimeInfo, { mode: "mock", reason: "bench", endpoint: "in-memory" }))
)

const intervals = { health: "30 seconds", metrics: "60 seconds", cleanup: "5 minutes" } as const

/** Creates the team, the service rows and one running mock container per service. */
const seed = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const runtime = yield* ContainerRuntime
  const team = `team_bench${Date.now().toString(36)}`
  yield* sql`INSERT INTO teams (id, name) VALUES (${team}, ${team})`
  for (let i = 0; i < SERVICES; i++) {
    const id = `svc_${team.slice(10)}${i.toString(36)}`
    const deployment = `dep_${i.toString(36)}`
    const ref = yield* runtime.createContainer({
      name: `kyozo-${id}-${deployment}`,
      image: "busybox:latest",
      labels: Labels.labelsFor({ serviceId: id, teamId: team, deploymentId: deployment }),
      ports: [{ containerPort: 8080 }]
    })
    yield* runtime.startContainer(ref.id)
    yield* sql`INSERT INTO container_service_instances
      (id, team_id, name, image, desired_state, status, container_id, container_name, internal_port, health_config)
      VALUES (${id}, ${team}, ${`svc-${i}`}, 'busybox:latest', 'running', 'running', ${ref.id}, ${ref.name}, 8080,
              ${JSON.stringify({ type: "docker" })}::jsonb)`
  }
})

/** Advances one simulated hour tick by tick, waiting each tick for the passes that fall due. */
const simulateHour = Effect.gen(function* () {
  const manager = yield* ContainerManager
  const events = yield* manager.subscribe
  let received = 0
  const started = performance.now()
  for (let tick = 1; tick <= TICKS; tick++) {
    const due = 1 + (tick % 2 === 0 ? 1 : 0) + (tick % 10 === 0 ? 1 : 0)
    yield* TestClock.adjust(TICK)
    let finished = 0
    while (finished < due) {
      const event: ManagerEvent = yield* Queue.take(events)
      received++
      if (event._tag === "PassCompleted" || event._tag === "PassFailed") finished++
    }
  }
  const wallMs = performance.now() - started
  const schedules = yield* manager.schedules
  return { wallMs, received, schedules }
})

const run = (
  label: string,
  passes: Layer.Layer<MaintenancePasses, never, SqlClient.SqlClient | ContainerRuntime>,
  dataDir: string
) =>
  Effect.gen(function* () {
    const app = ContainerManagerModule.layerWith(intervals).pipe(
      Layer.provideMerge(passes),
      Layer.provideMerge(runtimeLayer),
      Layer.provideMerge(Database.migrated(Database.layerPglite(dataDir)))
    )
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const ctx = yield* Layer.build(app)
        global.gc?.()
        const heapBefore = process.memoryUsage().heapUsed
        const setupStart = performance.now()
        yield* Effect.provide(seed, ctx)
        const setupMs = performance.now() - setupStart
        const result = yield* Effect.provide(simulateHour, ctx)
        global.gc?.()
        const heapAfter = process.memoryUsage().heapUsed
        const sql = yield* Effect.provide(SqlClient.SqlClient, ctx)
        const [health] = yield* sql<{ n: string }>`SELECT count(*)::text AS n FROM health_checks`
        const [metrics] = yield* sql<{ n: string }>`SELECT count(*)::text AS n FROM metric_samples`
        const rows = Number(health?.n ?? 0) + Number(metrics?.n ?? 0)
        const runs = Object.fromEntries(
          result.schedules.map((s) => [s.pass, `${s.runs} (${s.failures} failed)`])
        )
        const perSecond = (n: number) => Math.round(n / (result.wallMs / 1000))
        console.log(`\n[${label}] ${SERVICES} services, 1 simulated hour`)
        console.log(`  setup (rows + containers):   ${setupMs.toFixed(0)} ms`)
        console.log(
          `  wall time of the hour:       ${result.wallMs.toFixed(0)} ms (${(3_600_000 / result.wallMs).toFixed(0)}× real time)`
        )
        console.log(`  passes:                      ${JSON.stringify(runs)}`)
        console.log(`  heap bytes per service:      ${Math.round((heapAfter - heapBefore) / SERVICES)}`)
        console.log(`  manager events per second:   ${perSecond(result.received)}`)
        console.log(
          `  stored results per second:   ${perSecond(rows)} (health rows ${health?.n}, metric samples ${metrics?.n})`
        )
        return result.wallMs
      })
    )
  })

const program = Effect.gen(function* () {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-bench-manager-"))
  try {
    const baseline = yield* run("baseline: no-op passes", MaintenancePasses.layerNoop, path.join(root, "a"))
    const real = yield* run("workers: health + metrics + cleanup", Workers.layer, path.join(root, "b"))
    console.log(`\nratio workers / baseline wall time: ${(real / baseline).toFixed(1)}×`)
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
})

Effect.runPromise(program.pipe(Effect.provide(TestContext.TestContext))).catch((e) => {
  console.error(e)
  process.exit(1)
})

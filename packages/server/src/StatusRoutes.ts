/**
 * Kyozo's own liveness and readiness. `/healthz` answers while the process serves HTTP (it never
 * touches Docker or the database: a sick engine must not make Kyozo look dead). `/readyz` says
 * whether the database answers and which engine is in use, with the breaker's state.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import { EdgeRouter } from "@kyozo/core/edge/EdgeRouter"
import { ContainerManager } from "@kyozo/core/supervision/ContainerManager"
import { Duration, Effect, Layer } from "effect"

const startedAt = Date.now()

export const healthz = HttpLayerRouter.add(
  "GET",
  "/healthz",
  // Per request (uptime is live); `runtime` is fixed at start (no engine call): clients use it to say
  // when services are simulated.
  Effect.map(ContainerManager, (manager) =>
    HttpServerResponse.unsafeJson({
      status: "ok",
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      runtime: manager.runtimeMode
    })
  )
)

export const readyz = HttpLayerRouter.add(
  "GET",
  "/readyz",
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const manager = yield* ContainerManager
    const database = yield* sql`SELECT 1 AS ok`.pipe(
      Effect.timeout(Duration.seconds(2)),
      Effect.as("ok" as const),
      Effect.orElseSucceed(() => "unavailable" as const)
    )
    const breaker = yield* manager.circuitBreakerStatus
    const schedules = yield* manager.schedules
    const ready = database === "ok"
    // Which data plane serves the URLs; "inprocess" means they stop answering when Kyozo stops.
    const edge = yield* Effect.serviceOption(EdgeRouter).pipe(
      Effect.flatMap((e) => (e._tag === "Some" ? Effect.map(e.value.status, (s) => s) : Effect.succeed(null)))
    )
    return HttpServerResponse.unsafeJson(
      {
        status: ready ? "ready" : "not-ready",
        database,
        runtime: { mode: manager.runtimeMode, reason: manager.runtimeReason, breaker },
        edge,
        schedules: schedules.map((s) => ({
          pass: s.pass,
          runs: s.runs,
          failures: s.failures,
          lastFinishedAt: s.lastFinishedAt === null ? null : new Date(s.lastFinishedAt).toISOString()
        }))
      },
      { status: ready ? 200 : 503 }
    )
  })
)

export const layer = Layer.mergeAll(healthz, readyz)

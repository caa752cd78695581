/**
 * Kyozo's own liveness and readiness. `/healthz` answers while the process serves HTTP (it never
 * touches Docker or the database: a sick engine must not make Kyozo look dead). `/readyz` says
 * whether the database answers and which engine is in use, with the breaker's state.
 */
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { ContainerManager } from "@kyozo/core/ContainerManager"
import { Duration, Effect, Layer } from "effect"

const startedAt = Date.now()

export const healthz = HttpLayerRouter.add(
  "GET",
  "/healthz",
  // Computed per request (Effect.sync): a value built once would say 0 forever.
  Effect.sync(() =>
    HttpServerResponse.unsafeJson({
      status: "ok",
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000)
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
    return HttpServerResponse.unsafeJson(
      {
        status: ready ? "ready" : "not-ready",
        database,
        runtime: { mode: manager.runtimeMode, reason: manager.runtimeReason, breaker },
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

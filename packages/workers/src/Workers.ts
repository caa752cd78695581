/**
 * The maintenance passes of the ContainerManager, provided by the three workers.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { ContainerRuntime } from "@kyozo/core/ContainerRuntime"
import { MaintenancePasses } from "@kyozo/core/MaintenancePasses"
import { Effect, Layer } from "effect"
import { CleanupWorker } from "./CleanupWorker.js"
import { HealthWorker } from "./HealthWorker.js"
import { MetricsWorker } from "./MetricsWorker.js"

export const layer: Layer.Layer<MaintenancePasses, never, SqlClient.SqlClient | ContainerRuntime> =
  Layer.effect(
    MaintenancePasses,
    Effect.gen(function* () {
      const health = yield* HealthWorker
      const metrics = yield* MetricsWorker
      const cleanup = yield* CleanupWorker
      return { health: health.run, metrics: metrics.run, cleanup: cleanup.run }
    })
  ).pipe(Layer.provide([HealthWorker.Default, MetricsWorker.Default, CleanupWorker.Default]))

export const Workers = { layer } as const

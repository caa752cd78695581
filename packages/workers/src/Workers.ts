/**
 * The maintenance passes of the ContainerManager, provided by the workers. The health pass is
 * followed by the recovery pass on its results (restarts, degradation, reconcile), so the two
 * never disagree about what a pass saw.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { MaintenancePasses, type PassReport } from "@kyozo/core/supervision/MaintenancePasses"
import { Effect, Layer } from "effect"

import * as Replicas from "./deploy/Replicas.js"
import { CleanupWorker } from "./maintenance/CleanupWorker.js"
import { HealthWorker } from "./maintenance/HealthWorker.js"
import { MetricsWorker } from "./maintenance/MetricsWorker.js"
import { RecoveryWorker } from "./maintenance/RecoveryWorker.js"

/** The health report with the recovery pass's actions folded in. */
const merge = (health: PassReport, recovery: PassReport): PassReport => ({
  ...health,
  acted: health.acted + recovery.acted,
  failures: health.failures + recovery.failures,
  notes: [...health.notes, ...recovery.notes]
})

export const layer: Layer.Layer<MaintenancePasses, never, SqlClient.SqlClient | ContainerRuntime> =
  Layer.effect(
    MaintenancePasses,
    Effect.gen(function* () {
      const health = yield* HealthWorker
      const recovery = yield* RecoveryWorker
      const metrics = yield* MetricsWorker
      const cleanup = yield* CleanupWorker
      const context = yield* Effect.context<ServiceRepo | ContainerRuntime>()
      // One health pass at a time: the schedule's and the one the engine's return triggers
      // (EdgeRoutes) would otherwise overlap, and a pass that probed a container while the other's
      // recovery was restarting it would write `running` for a container about to stop.
      const onePass = yield* Effect.makeSemaphore(1)
      const healthPass = Effect.gen(function* () {
        const { report, results, services } = yield* health.pass
        const recovered = yield* recovery.run(results, services)
        // Replicas 1…n-1 of each current deployment (replica 0 is recovery's, above).
        const replicas = yield* Effect.provide(Replicas.convergeEach(services), context)
        return merge(merge(report, recovered), {
          ...report,
          acted: replicas.notes.length,
          failures: replicas.failures,
          notes: replicas.notes
        })
      }).pipe(onePass.withPermits(1))
      return { health: healthPass, metrics: metrics.run, cleanup: cleanup.run }
    })
  ).pipe(
    Layer.provide(RecoveryWorker.Default),
    Layer.provide(ServiceRepo.Default),
    Layer.provideMerge(Layer.mergeAll(HealthWorker.Default, MetricsWorker.Default, CleanupWorker.Default))
  )

export const Workers = { layer } as const

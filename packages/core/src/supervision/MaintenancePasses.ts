/**
 * The three periodic passes the ContainerManager's schedules run. Core only owns the contract; the
 * passes themselves live in @kyozo/workers (HealthWorker, MetricsWorker, CleanupWorker), which
 * provides this tag. Keeping the contract here lets data flow workers → core, never back.
 */
import { Context, Effect, Layer } from "effect"

export type PassName = "health" | "metrics" | "cleanup"

/** What one pass did; the manager keeps the last one of each schedule. */
export interface PassReport {
  readonly pass: PassName
  /** Objects looked at (services checked, containers sampled, objects considered for removal). */
  readonly examined: number
  /** Objects acted on (state changes recorded, samples stored, objects removed). */
  readonly acted: number
  /** Per-object failures that did not stop the pass. */
  readonly failures: number
  readonly notes: ReadonlyArray<string>
}

export const emptyReport = (pass: PassName, notes: ReadonlyArray<string> = []): PassReport => ({
  pass,
  examined: 0,
  acted: 0,
  failures: 0,
  notes
})

export interface MaintenancePassesShape {
  readonly health: Effect.Effect<PassReport, unknown>
  readonly metrics: Effect.Effect<PassReport, unknown>
  readonly cleanup: Effect.Effect<PassReport, unknown>
}

export class MaintenancePasses extends Context.Tag("@kyozo/core/MaintenancePasses")<
  MaintenancePasses,
  MaintenancePassesShape
>() {
  /** Passes that do nothing: for a manager started without workers (tests, tools). */
  static readonly layerNoop = Layer.succeed(MaintenancePasses, {
    health: Effect.succeed(emptyReport("health", ["no workers installed"])),
    metrics: Effect.succeed(emptyReport("metrics", ["no workers installed"])),
    cleanup: Effect.succeed(emptyReport("cleanup", ["no workers installed"]))
  })
}

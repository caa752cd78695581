/**
 * Tunables of the maintenance passes. A Context.Reference: the defaults apply unless a layer
 * provides other values (tests shorten timeouts, admins change retention).
 */
import { Context, Duration } from "effect"

export interface WorkerSettingsShape {
  /** Objects handled at once per pass, so hundreds of services don't storm the engine. */
  readonly concurrency: number
  /**
   * Stats calls in flight at once. Higher than `concurrency`: a one-shot stats call mostly waits
   * for the engine's next collection tick (about 1 s), it does not load the engine.
   */
  readonly statsConcurrency: number
  /** Deadline of one tcp/http probe. */
  readonly probeTimeout: Duration.Duration
  readonly healthRetention: Duration.Duration
  /** Retention of "1m" metric samples. */
  readonly metricsRetention: Duration.Duration
  /** Retention of "1h" roll-ups. */
  readonly hourlyMetricsRetention: Duration.Duration
}

export class WorkerSettings extends Context.Reference<WorkerSettings>()("@kyozo/workers/WorkerSettings", {
  defaultValue: (): WorkerSettingsShape => ({
    concurrency: 16,
    statsConcurrency: 64,
    probeTimeout: Duration.seconds(5),
    healthRetention: Duration.days(7),
    metricsRetention: Duration.days(30),
    hourlyMetricsRetention: Duration.days(30)
  })
}) {}

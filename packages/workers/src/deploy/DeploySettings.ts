/**
 * The deploy workflow's settings: the health gate's deadline and pace, the drain time, retention
 * of images for rollbacks, compensation retries, and the probe it judges health with.
 */
import { Duration } from "effect"

import { defaultProbe, type Probe } from "./Probes.js"

export interface DeploySettings {
  /** Longest wait for a new container to become healthy (default 60 s). */
  readonly healthTimeout: Duration.DurationInput
  readonly healthPollInterval: Duration.DurationInput
  /** A service without a port is healthy once it has been running this long. */
  readonly stableRunning: Duration.DurationInput
  /** Time the proxy gives in-flight requests to the old container. */
  readonly drainTimeout: Duration.DurationInput
  readonly stopTimeoutSeconds: number
  /** Images kept per service for rollbacks. */
  readonly keepImages: number
  /** Retries (exponential from 0.5 s) of removing a failed deploy's container before cleanup takes over. */
  readonly compensationRetries: number
  readonly probe: Probe
}

export const defaultDeploySettings: DeploySettings = {
  healthTimeout: Duration.seconds(60),
  healthPollInterval: Duration.millis(100),
  stableRunning: Duration.seconds(2),
  drainTimeout: Duration.seconds(5),
  stopTimeoutSeconds: 5,
  keepImages: 5,
  compensationRetries: 6,
  probe: defaultProbe
}

/** One resource sample of a container (a row of metric_samples); "1h" rows are roll-ups of "1m" rows. */
import { Schema } from "effect"

import { BigIntColumn, ServiceId } from "./Ids.js"

export const Resolution = Schema.Literal("1m", "1h")
export type Resolution = typeof Resolution.Type

export class MetricSample extends Schema.Class<MetricSample>("MetricSample")({
  id: BigIntColumn,
  serviceId: ServiceId,
  containerId: Schema.String,
  resolution: Resolution,
  cpuPercent: Schema.Number,
  memoryBytes: BigIntColumn,
  memoryLimitBytes: BigIntColumn,
  netRxBytes: BigIntColumn,
  netTxBytes: BigIntColumn,
  blockReadBytes: BigIntColumn,
  blockWriteBytes: BigIntColumn,
  pids: Schema.Int,
  sampledAt: Schema.DateFromSelf
}) {}

/** One health probe result (a row of health_checks). */
import { Schema } from "effect"

import { BigIntColumn, ServiceId } from "./Ids.js"

export const CheckType = Schema.Literal("http", "tcp", "exec", "docker", "state")
export type CheckType = typeof CheckType.Type

export const HealthStatus = Schema.Literal("healthy", "unhealthy", "starting", "unknown")
export type HealthStatus = typeof HealthStatus.Type

export class HealthCheck extends Schema.Class<HealthCheck>("HealthCheck")({
  id: BigIntColumn,
  serviceId: ServiceId,
  containerId: Schema.NullOr(Schema.String),
  checkType: CheckType,
  status: HealthStatus,
  latencyMs: Schema.NullOr(Schema.Int),
  detail: Schema.String,
  checkedAt: Schema.DateFromSelf
}) {}

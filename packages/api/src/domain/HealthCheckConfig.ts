/**
 * How Kyozo checks a service's health (stored in container_service_instances.health_config).
 * Every field has a default, so the column's default `{}` decodes to a usable config: "docker"
 * means "trust the container's own HEALTHCHECK, or its running state when it has none".
 */
import { Schema } from "effect"

export const HealthCheckType = Schema.Literal("http", "tcp", "exec", "docker")
export type HealthCheckType = typeof HealthCheckType.Type

export class StatusRange extends Schema.Class<StatusRange>("StatusRange")({
  min: Schema.Int.pipe(Schema.between(100, 599)),
  max: Schema.Int.pipe(Schema.between(100, 599))
}) {
  includes(status: number): boolean {
    return status >= this.min && status <= this.max
  }
}

const positiveSeconds = Schema.Number.pipe(Schema.positive())
const nonNegativeSeconds = Schema.Number.pipe(Schema.nonNegative())
const count = Schema.Int.pipe(Schema.positive())

export class HealthCheckConfig extends Schema.Class<HealthCheckConfig>("HealthCheckConfig")({
  type: Schema.optionalWith(HealthCheckType, { default: () => "docker" as const }),
  /** HTTP path, for type "http". */
  path: Schema.optionalWith(Schema.String, { default: () => "/" }),
  /** Container port to probe (http/tcp); defaults to the service's internal port. */
  port: Schema.optional(Schema.Int.pipe(Schema.between(1, 65535))),
  /** Command run inside the container, for type "exec". */
  command: Schema.optional(Schema.Array(Schema.String)),
  expectedStatus: Schema.optionalWith(StatusRange, {
    default: () => new StatusRange({ min: 200, max: 399 })
  }),
  intervalSeconds: Schema.optionalWith(positiveSeconds, { default: () => 30 }),
  timeoutSeconds: Schema.optionalWith(positiveSeconds, { default: () => 5 }),
  /** Consecutive failures before the service is marked unhealthy. */
  failureThreshold: Schema.optionalWith(count, { default: () => 3 }),
  /** Consecutive successes before an unhealthy service is healthy again. */
  successThreshold: Schema.optionalWith(count, { default: () => 1 }),
  /** Wait before the first check after a start. */
  initialDelaySeconds: Schema.optionalWith(nonNegativeSeconds, { default: () => 0 }),
  /** Grace period after a start during which failures do not count (Docker's start_period). */
  startPeriodSeconds: Schema.optionalWith(nonNegativeSeconds, { default: () => 0 })
}) {}

/** The defaults, as `{}` decodes. */
export const defaultHealthCheckConfig = (): HealthCheckConfig => new HealthCheckConfig({})

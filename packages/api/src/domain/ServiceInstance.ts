/**
 * A service: one row of container_service_instances. The row is the desired state (desiredState,
 * image, limits, env, health config) plus the last observed state the loops wrote (status,
 * containerId, restartCount).
 */
import { Schema } from "effect"

import { AutoscalePolicy } from "./AutoscalePolicy.js"
import { HealthCheckConfig } from "./HealthCheckConfig.js"
import { DeploymentId, ServiceId, TeamId } from "./Ids.js"
import { ServiceVolume } from "./ServiceVolume.js"

export const DesiredState = Schema.Literal("running", "stopped", "removed")
export type DesiredState = typeof DesiredState.Type

/**
 * `starting`: Kyozo (re)started its container and no probe has confirmed it answers yet; only a
 * successful health probe (through its port and its URL on the edge) makes it `running`.
 */
export const ServiceStatus = Schema.Literal(
  "pending",
  "deploying",
  "starting",
  "running",
  "degraded",
  "unhealthy",
  "failed",
  "stopped",
  "removed"
)
export type ServiceStatus = typeof ServiceStatus.Type

export const RestartPolicy = Schema.Literal("always", "on-failure", "never")
export type RestartPolicy = typeof RestartPolicy.Type

/** Service names are DNS- and Docker-friendly; the database enforces the same pattern. */
export const ServiceName = Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9_.-]{0,62}$/))

const Port = Schema.Int.pipe(Schema.between(1, 65535))

export class ServiceInstance extends Schema.Class<ServiceInstance>("ServiceInstance")({
  id: ServiceId,
  teamId: TeamId,
  name: ServiceName,
  kind: Schema.NullOr(Schema.String),
  framework: Schema.NullOr(Schema.String),
  image: Schema.NullOr(Schema.String),
  desiredState: DesiredState,
  status: ServiceStatus,
  containerId: Schema.NullOr(Schema.String),
  containerName: Schema.NullOr(Schema.String),
  currentDeploymentId: Schema.NullOr(DeploymentId),
  internalPort: Schema.NullOr(Port),
  hostPort: Schema.NullOr(Port),
  cpuMillis: Schema.Int,
  memoryMb: Schema.Int,
  env: Schema.Record({ key: Schema.String, value: Schema.String }),
  healthConfig: HealthCheckConfig,
  restartPolicy: RestartPolicy,
  /** Containers of the current deployment, load-balanced by the edge (column default 1). */
  replicas: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 20)), { default: () => 1 }),
  /** Declared volumes (compose named volumes), mounted by every container of the service. */
  volumes: Schema.optionalWith(Schema.Array(ServiceVolume), { default: () => [] }),
  /** Autoscaling between min and max replicas on a utilisation target; null: a fixed count. */
  autoscale: Schema.optionalWith(Schema.NullOr(AutoscalePolicy), { default: () => null }),
  restartCount: Schema.Int,
  lastRestartAt: Schema.NullOr(Schema.DateFromSelf),
  /** Where the folder came from (upload, git, path…): free-form, written by the deploy path. */
  source: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  createdAt: Schema.DateFromSelf,
  updatedAt: Schema.DateFromSelf,
  deletedAt: Schema.NullOr(Schema.DateFromSelf)
}) {}

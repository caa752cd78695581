/**
 * The deploy contract: what a client sends to deploy or roll back, what it gets back (progress,
 * summaries, service views) and the typed errors. The Deployer (workers) implements it; REST, RPC
 * and the CLI speak it.
 */
import { Schema } from "effect"

import { DeploymentId, ServiceId } from "./Ids.js"
import { RuntimeError } from "./RuntimeErrors.js"
import { DetectedService, DetectError } from "./Topology.js"

export class ServiceNotFound extends Schema.TaggedError<ServiceNotFound>()("ServiceNotFound", {
  service: Schema.String
}) {
  override get message() {
    return `No service ${this.service} in your team. List services with \`kyozo ps\`.`
  }
}

export class NothingToDeploy extends Schema.TaggedError<NothingToDeploy>()("NothingToDeploy", {
  folder: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Nothing deployable in ${this.folder}: ${this.reason}`
  }
}

export class DeployFailed extends Schema.TaggedError<DeployFailed>()("DeployFailed", {
  service: Schema.String,
  deploymentId: Schema.String,
  step: Schema.String,
  reason: Schema.String,
  /** True when the old version kept serving (the new container was removed). */
  compensated: Schema.Boolean
}) {
  override get message() {
    return `Deploy ${this.deploymentId} of ${this.service} failed at ${this.step}: ${this.reason}.${this.compensated ? " The previous version keeps serving." : ""}`
  }
}

export class NoRollbackTarget extends Schema.TaggedError<NoRollbackTarget>()("NoRollbackTarget", {
  service: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `Cannot roll back ${this.service}: ${this.detail}`
  }
}

export class InvalidSource extends Schema.TaggedError<InvalidSource>()("InvalidSource", {
  source: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Cannot deploy from ${this.source}: ${this.reason}`
  }
}

/** The deploy would take the team over one of its quotas (teams.quota_*); nothing was created. */
export class QuotaExceeded extends Schema.TaggedError<QuotaExceeded>()("QuotaExceeded", {
  quota: Schema.Literal("services", "cpu_millis", "memory_mb"),
  limit: Schema.Number,
  /** What the team would hold after the deploy. */
  requested: Schema.Number
}) {
  override get message() {
    return `Quota exceeded: ${this.quota} would be ${this.requested}, the team's limit is ${this.limit}.`
  }
}

export const DeployError = Schema.Union(
  QuotaExceeded,
  ServiceNotFound,
  NothingToDeploy,
  DeployFailed,
  NoRollbackTarget,
  InvalidSource,
  DetectError,
  RuntimeError
)
export type DeployError = typeof DeployError.Type

/** Where the folder is: already on the server (an extracted upload, or a path inside the workspaces root). */
/** Bounded like REST's: no NUL bytes (PostgreSQL refuses them), ids ≤ 128, paths ≤ 4096. */
const NoNul = (max: number) =>
  Schema.String.pipe(
    Schema.minLength(1),
    Schema.maxLength(max),
    Schema.filter((s) => !s.includes("\0") || "must not contain NUL bytes")
  )
export const DeploySource = Schema.Union(
  Schema.TaggedStruct("Upload", { uploadId: NoNul(128) }),
  Schema.TaggedStruct("Path", { path: NoNul(4096) })
)
export type DeploySource = typeof DeploySource.Type

export const DeployRequest = Schema.Struct({
  source: DeploySource,
  /** Name of the service (single-service folders) or prefix of the topology; default from detection. */
  name: Schema.optional(NoNul(100)),
  /** Replace the containers even when nothing changed (otherwise such a redeploy is `unchanged`). */
  force: Schema.optional(Schema.Boolean)
})
export type DeployRequest = typeof DeployRequest.Type

export const ServiceView = Schema.Struct({
  id: ServiceId,
  name: Schema.String,
  kind: Schema.NullOr(Schema.String),
  framework: Schema.NullOr(Schema.String),
  status: Schema.String,
  desiredState: Schema.String,
  image: Schema.NullOr(Schema.String),
  currentDeploymentId: Schema.NullOr(DeploymentId),
  /** http://127.0.0.1:<port> where the service answers, when it publishes a port. */
  url: Schema.NullOr(Schema.String),
  /** http://<service>.<team>.<KYOZO_DOMAIN>:<KYOZO_EDGE_PORT>, when the edge serves host names. */
  hostUrl: Schema.optional(Schema.NullOr(Schema.String)),
  /** https://<service>.<team>.<KYOZO_DOMAIN>:<KYOZO_EDGE_TLS_PORT>, when the edge serves HTTPS. */
  httpsUrl: Schema.optional(Schema.NullOr(Schema.String)),
  /** Custom domains the edge routes to the service (`kyozo domains add`). */
  domains: Schema.optional(Schema.Array(Schema.String)),
  /** Which edge serves `url`: "inprocess" stops answering while Kyozo is down. */
  edge: Schema.optional(Schema.Literal("caddy", "inprocess")),
  replicas: Schema.optional(Schema.Number),
  containerId: Schema.NullOr(Schema.String),
  restartCount: Schema.Number,
  updatedAt: Schema.String,
  /** What the caller may do on the service (team role raised by grants), where a read reports it. */
  can: Schema.optional(
    Schema.Struct({ deploy: Schema.Boolean, manage: Schema.Boolean, admin: Schema.Boolean })
  )
})
export type ServiceView = typeof ServiceView.Type

export const DeploymentSummary = Schema.Struct({
  deploymentId: DeploymentId,
  serviceId: ServiceId,
  serviceName: Schema.String,
  status: Schema.String,
  image: Schema.NullOr(Schema.String),
  /** False when an image with the same context hash existed: nothing was built. */
  built: Schema.Boolean,
  url: Schema.NullOr(Schema.String),
  durationMs: Schema.Number
})
export type DeploymentSummary = typeof DeploymentSummary.Type

export const DeployProgress = Schema.Union(
  Schema.TaggedStruct("Detected", { services: Schema.Array(DetectedService) }),
  Schema.TaggedStruct("BuildLog", { service: Schema.String, line: Schema.String }),
  Schema.TaggedStruct("Step", {
    service: Schema.String,
    deploymentId: Schema.String,
    step: Schema.String,
    message: Schema.String
  }),
  Schema.TaggedStruct("Deployed", { deployment: DeploymentSummary })
)
export type DeployProgress = typeof DeployProgress.Type

export const RollbackRequest = Schema.Struct({
  service: Schema.String,
  /** A deployment id or an image reference of this service; default: the previous retained image. */
  to: Schema.optional(Schema.String)
})

/** What deleting a service did with its data volumes (Docker volume names). */
export const RemovedVolumes = Schema.Struct({
  removed: Schema.Array(Schema.String),
  kept: Schema.Array(Schema.String)
})
export type RemovedVolumes = typeof RemovedVolumes.Type

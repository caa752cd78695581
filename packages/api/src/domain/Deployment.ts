/** One attempt to (re)deploy a service; the workflow advances `status` step by step. */
import { Schema } from "effect"

import { DeploymentId, ServiceId, TeamId } from "./Ids.js"

export const DeploymentStatus = Schema.Literal(
  "pending",
  "building",
  "starting",
  "health-check",
  "switching",
  "succeeded",
  "failed",
  "compensated",
  "superseded",
  /** A redeploy whose desired spec equals what runs: nothing was created, the running one serves on. */
  "unchanged"
)
export type DeploymentStatus = typeof DeploymentStatus.Type

/** Statuses after which a deployment never changes again. */
export const isFinalDeploymentStatus = (status: DeploymentStatus): boolean =>
  status === "succeeded" ||
  status === "failed" ||
  status === "compensated" ||
  status === "superseded" ||
  status === "unchanged"

export class Deployment extends Schema.Class<Deployment>("Deployment")({
  id: DeploymentId,
  serviceId: ServiceId,
  teamId: TeamId,
  status: DeploymentStatus,
  image: Schema.NullOr(Schema.String),
  contextHash: Schema.NullOr(Schema.String),
  containerId: Schema.NullOr(Schema.String),
  containerName: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String),
  createdAt: Schema.DateFromSelf,
  finishedAt: Schema.NullOr(Schema.DateFromSelf)
}) {}

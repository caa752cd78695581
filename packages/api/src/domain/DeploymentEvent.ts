/** An append-only event; its id is the SSE Last-Event-ID. */
import { Schema } from "effect"

import { BigIntColumn, DeploymentId, ServiceId, TeamId } from "./Ids.js"

export class DeploymentEvent extends Schema.Class<DeploymentEvent>("DeploymentEvent")({
  id: BigIntColumn,
  teamId: TeamId,
  serviceId: Schema.NullOr(ServiceId),
  deploymentId: Schema.NullOr(DeploymentId),
  type: Schema.String,
  message: Schema.String,
  data: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  createdAt: Schema.DateFromSelf
}) {}

/** The result of detecting what a folder contains (services, frameworks, backing services). */
import { Schema } from "effect"

import { DetectionId, ServiceId, TeamId } from "./Ids.js"

export class TopologyDetection extends Schema.Class<TopologyDetection>("TopologyDetection")({
  id: DetectionId,
  teamId: TeamId,
  serviceId: Schema.NullOr(ServiceId),
  rootPath: Schema.String,
  /** The detector's output as JSON; its shape belongs to the detector. */
  result: Schema.Unknown,
  detectedAt: Schema.DateFromSelf
}) {}

/**
 * The application services every front door (REST, RPC, GraphQL) calls, as one layer over the
 * server's core (repositories, Deployer, ContainerManager, KeySessions). Layers are memoized by
 * reference, so front doors built in one program share one instance of each.
 */
import { Layer } from "effect"

import { Policy } from "../Policy.js"
import { Alerts } from "./Alerts.js"
import { ApiKeys } from "./ApiKeys.js"
import { Deployments } from "./Deployments.js"
import { Detections } from "./Detections.js"
import { Domains } from "./Domains.js"
import { Insights } from "./Insights.js"
import { Members } from "./Members.js"
import { Permissions } from "./Permissions.js"
import { RuntimeStatus } from "./RuntimeStatus.js"
import { Services } from "./Services.js"
import { Sources } from "./Sources.js"
import { Teams } from "./Teams.js"
import { Webhooks } from "./Webhooks.js"

export const layer = Layer.mergeAll(
  Policy.Default,
  Teams.Default,
  Members.Default,
  ApiKeys.Default,
  Services.Default,
  Sources.Default,
  Deployments.Default,
  Detections.Default,
  Webhooks.Default,
  Alerts.Default,
  Permissions.Default,
  Insights.Default,
  RuntimeStatus.Default,
  Domains.Default
)

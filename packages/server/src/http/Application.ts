/**
 * The application services every front door (REST, RPC, GraphQL) calls, as one layer over the
 * server's core (repositories, Deployer, ContainerManager, KeySessions). Layers are memoized by
 * reference, so front doors built in one program share one instance of each.
 */
import { Layer } from "effect"
import { Alerts } from "../application/Alerts.js"
import { ApiKeys } from "../application/ApiKeys.js"
import { Deployments } from "../application/Deployments.js"
import { Detections } from "../application/Detections.js"
import { Insights } from "../application/Insights.js"
import { Members } from "../application/Members.js"
import { Permissions } from "../application/Permissions.js"
import { RuntimeStatus } from "../application/RuntimeStatus.js"
import { Services } from "../application/Services.js"
import { Sources } from "../application/Sources.js"
import { Teams } from "../application/Teams.js"
import { Webhooks } from "../application/Webhooks.js"
import { Policy } from "../Policy.js"

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
  RuntimeStatus.Default
)

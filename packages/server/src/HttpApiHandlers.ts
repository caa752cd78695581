/**
 * The server side of `KyozoHttpApi` (REST under /v1), assembled from one module per HttpApi group
 * under `http/`. Every handler is an adapter: it decodes, calls an application service (which reads
 * the caller from `CurrentPrincipal`, applies the policy and scopes data to the team), and encodes
 * (`http/Documents`, `http/Errors`). An id of another team answers 404 exactly like an id that does
 * not exist, and error texts never echo ids or names.
 */
import { Layer } from "effect"

import * as ApplicationLive from "./application/ApplicationLive.js"
import * as AlertsHandlers from "./http/AlertsHandlers.js"
import * as ApiKeysHandlers from "./http/ApiKeysHandlers.js"
import * as Authorization from "./http/Authorization.js"
import * as DeploymentsHandlers from "./http/DeploymentsHandlers.js"
import * as DetectionsHandlers from "./http/DetectionsHandlers.js"
import * as DomainsHandlers from "./http/DomainsHandlers.js"
import * as HealthHandlers from "./http/HealthHandlers.js"
import * as InvitationsHandlers from "./http/InvitationsHandlers.js"
import * as MembersHandlers from "./http/MembersHandlers.js"
import * as MetricsHandlers from "./http/MetricsHandlers.js"
import * as PermissionsHandlers from "./http/PermissionsHandlers.js"
import * as RecommendationsHandlers from "./http/RecommendationsHandlers.js"
import * as RuntimeHandlers from "./http/RuntimeHandlers.js"
import * as ServicesHandlers from "./http/ServicesHandlers.js"
import * as TeamsHandlers from "./http/TeamsHandlers.js"
import * as WebhooksHandlers from "./http/WebhooksHandlers.js"

/** The bearer middleware of the REST API. */
export const AuthorizationLive = Authorization.layer

/** Every group's handlers, over the application services. */
export const layer = Layer.mergeAll(
  TeamsHandlers.layer,
  MembersHandlers.layer,
  InvitationsHandlers.layer,
  ApiKeysHandlers.layer,
  ServicesHandlers.layer,
  DeploymentsHandlers.layer,
  DetectionsHandlers.layer,
  HealthHandlers.layer,
  MetricsHandlers.layer,
  RecommendationsHandlers.layer,
  PermissionsHandlers.layer,
  WebhooksHandlers.layer,
  AlertsHandlers.layer,
  RuntimeHandlers.layer,
  DomainsHandlers.layer
).pipe(Layer.provide(ApplicationLive.layer))

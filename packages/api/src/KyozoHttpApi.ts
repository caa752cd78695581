/**
 * The REST contract of Kyozo under `/v1`: JSON:API documents (`application/vnd.api+json`) described
 * with `@effect/platform` HttpApi, so `/openapi.json` is generated from it and clients can derive a
 * typed HttpApiClient. It imports nothing from the server.
 *
 * Request bodies are JSON:API documents too: `{ "data": { "type": "services", "attributes": {…} } }`,
 * so a decode failure points at `/data/attributes/<field>`.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"

import { AlertComparator, AlertMetric } from "./domain/Alert.js"
import { AutoscalePolicy } from "./domain/AutoscalePolicy.js"
import { BreakerStatus } from "./domain/Breaker.js"
import { HealthCheckConfig } from "./domain/HealthCheckConfig.js"
import { Role } from "./domain/Membership.js"
import { HostnameInput } from "./domain/ServiceDomain.js"
import { RestartPolicy } from "./domain/ServiceInstance.js"
import { Permission } from "./domain/ServicePermission.js"
import { parseTargetUrl } from "./domain/TargetUrl.js"
import { ApiKeyName, CurrentPrincipal, KeyExpirySeconds, ScheduleView, TeamQuotas } from "./KyozoRpc.js"

export const JSON_API = "application/vnd.api+json"

const jsonApi = <S extends Schema.Schema.Any>(schema: S, status?: number): S =>
  schema.pipe(HttpApiSchema.withEncoding({ kind: "Json", contentType: JSON_API }), (s) =>
    status === undefined ? s : s.annotations(HttpApiSchema.annotations({ status }))
  ) as S

// ---------------------------------------------------------------------------------------------
// Errors: one class per status, each a JSON:API `errors` document (no `_tag` on the wire).

export const ErrorObject = Schema.Struct({
  status: Schema.String,
  code: Schema.String,
  title: Schema.String,
  detail: Schema.String,
  source: Schema.optional(
    Schema.Struct({ pointer: Schema.optional(Schema.String), parameter: Schema.optional(Schema.String) })
  ),
  meta: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})
export type ErrorObject = typeof ErrorObject.Type

/**
 * Each status class pins its `status` literal: HttpApi picks the response schema of a failure
 * structurally, so classes with identical fields would all answer with the first one's status.
 */
const errorFields = <const S extends string>(status: S) => ({
  errors: Schema.NonEmptyArray(Schema.Struct({ ...ErrorObject.fields, status: Schema.Literal(status) }))
})
const errorAnnotations = (status: number, description: string) =>
  ({
    ...HttpApiSchema.annotations({ status, description }),
    [HttpApiSchema.AnnotationEncoding]: { kind: "Json", contentType: JSON_API }
  }) as {}

export class BadRequest extends Schema.Class<BadRequest>("BadRequest")(
  errorFields("400"),
  errorAnnotations(400, "A parameter or the body does not match the schema")
) {}
export class Unauthenticated extends Schema.Class<Unauthenticated>("Unauthenticated")(
  errorFields("401"),
  errorAnnotations(401, "Missing, invalid, revoked or expired API key")
) {}
export class Denied extends Schema.Class<Denied>("Denied")(
  errorFields("403"),
  errorAnnotations(403, "The caller's role or grants do not allow this")
) {}
export class NotFound extends Schema.Class<NotFound>("NotFound")(
  errorFields("404"),
  errorAnnotations(404, "No such object in the caller's team")
) {}
export class Conflict extends Schema.Class<Conflict>("Conflict")(
  errorFields("409"),
  errorAnnotations(409, "The request conflicts with the current state")
) {}
export class Unprocessable extends Schema.Class<Unprocessable>("Unprocessable")(
  errorFields("422"),
  errorAnnotations(422, "Well-formed, but it cannot be carried out")
) {}
export class TooManyRequests extends Schema.Class<TooManyRequests>("TooManyRequests")(
  errorFields("429"),
  errorAnnotations(429, "Rate limit of the API key exceeded (see Retry-After)")
) {}
export class Unavailable extends Schema.Class<Unavailable>("Unavailable")(
  errorFields("503"),
  errorAnnotations(503, "The container engine is unavailable")
) {}

export type ApiError =
  BadRequest | Unauthenticated | Denied | NotFound | Conflict | Unprocessable | Unavailable

/** One JSON:API error document. */
// Each class pins its own status literal, so its props type is not known here; the caller passes
// the status that matches the class.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const apiError = <C extends new (props: any) => ApiError>(
  Class: C,
  status: number,
  code: string,
  title: string,
  detail: string,
  source?: ErrorObject["source"]
): InstanceType<C> =>
  new Class({
    errors: [{ status: String(status), code, title, detail, ...(source ? { source } : {}) }]
  }) as InstanceType<C>

// ---------------------------------------------------------------------------------------------
// Documents

export const Links = Schema.Struct({
  self: Schema.String,
  next: Schema.optional(Schema.NullOr(Schema.String))
})

export const RelationshipRef = Schema.Struct({
  data: Schema.NullOr(Schema.Struct({ type: Schema.String, id: Schema.String }))
})
export const Relationships = Schema.Record({ key: Schema.String, value: RelationshipRef })

const resource = <const T extends string, F extends Schema.Struct.Fields>(type: T, attributes: F) =>
  Schema.Struct({
    type: Schema.Literal(type),
    id: Schema.String,
    attributes: Schema.Struct(attributes),
    relationships: Schema.optional(Relationships)
  }).annotations({ identifier: `${type}-resource` })

/** A single-resource document. */
const single = <S extends Schema.Schema.Any>(r: S, status?: number) =>
  jsonApi(
    Schema.Struct({ data: r, links: Schema.optional(Links), meta: Schema.optional(Schema.Unknown) }),
    status
  )
/** A collection document: `links.next` is null on the last page. */
const collection = <S extends Schema.Schema.Any>(r: S) =>
  jsonApi(Schema.Struct({ data: Schema.Array(r), links: Links }))

/** A request body: `{ data: { type, attributes } }`. */
const body = <const T extends string, F extends Schema.Struct.Fields>(type: T, attributes: F) =>
  Schema.Struct({
    data: Schema.Struct({ type: Schema.Literal(type), attributes: Schema.Struct(attributes) })
  })

const NoContent = HttpApiSchema.NoContent
const DateString = Schema.String

export const TeamResource = resource("teams", {
  name: Schema.String,
  quotaServices: Schema.Number,
  quotaCpuMillis: Schema.Number,
  quotaMemoryMb: Schema.Number,
  createdAt: DateString
})
export const MemberResource = resource("members", {
  email: Schema.String,
  name: Schema.String,
  role: Role,
  createdAt: DateString,
  /** `pending`: invited (an existing account), joins on accepting; changing the role re-invites, DELETE withdraws. */
  state: Schema.Literal("active", "pending")
})
/** An invitation to a team: the invited sees the team's name; the inviting team only email and role. */
export const InvitationResource = resource("invitations", {
  email: Schema.optional(Schema.String),
  teamName: Schema.optional(Schema.String),
  role: Role,
  createdAt: DateString
})
export const ApiKeyResource = resource("api-keys", {
  name: Schema.String,
  prefix: Schema.String,
  userId: Schema.String,
  createdAt: DateString,
  expiresAt: Schema.NullOr(DateString),
  revokedAt: Schema.NullOr(DateString),
  lastUsedAt: Schema.NullOr(DateString),
  /** The key in clear: present only in the answer that issued it. */
  key: Schema.optional(Schema.String)
})
export const ServiceResource = resource("services", {
  name: Schema.String,
  kind: Schema.NullOr(Schema.String),
  framework: Schema.NullOr(Schema.String),
  status: Schema.String,
  desiredState: Schema.String,
  image: Schema.NullOr(Schema.String),
  url: Schema.NullOr(Schema.String),
  /** http://<service>.<team>.<KYOZO_DOMAIN>:<KYOZO_EDGE_PORT>, when the edge serves host names. */
  hostUrl: Schema.optional(Schema.NullOr(Schema.String)),
  /** https://<service>.<team>.<KYOZO_DOMAIN>:<KYOZO_EDGE_TLS_PORT>, when the edge serves HTTPS. */
  httpsUrl: Schema.optional(Schema.NullOr(Schema.String)),
  /** Custom domains the edge routes to the service (GET /v1/services/{id}/domains for details). */
  domains: Schema.optional(Schema.Array(Schema.String)),
  cpuMillis: Schema.Number,
  memoryMb: Schema.Number,
  /** Names only: values may be secrets. */
  envKeys: Schema.Array(Schema.String),
  healthConfig: Schema.encodedSchema(HealthCheckConfig),
  restartPolicy: RestartPolicy,
  restartCount: Schema.Number,
  /** Containers serving the service behind the edge. */
  replicas: Schema.optional(Schema.Number),
  /** Autoscaling between min and max replicas on a utilisation target; null when the count is fixed. */
  autoscale: Schema.optional(Schema.NullOr(AutoscalePolicy)),
  /** Data volumes mounted by every container (kept across redeploys; removed only when asked). */
  volumes: Schema.optional(Schema.Array(Schema.Struct({ name: Schema.String, target: Schema.String }))),
  createdAt: DateString,
  updatedAt: DateString
})

/**
 * `PATCH /v1/services/{id}`'s answer: a change of env, limits or health check rolls out to what
 * runs; `meta.rollout` names the deployment doing it (absent when nothing had to roll out).
 */
export const ServiceUpdated = jsonApi(
  Schema.Struct({
    data: ServiceResource,
    meta: Schema.optional(
      Schema.Struct({
        rollout: Schema.Struct({
          deploymentId: Schema.String,
          href: Schema.String.annotations({ description: "the deployment: GET it to follow the rollout" })
        })
      })
    )
  }).annotations({ identifier: "service-updated-document" })
)

/** The service list document (`GET /v1/services`): the server encodes cached pages with it. */
export const ServiceCollection = collection(ServiceResource)
export const DeploymentResource = resource("deployments", {
  status: Schema.String,
  image: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String),
  createdAt: DateString,
  finishedAt: Schema.NullOr(DateString)
})
export const LogLineResource = resource("log-lines", {
  stream: Schema.Literal("stdout", "stderr"),
  timestamp: Schema.NullOr(Schema.Number),
  line: Schema.String
})
export const DetectionResource = resource("detections", {
  rootPath: Schema.String,
  result: Schema.Unknown,
  detectedAt: DateString
})
export const HealthCheckResource = resource("health-checks", {
  checkType: Schema.String,
  status: Schema.String,
  latencyMs: Schema.NullOr(Schema.Number),
  detail: Schema.String,
  checkedAt: DateString
})
export const MetricSampleResource = resource("metric-samples", {
  resolution: Schema.String,
  cpuPercent: Schema.Number,
  memoryBytes: Schema.Number,
  memoryLimitBytes: Schema.Number,
  netRxBytes: Schema.Number,
  netTxBytes: Schema.Number,
  pids: Schema.Number,
  sampledAt: DateString
})
export const PermissionResource = resource("service-permissions", {
  userId: Schema.String,
  permission: Permission,
  grantedBy: Schema.NullOr(Schema.String),
  createdAt: DateString
})
export const WebhookResource = resource("webhooks", {
  url: Schema.String,
  eventTypes: Schema.Array(Schema.String),
  enabled: Schema.Boolean,
  createdAt: DateString,
  /** The signing secret: present only in the answer that created the webhook. */
  secret: Schema.optional(Schema.String)
})
export const WebhookDeliveryResource = resource("webhook-deliveries", {
  eventId: Schema.Number,
  attempt: Schema.Number,
  outcome: Schema.Literal("delivered", "failed", "abandoned"),
  responseStatus: Schema.NullOr(Schema.Number),
  error: Schema.String,
  durationMs: Schema.NullOr(Schema.Number),
  attemptedAt: DateString
})
export const AlertRuleResource = resource("alert-rules", {
  /** Null: the rule applies to every service of the team. */
  serviceId: Schema.NullOr(Schema.String),
  metric: AlertMetric,
  comparator: AlertComparator,
  threshold: Schema.Number,
  durationSeconds: Schema.Number,
  enabled: Schema.Boolean,
  createdAt: DateString
})
export const RecommendationResource = resource("recommendations", {
  window: Schema.Literal("day", "week"),
  /** How many samples the percentiles were taken over (0: no data yet, the floors apply). */
  samples: Schema.Number,
  p95CpuPercent: Schema.Number,
  p95MemoryBytes: Schema.Number,
  cpuMillis: Schema.Number,
  memoryMb: Schema.Number,
  monthlyCost: Schema.Number,
  currentCpuMillis: Schema.Number,
  currentMemoryMb: Schema.Number,
  currentMonthlyCost: Schema.Number,
  prices: Schema.Struct({ vcpuHour: Schema.Number, gbHour: Schema.Number })
})
/** The edge router that serves the services' URLs (the data plane). */
export const EdgeView = Schema.Struct({
  kind: Schema.Literal("caddy", "inprocess"),
  reason: Schema.String,
  /** False for the in-process fallback: the URLs stop answering while Kyozo is down. */
  survivesRestart: Schema.Boolean,
  sharedPort: Schema.NullOr(Schema.Int),
  /** The HTTPS port of host names and custom domains (KYOZO_EDGE_TLS_PORT), null when off. */
  tlsPort: Schema.optional(Schema.NullOr(Schema.Int)),
  domain: Schema.String,
  routes: Schema.Int,
  lastError: Schema.NullOr(Schema.String)
})
export const RuntimeResource = resource("runtime-status", {
  mode: Schema.Literal("docker", "mock"),
  reason: Schema.String,
  circuit_breaker_status: BreakerStatus,
  /** Null when the server runs without an edge router (never in `pnpm start`). */
  edge: Schema.NullOr(EdgeView),
  schedules: Schema.Array(ScheduleView)
})

// ---------------------------------------------------------------------------------------------
// Parameters

/** Ids in paths are bounded so a huge path segment is a 400, not a slow query. */
const Id = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128))
const ServiceParam = HttpApiSchema.param("serviceId", Id)

export const PageSize = Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 100))
export const PageParams = Schema.Struct({
  "page[size]": Schema.optional(PageSize),
  "page[after]": Schema.optional(Id)
})

export const EnvVars = Schema.Record({
  key: Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/)),
  value: Schema.String.pipe(Schema.maxLength(32_768))
})

// ---------------------------------------------------------------------------------------------
// Security

/** `authorization: Bearer kz_…` on every endpoint; provides the caller. */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("@kyozo/api/HttpAuthorization", {
  provides: CurrentPrincipal,
  failure: Schema.Union(Unauthenticated, TooManyRequests),
  security: { bearer: HttpApiSecurity.bearer }
}) {}

// ---------------------------------------------------------------------------------------------
// Groups

export class TeamsApi extends HttpApiGroup.make("teams")
  .add(HttpApiEndpoint.get("currentTeam", "/teams/current").addSuccess(single(TeamResource)))
  .add(
    HttpApiEndpoint.get("getTeam")`/teams/${HttpApiSchema.param("teamId", Id)}`.addSuccess(
      single(TeamResource)
    )
  )
  .add(
    HttpApiEndpoint.post("createTeam", "/teams")
      .setPayload(
        body("teams", { name: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}$/)) })
      )
      .addSuccess(single(TeamResource, 201))
  )
  .add(
    /** Quotas: instance admins only (403 on one's own team, 404 on another's). */
    HttpApiEndpoint.patch("updateTeam")`/teams/${HttpApiSchema.param("teamId", Id)}`
      .setPayload(body("teams", TeamQuotas.fields))
      .addSuccess(single(TeamResource))
  )
  .addError(NotFound)
  .addError(Denied)
  .addError(Conflict)
  .middleware(Authorization) {}

export class MembersApi extends HttpApiGroup.make("members")
  .add(HttpApiEndpoint.get("listMembers", "/members").addSuccess(collection(MemberResource)))
  .add(
    HttpApiEndpoint.post("addMember", "/members")
      .setPayload(
        body("members", {
          email: Schema.String.pipe(Schema.pattern(/^[^\s@]{1,64}@[^\s@]{1,190}$/)),
          name: Schema.optional(Schema.String.pipe(Schema.maxLength(200))),
          role: Role
        })
      )
      /**
       * Always an invitation, whether the e-mail has an account or not (nothing about other teams'
       * users shows): a new person is a member at once; one with an account joins on accepting.
       */
      .addSuccess(single(InvitationResource, 202))
  )
  .add(
    HttpApiEndpoint.patch("changeRole")`/members/${HttpApiSchema.param("userId", Id)}`
      .setPayload(body("members", { role: Role }))
      .addSuccess(single(MemberResource))
  )
  .add(
    HttpApiEndpoint.del("removeMember")`/members/${HttpApiSchema.param("userId", Id)}`.addSuccess(NoContent)
  )
  .addError(NotFound)
  .addError(Denied)
  .addError(Conflict)
  .middleware(Authorization) {}

export class InvitationsApi extends HttpApiGroup.make("invitations")
  .add(HttpApiEndpoint.get("listInvitations", "/invitations").addSuccess(collection(InvitationResource)))
  .add(
    /** Joins the team; the answer carries a key for it (shown once) in `meta.key`. */
    HttpApiEndpoint.post(
      "acceptInvitation"
    )`/invitations/${HttpApiSchema.param("invitationId", Id)}/accept`.addSuccess(single(MemberResource, 201))
  )
  .addError(NotFound)
  .middleware(Authorization) {}

export class ApiKeysApi extends HttpApiGroup.make("apiKeys")
  .add(HttpApiEndpoint.get("listApiKeys", "/api-keys").addSuccess(collection(ApiKeyResource)))
  .add(
    HttpApiEndpoint.post("issueApiKey", "/api-keys")
      .setPayload(
        body("api-keys", {
          name: Schema.optional(ApiKeyName),
          expiresInSeconds: Schema.optional(KeyExpirySeconds),
          /** For another member of the team (admin or owner); default: the caller. */
          userId: Schema.optional(Id)
        })
      )
      .addSuccess(single(ApiKeyResource, 201))
  )
  .add(
    HttpApiEndpoint.del("revokeApiKey")`/api-keys/${HttpApiSchema.param("keyId", Id)}`.addSuccess(NoContent)
  )
  .addError(NotFound)
  .addError(Denied)
  .middleware(Authorization) {}

export const SourceAttribute = Schema.Union(
  Schema.Struct({ uploadId: Id }),
  Schema.Struct({ path: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096)) })
)

export class ServicesApi extends HttpApiGroup.make("services")
  .add(
    HttpApiEndpoint.get("listServices", "/services").setUrlParams(PageParams).addSuccess(ServiceCollection)
  )
  .add(
    HttpApiEndpoint.post("createService", "/services")
      .setPayload(
        body("services", {
          source: SourceAttribute,
          name: Schema.optional(Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9_.-]{0,62}$/))),
          force: Schema.optional(Schema.Boolean)
        })
      )
      .addSuccess(collection(DeploymentResource).annotations(HttpApiSchema.annotations({ status: 202 })))
  )
  .add(HttpApiEndpoint.get("getService")`/services/${ServiceParam}`.addSuccess(single(ServiceResource)))
  .add(
    HttpApiEndpoint.patch("updateService")`/services/${ServiceParam}`
      .setPayload(
        body("services", {
          cpuMillis: Schema.optional(Schema.Int.pipe(Schema.between(10, 64_000))),
          memoryMb: Schema.optional(Schema.Int.pipe(Schema.between(6, 1_048_576))),
          env: Schema.optional(EnvVars),
          healthConfig: Schema.optional(HealthCheckConfig),
          restartPolicy: Schema.optional(RestartPolicy),
          replicas: Schema.optional(Schema.Int.pipe(Schema.between(1, 20))),
          autoscale: Schema.optional(Schema.NullOr(AutoscalePolicy))
        })
      )
      .addSuccess(ServiceUpdated)
  )
  .add(
    HttpApiEndpoint.del("deleteService")`/services/${ServiceParam}`
      // Data volumes are kept unless `volumes=true`; the service.removed event says which went.
      .setUrlParams(Schema.Struct({ volumes: Schema.optional(Schema.Literal("true", "false")) }))
      .addSuccess(NoContent)
  )
  .addError(NotFound)
  .addError(Denied)
  .addError(Conflict)
  .addError(Unprocessable)
  .addError(Unavailable)
  .middleware(Authorization) {}

export class DeploymentsApi extends HttpApiGroup.make("deployments")
  .add(
    HttpApiEndpoint.get("listDeployments", "/deployments")
      .setUrlParams(
        Schema.Struct({ "page[size]": Schema.optional(PageSize), "filter[service]": Schema.optional(Id) })
      )
      .addSuccess(collection(DeploymentResource))
  )
  .add(
    HttpApiEndpoint.get("getDeployment")`/deployments/${HttpApiSchema.param("deploymentId", Id)}`.addSuccess(
      single(DeploymentResource)
    )
  )
  .add(
    HttpApiEndpoint.post("startDeployment")`/services/${ServiceParam}/deployments`.addSuccess(
      collection(DeploymentResource).annotations(HttpApiSchema.annotations({ status: 202 }))
    )
  )
  .add(
    HttpApiEndpoint.get("serviceLogs")`/services/${ServiceParam}/logs`
      .setUrlParams(
        Schema.Struct({
          tail: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 10_000)))
        })
      )
      .addSuccess(collection(LogLineResource))
  )
  .add(
    HttpApiEndpoint.post("rollback")`/services/${ServiceParam}/rollback`
      .setPayload(body("rollbacks", { to: Schema.optional(Id) }))
      .addSuccess(single(DeploymentResource))
  )
  .addError(NotFound)
  .addError(Denied)
  .addError(Conflict)
  .addError(Unprocessable)
  .addError(Unavailable)
  .middleware(Authorization) {}

export class DetectionsApi extends HttpApiGroup.make("detections")
  .add(
    HttpApiEndpoint.get("listDetections", "/detections")
      .setUrlParams(
        Schema.Struct({ "page[size]": Schema.optional(PageSize), "filter[service]": Schema.optional(Id) })
      )
      .addSuccess(collection(DetectionResource))
  )
  .add(
    HttpApiEndpoint.get("getDetection")`/detections/${HttpApiSchema.param("detectionId", Id)}`.addSuccess(
      single(DetectionResource)
    )
  )
  .addError(NotFound)
  .addError(Denied)
  .middleware(Authorization) {}

export class HealthApi extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("healthHistory")`/services/${ServiceParam}/health`
      .setUrlParams(Schema.Struct({ "page[size]": Schema.optional(PageSize) }))
      .addSuccess(collection(HealthCheckResource))
  )
  .addError(NotFound)
  .addError(Denied)
  .middleware(Authorization) {}

export const MetricsWindow = Schema.Literal("hour", "day", "week")
export class MetricsApi extends HttpApiGroup.make("metrics")
  .add(
    HttpApiEndpoint.get("serviceMetrics")`/services/${ServiceParam}/metrics`
      .setUrlParams(Schema.Struct({ window: Schema.optional(MetricsWindow) }))
      .addSuccess(collection(MetricSampleResource))
  )
  .addError(NotFound)
  .addError(Denied)
  .middleware(Authorization) {}

export const RecommendationWindow = Schema.Literal("day", "week")
export class RecommendationsApi extends HttpApiGroup.make("recommendations")
  .add(
    HttpApiEndpoint.get("serviceRecommendations")`/services/${ServiceParam}/recommendations`
      .setUrlParams(Schema.Struct({ window: Schema.optional(RecommendationWindow) }))
      .addSuccess(single(RecommendationResource))
  )
  .addError(NotFound)
  .addError(Denied)
  .middleware(Authorization) {}

/**
 * The one webhook URL rule (`parseTargetUrl`): absolute http(s), a host, no credentials; decoded to
 * its normalized form, which is what is stored. Where it may point is checked by the server.
 */
export const WebhookUrl = Schema.transform(
  Schema.String.pipe(
    Schema.maxLength(2048),
    Schema.filter((s) => {
      const u = parseTargetUrl(s)
      return u instanceof URL ? true : u.message
    })
  ),
  Schema.String,
  {
    strict: true,
    decode: (s) => {
      const u = parseTargetUrl(s)
      return u instanceof URL ? u.href : s
    },
    encode: (s) => s
  }
)
/** Event types or "prefix.*" patterns; an empty list means every event. */
export const WebhookEventFilter = Schema.Array(
  Schema.String.pipe(Schema.pattern(/^(\*|[a-z][a-z0-9_.-]{0,99}(\.\*)?)$/))
).pipe(Schema.maxItems(50))

const WebhookParam = HttpApiSchema.param("webhookId", Id)
export class WebhooksApi extends HttpApiGroup.make("webhooks")
  .add(HttpApiEndpoint.get("listWebhooks", "/webhooks").addSuccess(collection(WebhookResource)))
  .add(
    HttpApiEndpoint.post("createWebhook", "/webhooks")
      .setPayload(
        body("webhooks", {
          url: WebhookUrl,
          /** Generated when absent; either way shown once, in the answer. */
          secret: Schema.optional(Schema.String.pipe(Schema.minLength(16), Schema.maxLength(256))),
          eventTypes: Schema.optional(WebhookEventFilter)
        })
      )
      .addSuccess(single(WebhookResource, 201))
      .addError(Unprocessable)
  )
  .add(HttpApiEndpoint.get("getWebhook")`/webhooks/${WebhookParam}`.addSuccess(single(WebhookResource)))
  .add(HttpApiEndpoint.del("deleteWebhook")`/webhooks/${WebhookParam}`.addSuccess(NoContent))
  .add(
    HttpApiEndpoint.get("listWebhookDeliveries")`/webhooks/${WebhookParam}/deliveries`
      .setUrlParams(Schema.Struct({ "page[size]": Schema.optional(PageSize) }))
      .addSuccess(collection(WebhookDeliveryResource))
  )
  .addError(NotFound)
  .addError(Denied)
  .middleware(Authorization) {}

/** How long the condition must hold before the alert fires: up to a day. */
const AlertDuration = Schema.Int.pipe(Schema.between(0, 86_400))
const AlertThreshold = Schema.Number.pipe(Schema.finite())
const AlertRuleParam = HttpApiSchema.param("alertRuleId", Id)
export class AlertsApi extends HttpApiGroup.make("alerts")
  .add(HttpApiEndpoint.get("listAlertRules", "/alert-rules").addSuccess(collection(AlertRuleResource)))
  .add(
    HttpApiEndpoint.post("createAlertRule", "/alert-rules")
      .setPayload(
        body("alert-rules", {
          metric: AlertMetric,
          comparator: AlertComparator,
          threshold: AlertThreshold,
          /** Default 300 (5 minutes). */
          durationSeconds: Schema.optional(AlertDuration),
          /** A service of the caller's team; absent: every service of the team. */
          serviceId: Schema.optional(Id),
          enabled: Schema.optional(Schema.Boolean)
        })
      )
      .addSuccess(single(AlertRuleResource, 201))
  )
  .add(
    HttpApiEndpoint.get("getAlertRule")`/alert-rules/${AlertRuleParam}`.addSuccess(single(AlertRuleResource))
  )
  .add(
    HttpApiEndpoint.patch("updateAlertRule")`/alert-rules/${AlertRuleParam}`
      .setPayload(
        body("alert-rules", {
          comparator: Schema.optional(AlertComparator),
          threshold: Schema.optional(AlertThreshold),
          durationSeconds: Schema.optional(AlertDuration),
          enabled: Schema.optional(Schema.Boolean)
        })
      )
      .addSuccess(single(AlertRuleResource))
  )
  .add(HttpApiEndpoint.del("deleteAlertRule")`/alert-rules/${AlertRuleParam}`.addSuccess(NoContent))
  .addError(NotFound)
  .addError(Denied)
  .middleware(Authorization) {}

export class PermissionsApi extends HttpApiGroup.make("permissions")
  .add(
    HttpApiEndpoint.get("listPermissions")`/services/${ServiceParam}/permissions`.addSuccess(
      collection(PermissionResource)
    )
  )
  .add(
    HttpApiEndpoint.post("grantPermission")`/services/${ServiceParam}/permissions`
      .setPayload(body("service-permissions", { userId: Id, permission: Permission }))
      .addSuccess(single(PermissionResource, 201))
  )
  .add(
    HttpApiEndpoint.del(
      "revokePermission"
    )`/services/${ServiceParam}/permissions/${HttpApiSchema.param("permissionId", Id)}`.addSuccess(NoContent)
  )
  .addError(NotFound)
  .addError(Denied)
  .addError(Unprocessable)
  .middleware(Authorization) {}

/** A custom domain of a service; its id is the hostname. */
export const DomainResource = resource("domains", {
  hostname: Schema.String,
  createdAt: DateString
})

export class DomainsApi extends HttpApiGroup.make("domains")
  .add(
    HttpApiEndpoint.get("listDomains")`/services/${ServiceParam}/domains`.addSuccess(
      collection(DomainResource)
    )
  )
  .add(
    HttpApiEndpoint.post("addDomain")`/services/${ServiceParam}/domains`
      .setPayload(body("domains", { hostname: HostnameInput }))
      .addSuccess(single(DomainResource, 201))
  )
  .add(
    HttpApiEndpoint.del(
      "removeDomain"
    )`/services/${ServiceParam}/domains/${HttpApiSchema.param("hostname", HostnameInput)}`.addSuccess(
      NoContent
    )
  )
  .addError(NotFound)
  .addError(Denied)
  .addError(Conflict)
  .addError(Unprocessable)
  .middleware(Authorization) {}

export class RuntimeApi extends HttpApiGroup.make("runtime")
  .add(HttpApiEndpoint.get("runtimeStatus", "/runtime").addSuccess(single(RuntimeResource)))
  .middleware(Authorization) {}

// The OpenAPI document as OpenApi.Transform hands it over: walked defensively below.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type OpenApiJson = Record<string, any>

const jsonApiErrors = (spec: OpenApiJson): OpenApiJson => {
  for (const item of Object.values(spec.paths ?? {}) as Array<OpenApiJson>)
    for (const op of Object.values(item))
      for (const [status, response] of Object.entries((op?.responses ?? {}) as OpenApiJson)) {
        const content = response?.content
        if (Number(status) >= 400 && content?.["application/json"] && !content[JSON_API]) {
          content[JSON_API] = content["application/json"]
          delete content["application/json"]
        }
      }
  return spec
}

export class KyozoHttpApi extends HttpApi.make("kyozo")
  .add(TeamsApi)
  .add(MembersApi)
  .add(InvitationsApi)
  .add(ApiKeysApi)
  .add(ServicesApi)
  .add(DeploymentsApi)
  .add(DetectionsApi)
  .add(HealthApi)
  .add(MetricsApi)
  .add(RecommendationsApi)
  .add(PermissionsApi)
  .add(WebhooksApi)
  .add(AlertsApi)
  .add(RuntimeApi)
  .add(DomainsApi)
  .addError(BadRequest)
  .prefix("/v1")
  // Every error under /v1 is sent as a JSON:API document (the REST boundary rewrites HttpApi's own
  // decode errors), so the 400s are documented with the content type actually sent.
  .annotate(OpenApi.Transform, jsonApiErrors)
  .annotate(OpenApi.Title, "Kyozo API")
  .annotate(OpenApi.Version, "1")
  .annotate(
    OpenApi.Description,
    "REST under /v1 (JSON:API). The same data can be read with GraphQL at POST /graphql (same bearer " +
      "keys and rate limit; schema as SDL at GET /graphql/schema.graphql)."
  ) {}

/** Every route of the API as "METHOD /path" (paths as in OpenAPI-less router syntax, `:param`). */
export const routesOf = (
  api: HttpApi.HttpApi.Any = KyozoHttpApi
): ReadonlyArray<{ method: string; path: string }> => {
  const out: Array<{ method: string; path: string }> = []
  const groups = (
    api as unknown as {
      groups: Record<string, { endpoints: Record<string, { method: string; path: string }> }>
    }
  ).groups
  for (const group of Object.values(groups))
    for (const endpoint of Object.values(group.endpoints))
      out.push({ method: endpoint.method, path: endpoint.path })
  return out
}

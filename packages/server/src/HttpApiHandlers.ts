/**
 * The server side of `KyozoHttpApi` (REST under /v1). Every handler reads the caller from
 * `CurrentPrincipal`, asks `Policy` before it acts, and reaches data only through team-scoped repo
 * methods: an id of another team answers 404 exactly like an id that does not exist, and error texts
 * never echo ids or names (a caller learns nothing about other teams from them).
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import {
  apiError,
  type ApiError,
  Authorization,
  BadRequest,
  Conflict,
  Denied,
  JSON_API,
  KyozoHttpApi,
  NotFound,
  ServiceCollection,
  TooManyRequests,
  Unauthenticated,
  Unavailable,
  Unprocessable
} from "@kyozo/api/KyozoHttpApi"
import {
  type ApiKeyNotFound,
  CurrentPrincipal,
  type Forbidden,
  type MemberNotFound,
  type InstanceAdminRequired,
  type TeamNotFound
} from "@kyozo/api/KyozoRpc"
import { type AlertRule, AlertRepo } from "@kyozo/core/AlertRepo"
import { ContainerManager } from "@kyozo/core/ContainerManager"
import type { ApiKey } from "@kyozo/core/domain/ApiKey"
import type { Deployment } from "@kyozo/core/domain/Deployment"
import { DeploymentId, DetectionId, PermissionId, type TeamId, UserId } from "@kyozo/core/domain/Ids"
import type { ServiceInstance } from "@kyozo/core/domain/ServiceInstance"
import type { ServicePermission } from "@kyozo/core/domain/ServicePermission"
import type { Team } from "@kyozo/core/domain/Team"
import { DeploymentRepo } from "@kyozo/core/DeploymentRepo"
import { EdgeRouter } from "@kyozo/core/edge/EdgeRouter"
import { hostUrlFor } from "@kyozo/core/edge/HostNames"
import { HealthCheckRepo } from "@kyozo/core/HealthCheckRepo"
import { MetricSampleRepo } from "@kyozo/core/MetricSampleRepo"
import { allowPrivateFromEnv, checkTarget, TargetRefused } from "@kyozo/core/OutboundTarget"
import { PermissionRepo } from "@kyozo/core/PermissionRepo"
import { serviceUrl } from "@kyozo/core/ServiceNaming"
import { type TeamNameTaken, TeamRepo } from "@kyozo/core/TeamRepo"
import { TopologyRepo } from "@kyozo/core/TopologyRepo"
import { type Webhook, type WebhookDelivery, WebhookId } from "@kyozo/core/Webhook"
import { WebhookRepo } from "@kyozo/core/WebhookRepo"
import { Deployer, type DeployError, type DeployRequest, type DeploySource } from "@kyozo/workers/Deployer"
import { loadPrices, recommend } from "@kyozo/workers/Recommendations"
import { Deferred, Effect, Layer, Option, Redacted, Schema, Stream } from "effect"
import { makeAuthenticate } from "./Auth.js"
import { ApiKeys } from "./application/ApiKeys.js"
import {
  type AlreadyMember,
  type InvitationNotFound,
  type LastOwner,
  Members,
  type MemberView,
  type RoleNotAssignable
} from "./application/Members.js"
import { Services } from "./application/Services.js"
import { Teams } from "./application/Teams.js"
import { Sources } from "./application/Sources.js"
import { Policy, requireRole } from "./Policy.js"

// ---------------------------------------------------------------------------------------------
// Errors

const notFound = (what: string) =>
  apiError(NotFound, 404, "not_found", "Not found", `No such ${what} in your team.`)

const denied = (e: Forbidden) => apiError(Denied, 403, "forbidden", "Forbidden", e.message)

/** Policy failures: Forbidden → 403, ServiceNotFound → 404 (never naming what was asked for). */
const policyError = (e: Forbidden | { readonly _tag: "ServiceNotFound" }): NotFound | Denied =>
  e._tag === "Forbidden" ? denied(e as Forbidden) : notFound("service")

/** The Deployer's typed failures as JSON:API errors. */
const deployError = (e: DeployError | { readonly _tag: string; readonly message?: string }): ApiError => {
  const tag = e._tag as string
  const detail = (e as { message?: string }).message ?? tag
  switch (tag) {
    case "ServiceNotFound":
      return notFound("service")
    case "InvalidSource":
      return apiError(Unprocessable, 422, "invalid_source", "Invalid source", detail, {
        pointer: "/data/attributes/source"
      })
    case "NothingToDeploy":
    case "DetectError":
      return apiError(Unprocessable, 422, "nothing_to_deploy", "Nothing to deploy", detail)
    case "DeployFailed":
      return apiError(Unprocessable, 422, "deploy_failed", "Deploy failed", detail)
    case "NoRollbackTarget":
      return apiError(Conflict, 409, "no_rollback_target", "No rollback target", detail)
    case "QuotaExceeded":
      return apiError(Conflict, 409, "quota_exceeded", "Quota exceeded", detail)
    case "CircuitOpen":
    case "DockerUnavailable":
    case "DockerTimeout":
      return apiError(Unavailable, 503, "engine_unavailable", "Container engine unavailable", detail)
    default:
      return apiError(Unprocessable, 422, "runtime_error", "Runtime error", detail)
  }
}

// ---------------------------------------------------------------------------------------------
// Documents

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString())

const teamDoc = (t: Team) => ({
  type: "teams" as const,
  id: t.id,
  attributes: {
    name: t.name,
    quotaServices: t.quotaServices,
    quotaCpuMillis: t.quotaCpuMillis,
    quotaMemoryMb: t.quotaMemoryMb,
    createdAt: t.createdAt.toISOString()
  }
})

const ref = (type: string, id: string | null) => ({ data: id === null ? null : { type, id } })

/** `hostUrl` depends on the edge (its routes and shared port), not on the row: computed when encoding. */
const serviceDoc = (s: ServiceInstance, hostUrl: string | null = null) => ({
  type: "services" as const,
  id: s.id,
  attributes: {
    name: s.name,
    kind: s.kind,
    framework: s.framework,
    status: s.status,
    desiredState: s.desiredState,
    image: s.image,
    url: serviceUrl(s.hostPort),
    hostUrl,
    cpuMillis: s.cpuMillis,
    memoryMb: s.memoryMb,
    envKeys: Object.keys(s.env).sort(),
    healthConfig: s.healthConfig,
    restartPolicy: s.restartPolicy,
    restartCount: s.restartCount,
    replicas: s.replicas,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString()
  },
  relationships: {
    team: ref("teams", s.teamId),
    currentDeployment: ref("deployments", s.currentDeploymentId)
  }
})

const deploymentDoc = (d: Deployment) => ({
  type: "deployments" as const,
  id: d.id,
  attributes: {
    status: d.status,
    image: d.image,
    error: d.error,
    createdAt: d.createdAt.toISOString(),
    finishedAt: iso(d.finishedAt)
  },
  relationships: { service: ref("services", d.serviceId) }
})

const apiKeyDoc = (k: ApiKey, key?: string) => ({
  type: "api-keys" as const,
  id: k.id,
  attributes: {
    name: k.name,
    prefix: k.prefix,
    userId: k.userId,
    createdAt: k.createdAt.toISOString(),
    expiresAt: iso(k.expiresAt),
    revokedAt: iso(k.revokedAt),
    lastUsedAt: iso(k.lastUsedAt),
    ...(key === undefined ? {} : { key })
  },
  relationships: { user: ref("members", k.userId) }
})

const permissionDoc = (p: ServicePermission) => ({
  type: "service-permissions" as const,
  id: p.id,
  attributes: {
    userId: p.userId,
    permission: p.permission,
    grantedBy: p.grantedBy,
    createdAt: p.createdAt.toISOString()
  },
  relationships: { service: ref("services", p.serviceId), user: ref("members", p.userId) }
})

/** The request's own URL (path and query), for `links.self`. */
const selfLink = Effect.map(HttpServerRequest.HttpServerRequest, (r) => r.url)

const withQuery = (path: string, params: Record<string, string | undefined>): string => {
  const q = Object.entries(params)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(
      ([k, v]) =>
        `${encodeURIComponent(k).replace(/%5B/g, "[").replace(/%5D/g, "]")}=${encodeURIComponent(v)}`
    )
  return q.length === 0 ? path : `${path}?${q.join("&")}`
}

const listDoc = <A>(data: ReadonlyArray<A>) =>
  Effect.map(selfLink, (self) => ({ data, links: { self, next: null } }))

// ---------------------------------------------------------------------------------------------
// Handlers

const principal = CurrentPrincipal

/** Repos the handlers need beyond what the application already provides. */
const LocalRepos = Layer.mergeAll(
  PermissionRepo.Default,
  HealthCheckRepo.Default,
  MetricSampleRepo.Default,
  WebhookRepo.Default,
  AlertRepo.Default,
  Policy.Default,
  Services.Default,
  Sources.Default,
  Teams.Default,
  ApiKeys.Default,
  Members.Default
)

/** Teams' domain errors as JSON:API errors: another team is a 404 like an unknown one. */
const teamError = (e: InstanceAdminRequired | TeamNotFound | TeamNameTaken): NotFound | Denied | Conflict => {
  switch (e._tag) {
    case "TeamNotFound":
      return notFound("team")
    case "InstanceAdminRequired":
      return apiError(Denied, 403, "instance_admin_required", "Instance admin required", e.message)
    case "TeamNameTaken":
      return apiError(Conflict, 409, "team_name_taken", "Team name taken", "A team with this name exists.", {
        pointer: "/data/attributes/name"
      })
  }
}

const TeamsLive = HttpApiBuilder.group(KyozoHttpApi, "teams", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Teams
    return handlers
      .handle("currentTeam", () =>
        app.current.pipe(
          Effect.mapError(teamError),
          Effect.map((t) => ({ data: teamDoc(t) }))
        )
      )
      .handle("getTeam", ({ path }) =>
        Effect.gen(function* () {
          const p = yield* principal
          // Only one's own team is visible here: any other id is simply not there.
          if (path.teamId !== p.teamId) return yield* Effect.fail(notFound("team"))
          return { data: teamDoc(yield* app.visible(path.teamId).pipe(Effect.mapError(teamError))) }
        })
      )
      .handle("createTeam", ({ payload }) =>
        app.create(payload.data.attributes.name).pipe(
          Effect.mapError(teamError),
          // The owner key of the new team is shown once, like every issued key.
          Effect.map((created) => ({
            data: teamDoc(created.team),
            meta: { ownerKey: apiKeyDoc(created.apiKey, created.key) }
          }))
        )
      )
      .handle("updateTeam", ({ path, payload }) =>
        app.setQuotas(path.teamId, payload.data.attributes).pipe(
          Effect.mapError(teamError),
          Effect.map((t) => ({ data: teamDoc(t) }))
        )
      )
  })
)

const memberDoc = (m: MemberView) => ({
  type: "members" as const,
  id: m.userId,
  attributes: { email: m.email, name: m.name, role: m.role, createdAt: m.createdAt.toISOString() }
})

/** Members' domain errors as JSON:API errors. */
const memberError = (
  e: Forbidden | MemberNotFound | RoleNotAssignable | AlreadyMember | LastOwner | InvitationNotFound
): NotFound | Denied | Conflict => {
  switch (e._tag) {
    case "Forbidden":
      return denied(e)
    case "MemberNotFound":
      return notFound("member")
    case "InvitationNotFound":
      return notFound("invitation")
    case "RoleNotAssignable":
      return apiError(
        Denied,
        403,
        "forbidden",
        "Forbidden",
        e.action === "make"
          ? `Your role ${e.callerRole} cannot make a member ${e.role}.`
          : e.action === "change"
            ? `Your role ${e.callerRole} cannot change this member to ${e.role}.`
            : `Your role ${e.callerRole} cannot remove a member who is ${e.role}.`,
        e.action === "remove" ? undefined : { pointer: "/data/attributes/role" }
      )
    case "AlreadyMember":
      return apiError(
        Conflict,
        409,
        "already_member",
        "Already a member",
        "This user is already a member; change the role with PATCH."
      )
    case "LastOwner":
      return apiError(Conflict, 409, "last_owner", "Last owner", "A team keeps at least one owner.")
  }
}

const MembersLive = HttpApiBuilder.group(KyozoHttpApi, "members", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Members
    return handlers
      .handle("listMembers", () =>
        Effect.flatMap(principal, (p) => app.list(p.teamId)).pipe(
          Effect.flatMap((ms) => listDoc(ms.map(memberDoc)))
        )
      )
      .handle("addMember", ({ payload }) =>
        app.add(payload.data.attributes).pipe(
          Effect.mapError(memberError),
          Effect.map((outcome) =>
            outcome._tag === "Added"
              ? { data: memberDoc(outcome.member) }
              : {
                  data: {
                    type: "invitations" as const,
                    id: outcome.invitation.id,
                    attributes: {
                      email: outcome.email,
                      role: outcome.invitation.role,
                      createdAt: outcome.invitation.createdAt.toISOString()
                    }
                  }
                }
          )
        )
      )
      .handle("changeRole", ({ path, payload }) =>
        app.changeRole(path.userId, payload.data.attributes.role).pipe(
          Effect.mapError(memberError),
          Effect.map((m) => ({ data: memberDoc(m) }))
        )
      )
      .handle("removeMember", ({ path }) => app.remove(path.userId).pipe(Effect.mapError(memberError)))
  })
)

const InvitationsLive = HttpApiBuilder.group(KyozoHttpApi, "invitations", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Members
    return handlers
      .handle("listInvitations", () =>
        app.myInvitations.pipe(
          Effect.flatMap((list) =>
            listDoc(
              list.map(({ invitation, team }) => ({
                type: "invitations" as const,
                id: invitation.id,
                attributes: {
                  teamName: team.name,
                  role: invitation.role,
                  createdAt: invitation.createdAt.toISOString()
                },
                relationships: { team: ref("teams", team.id) }
              }))
            )
          )
        )
      )
      .handle("acceptInvitation", ({ path }) =>
        Effect.gen(function* () {
          const p = yield* principal
          const joined = yield* app
            .accept(path.invitationId)
            .pipe(Effect.mapError(() => notFound("invitation")))
          const me = yield* app.list(joined.team.id)
          const mine = me.find((m) => m.userId === p.userId)
          return {
            data: memberDoc(
              mine ?? { userId: p.userId, email: "", name: "", role: joined.role, createdAt: new Date() }
            ),
            meta: { team: teamDoc(joined.team), key: apiKeyDoc(joined.apiKey, joined.key) }
          }
        })
      )
  })
)

const apiKeyError = (e: Forbidden | MemberNotFound | ApiKeyNotFound): NotFound | Denied =>
  e._tag === "Forbidden" ? denied(e) : e._tag === "MemberNotFound" ? notFound("member") : notFound("API key")

const ApiKeysLive = HttpApiBuilder.group(KyozoHttpApi, "apiKeys", (handlers) =>
  Effect.gen(function* () {
    const app = yield* ApiKeys
    return handlers
      .handle("listApiKeys", () => Effect.flatMap(app.list, (ks) => listDoc(ks.map((k) => apiKeyDoc(k)))))
      .handle("issueApiKey", ({ payload }) =>
        app.issue(payload.data.attributes).pipe(
          Effect.mapError(apiKeyError),
          Effect.map((issued) => ({ data: apiKeyDoc(issued.apiKey, issued.key) }))
        )
      )
      .handle("revokeApiKey", ({ path }) => app.revoke(path.keyId).pipe(Effect.mapError(apiKeyError)))
  })
)

/**
 * Starts a deploy and answers once every detected service has its deployment (the rest of the
 * work — build, start, health gate — goes on in the durable workflow after the answer).
 */
const startDeploy = (
  deployer: Deployer["Type"],
  deployments: DeploymentRepo,
  teamId: TeamId,
  request: DeployRequest
) =>
  Effect.gen(function* () {
    const started = yield* Deferred.make<ReadonlyArray<string>, DeployError>()
    const seen = new Map<string, string>()
    let expected: number | undefined
    const settleIfAllSeen = Effect.suspend(() =>
      expected !== undefined && seen.size >= expected
        ? Deferred.succeed(started, [...seen.values()])
        : Effect.void
    )
    yield* deployer.deploy(teamId, request).pipe(
      Stream.runForEach((progress) =>
        Effect.suspend(() => {
          if (progress._tag === "Detected") expected = progress.services.length
          else if (progress._tag === "Step") seen.set(progress.service, progress.deploymentId)
          else if (progress._tag === "Deployed")
            seen.set(progress.deployment.serviceName, progress.deployment.deploymentId)
          return settleIfAllSeen
        })
      ),
      Effect.exit,
      Effect.flatMap((exit) =>
        exit._tag === "Success"
          ? Deferred.succeed(started, [...seen.values()])
          : Effect.flatMap(Effect.exit(Effect.failCause(exit.cause)), (e) => Deferred.done(started, e))
      ),
      Effect.forkDaemon
    )
    const ids = yield* Deferred.await(started)
    const docs = []
    for (const id of ids) {
      const found = yield* deployments.get(teamId, DeploymentId.make(id)).pipe(Effect.orDie)
      if (Option.isSome(found)) docs.push(deploymentDoc(found.value))
    }
    return docs
  })

const sourceOf = (source: { readonly uploadId: string } | { readonly path: string }): DeploySource =>
  "uploadId" in source ? { _tag: "Upload", uploadId: source.uploadId } : { _tag: "Path", path: source.path }

/** The source a service was deployed from (stored by the deploy path), to deploy it again. */
const storedSource = (s: ServiceInstance): Option.Option<DeploySource> => {
  const src = s.source
  if (src["type"] === "upload" && typeof src["uploadId"] === "string")
    return Option.some({ _tag: "Upload", uploadId: src["uploadId"] })
  if (src["type"] === "path" && typeof src["path"] === "string")
    return Option.some({ _tag: "Path", path: src["path"] })
  return Option.none()
}

const encodeServiceList = Schema.encode(ServiceCollection)
const utf8 = new TextEncoder()

/** Encoded service lists by page (pages are held by the Services cache, and dropped with it). */
const encodedPages = new WeakMap<object, Map<string, HttpServerResponse.HttpServerResponse>>()

const ServicesLive = HttpApiBuilder.group(KyozoHttpApi, "services", (handlers) =>
  Effect.gen(function* () {
    const edgeRouter = yield* Effect.serviceOption(EdgeRouter)
    /** http://<service>.<team>.<domain>:<edge port> of each service the edge names (RPC's viewOf alike). */
    const hostUrlOf = (id: string): Effect.Effect<string | null> =>
      Option.match(edgeRouter, {
        onNone: () => Effect.succeed(null),
        onSome: (edge) =>
          Effect.gen(function* () {
            const status = yield* edge.status
            const route = yield* edge.route(id)
            return route?.hostName && status.sharedPort !== null
              ? hostUrlFor(route.hostName, status.sharedPort)
              : null
          })
      })
    const app = yield* Services
    const sources = yield* Sources
    const deployer = yield* Deployer
    const deployments = yield* DeploymentRepo
    const policy = yield* Policy
    return handlers
      .handle("listServices", ({ urlParams }) =>
        Effect.gen(function* () {
          const p = yield* principal
          const size = urlParams["page[size]"] ?? 50
          const page = yield* app.list(p.teamId, { limit: size, after: urlParams["page[after]"] }).pipe(
            Effect.mapError(() =>
              apiError(
                BadRequest,
                400,
                "invalid_cursor",
                "Invalid cursor",
                "page[after] is not a cursor of this list.",
                {
                  parameter: "page[after]"
                }
              )
            )
          )
          const self = yield* selfLink
          const hostUrls = yield* Effect.forEach(page.items, (s) => hostUrlOf(s.id))
          // The page object stays the same while no service changes: so does its encoded answer, as
          // long as the edge names the services alike (hostUrl is part of the key).
          const key = `${self}\u0000${hostUrls.join("\u0000")}`
          const encoded = encodedPages.get(page)?.get(key)
          if (encoded !== undefined) return encoded
          const path = self.split("?")[0]!
          const document = yield* encodeServiceList({
            data: page.items.map((s, i) => serviceDoc(s, hostUrls[i] ?? null)),
            links: {
              self,
              next:
                page.nextCursor === null
                  ? null
                  : withQuery(path, { "page[size]": String(size), "page[after]": page.nextCursor })
            }
          }).pipe(Effect.orDie)
          const response = HttpServerResponse.uint8Array(utf8.encode(JSON.stringify(document)), {
            contentType: JSON_API
          })
          const bySelf = encodedPages.get(page) ?? new Map<string, HttpServerResponse.HttpServerResponse>()
          if (bySelf.size < 100) bySelf.set(key, response)
          encodedPages.set(page, bySelf)
          return response
        })
      )
      .handle("createService", ({ payload }) =>
        Effect.gen(function* () {
          const { source, name, force } = payload.data.attributes
          yield* policy.requireDeploy(name).pipe(Effect.mapError(denied))
          const p = yield* principal
          const resolved = yield* sources
            .resolve(p.teamId, sourceOf(source))
            .pipe(Effect.mapError(deployError))
          const request: DeployRequest = {
            source: resolved,
            ...(name === undefined ? {} : { name }),
            ...(force === true ? { force } : {})
          }
          const docs = yield* startDeploy(deployer, deployments, p.teamId, request).pipe(
            Effect.mapError(deployError)
          )
          return yield* listDoc(docs)
        })
      )
      .handle("getService", ({ path }) =>
        policy.requireService("view the service", path.serviceId, "view").pipe(
          Effect.mapError(policyError),
          Effect.flatMap(({ service }) =>
            Effect.map(hostUrlOf(service.id), (hostUrl) => ({ data: serviceDoc(service, hostUrl) }))
          )
        )
      )
      .handle("updateService", ({ path, payload }) =>
        app.update(path.serviceId, payload.data.attributes).pipe(
          Effect.mapError((e) => (e._tag === "Forbidden" ? policyError(e) : deployError(e))),
          Effect.bind("hostUrl", ({ service }) => hostUrlOf(service.id)),
          // The rollout of new settings goes on after the answer: follow it at its deployment.
          Effect.map(({ service, rollout, hostUrl }) =>
            Option.match(rollout, {
              onNone: () => ({ data: serviceDoc(service, hostUrl) }),
              onSome: (id) => ({
                data: serviceDoc(service, hostUrl),
                meta: { rollout: { deploymentId: id, href: `/v1/deployments/${id}` } }
              })
            })
          )
        )
      )
      .handle("deleteService", ({ path }) =>
        Effect.gen(function* () {
          const { principal: p, service } = yield* policy
            .requireService("delete the service", path.serviceId, "manage")
            .pipe(Effect.mapError(policyError))
          yield* deployer.remove(p.teamId, service.id).pipe(Effect.mapError(deployError))
        })
      )
  })
)

const logLineDoc = (
  l: { stream: "stdout" | "stderr"; timestamp: number | null; line: string },
  i: number
) => ({
  type: "log-lines" as const,
  id: String(i + 1),
  attributes: { stream: l.stream, timestamp: l.timestamp, line: l.line }
})

const DeploymentsLive = HttpApiBuilder.group(KyozoHttpApi, "deployments", (handlers) =>
  Effect.gen(function* () {
    const sources = yield* Sources
    const deployer = yield* Deployer
    const deployments = yield* DeploymentRepo
    const policy = yield* Policy
    return handlers
      .handle("listDeployments", ({ urlParams }) =>
        Effect.gen(function* () {
          const p = yield* principal
          const limit = urlParams["page[size]"] ?? 50
          const filter = urlParams["filter[service]"]
          const rows =
            filter === undefined
              ? yield* deployments.listByTeam(p.teamId, { limit }).pipe(Effect.orDie)
              : yield* policy.requireService("view deployments", filter, "view").pipe(
                  Effect.mapError(policyError),
                  Effect.flatMap(({ service }) =>
                    deployments.listByService(p.teamId, service.id, { limit }).pipe(Effect.orDie)
                  )
                )
          return yield* listDoc(rows.map(deploymentDoc))
        })
      )
      .handle("getDeployment", ({ path }) =>
        Effect.gen(function* () {
          const p = yield* principal
          const found = yield* deployments
            .get(p.teamId, DeploymentId.make(path.deploymentId))
            .pipe(Effect.orDie)
          if (Option.isNone(found)) return yield* Effect.fail(notFound("deployment"))
          return { data: deploymentDoc(found.value) }
        })
      )
      .handle("startDeployment", ({ path }) =>
        Effect.gen(function* () {
          const { principal: p, service } = yield* policy
            .requireService("deploy the service", path.serviceId, "deploy")
            .pipe(Effect.mapError(policyError))
          const source = storedSource(service)
          if (Option.isNone(source))
            return yield* Effect.fail(
              apiError(
                Unprocessable,
                422,
                "no_source",
                "No source",
                "The service has no stored source to deploy from."
              )
            )
          const resolved = yield* sources
            .resolveStored(p.teamId, source.value)
            .pipe(Effect.mapError(deployError))
          // "Redeploy this service" (the dashboard's button) asks for new containers: always forced.
          const docs = yield* startDeploy(deployer, deployments, p.teamId, {
            source: resolved,
            name: service.name,
            force: true
          }).pipe(Effect.mapError(deployError))
          return yield* listDoc(docs)
        })
      )
      .handle("serviceLogs", ({ path, urlParams }) =>
        Effect.gen(function* () {
          const { principal: p, service } = yield* policy
            .requireService("read logs", path.serviceId, "view")
            .pipe(Effect.mapError(policyError))
          const lines = yield* deployer
            .logs(p.teamId, service.id, { follow: false, tail: urlParams.tail ?? 100 })
            .pipe(Stream.runCollect, Effect.mapError(deployError))
          return yield* listDoc([...lines].map(logLineDoc))
        })
      )
      .handle("rollback", ({ path, payload }) =>
        Effect.gen(function* () {
          const { principal: p, service } = yield* policy
            .requireService("roll back the service", path.serviceId, "deploy")
            .pipe(Effect.mapError(policyError))
          const summary = yield* deployer
            .rollback(p.teamId, service.id, payload.data.attributes.to)
            .pipe(Effect.mapError(deployError))
          const found = yield* deployments.get(p.teamId, summary.deploymentId).pipe(Effect.orDie)
          if (Option.isNone(found)) return yield* Effect.fail(notFound("deployment"))
          return { data: deploymentDoc(found.value) }
        })
      )
  })
)

const DetectionsLive = HttpApiBuilder.group(KyozoHttpApi, "detections", (handlers) =>
  Effect.gen(function* () {
    const topology = yield* TopologyRepo
    const policy = yield* Policy
    const sources = yield* Sources
    const doc = (d: {
      id: string
      teamId: TeamId
      serviceId: string | null
      rootPath: string
      result: unknown
      detectedAt: Date
    }) => ({
      type: "detections" as const,
      id: d.id,
      // The team's own view of the folder: never the server's absolute path.
      attributes: {
        rootPath: sources.display(d.teamId, d.rootPath),
        result: d.result,
        detectedAt: d.detectedAt.toISOString()
      },
      relationships: { service: ref("services", d.serviceId) }
    })
    return handlers
      .handle("listDetections", ({ urlParams }) =>
        Effect.gen(function* () {
          const p = yield* principal
          const filter = urlParams["filter[service]"]
          const serviceId =
            filter === undefined
              ? undefined
              : (yield* policy
                  .requireService("view detections", filter, "view")
                  .pipe(Effect.mapError(policyError))).service.id
          const rows = yield* topology
            .listDetections(p.teamId, {
              limit: urlParams["page[size]"] ?? 50,
              ...(serviceId === undefined ? {} : { serviceId })
            })
            .pipe(Effect.orDie)
          return yield* listDoc(rows.map(doc))
        })
      )
      .handle("getDetection", ({ path }) =>
        Effect.gen(function* () {
          const p = yield* principal
          const found = yield* topology
            .findDetection(p.teamId, DetectionId.make(path.detectionId))
            .pipe(Effect.orDie)
          if (Option.isNone(found)) return yield* Effect.fail(notFound("detection"))
          return { data: doc(found.value) }
        })
      )
  })
)

const HealthLive = HttpApiBuilder.group(KyozoHttpApi, "health", (handlers) =>
  Effect.gen(function* () {
    const checks = yield* HealthCheckRepo
    const policy = yield* Policy
    return handlers.handle("healthHistory", ({ path, urlParams }) =>
      Effect.gen(function* () {
        const { service } = yield* policy
          .requireService("view health", path.serviceId, "view")
          .pipe(Effect.mapError(policyError))
        // The service is the team's (checked above), so its rows are too.
        const rows = yield* checks
          .latestByService(service.id, urlParams["page[size]"] ?? 50)
          .pipe(Effect.orDie)
        return yield* listDoc(
          rows.map((c) => ({
            type: "health-checks" as const,
            id: String(c.id),
            attributes: {
              checkType: c.checkType,
              status: c.status,
              latencyMs: c.latencyMs,
              detail: c.detail,
              checkedAt: c.checkedAt.toISOString()
            },
            relationships: { service: ref("services", c.serviceId) }
          }))
        )
      })
    )
  })
)

const WINDOW_MS = { hour: 3_600_000, day: 86_400_000, week: 7 * 86_400_000 } as const

const MetricsLive = HttpApiBuilder.group(KyozoHttpApi, "metrics", (handlers) =>
  Effect.gen(function* () {
    const samples = yield* MetricSampleRepo
    const policy = yield* Policy
    return handlers.handle("serviceMetrics", ({ path, urlParams }) =>
      Effect.gen(function* () {
        const { service } = yield* policy
          .requireService("view metrics", path.serviceId, "view")
          .pipe(Effect.mapError(policyError))
        const window = urlParams.window ?? "hour"
        // A week of minute samples is ~10k rows per container: longer windows read the hourly roll-ups.
        const resolution = window === "week" ? "1h" : "1m"
        const since = new Date(Date.now() - WINDOW_MS[window])
        const rows = yield* samples.listByService(service.id, resolution, since).pipe(Effect.orDie)
        return yield* listDoc(
          rows.map((m) => ({
            type: "metric-samples" as const,
            id: String(m.id),
            attributes: {
              resolution: m.resolution,
              cpuPercent: m.cpuPercent,
              memoryBytes: m.memoryBytes,
              memoryLimitBytes: m.memoryLimitBytes,
              netRxBytes: m.netRxBytes,
              netTxBytes: m.netTxBytes,
              pids: m.pids,
              sampledAt: m.sampledAt.toISOString()
            },
            relationships: { service: ref("services", m.serviceId) }
          }))
        )
      })
    )
  })
)

/**
 * p95 over minute samples for a day (hourly averages would hide the peaks the limit must absorb);
 * a week reads the hourly roll-ups, whose p95 is of hourly means.
 */
const RecommendationsLive = HttpApiBuilder.group(KyozoHttpApi, "recommendations", (handlers) =>
  Effect.gen(function* () {
    const samples = yield* MetricSampleRepo
    const policy = yield* Policy
    const prices = yield* loadPrices.pipe(Effect.orDie)
    // The current limits priced like the suggestion (730 hours a month), so the two compare.
    const cost = (cpuMillis: number, memoryMb: number) =>
      Math.round(((cpuMillis / 1000) * prices.vcpuHour + (memoryMb / 1024) * prices.gbHour) * 730 * 100) / 100
    return handlers.handle("serviceRecommendations", ({ path, urlParams }) =>
      Effect.gen(function* () {
        const { service } = yield* policy
          .requireService("view recommendations", path.serviceId, "view")
          .pipe(Effect.mapError(policyError))
        const window = urlParams.window ?? "week"
        const since = new Date(Date.now() - WINDOW_MS[window])
        const rows = yield* samples
          .listByService(service.id, window === "week" ? "1h" : "1m", since)
          .pipe(Effect.orDie)
        const r = recommend(rows, prices)
        return {
          data: {
            type: "recommendations" as const,
            id: `${service.id}-${window}`,
            attributes: {
              window,
              samples: rows.length,
              ...r,
              currentCpuMillis: service.cpuMillis,
              currentMemoryMb: service.memoryMb,
              currentMonthlyCost: cost(service.cpuMillis, service.memoryMb),
              prices
            },
            relationships: { service: ref("services", service.id) }
          }
        }
      })
    )
  })
)

const webhookDoc = (w: Webhook, secret?: string) => ({
  type: "webhooks" as const,
  id: w.id,
  attributes: {
    url: w.url,
    eventTypes: w.eventTypes,
    enabled: w.enabled,
    createdAt: w.createdAt.toISOString(),
    ...(secret === undefined ? {} : { secret })
  },
  relationships: { team: ref("teams", w.teamId) }
})

const deliveryDoc = (d: WebhookDelivery) => ({
  type: "webhook-deliveries" as const,
  id: String(d.id),
  attributes: {
    eventId: d.eventId,
    attempt: d.attempt,
    outcome: d.outcome,
    responseStatus: d.responseStatus,
    error: d.error,
    durationMs: d.durationMs,
    attemptedAt: d.attemptedAt.toISOString()
  },
  relationships: { webhook: ref("webhooks", d.webhookId) }
})

/** Team webhooks: every member reads them; owners and admins create and delete (they hold the secret). */
const WebhooksLive = HttpApiBuilder.group(KyozoHttpApi, "webhooks", (handlers) =>
  Effect.gen(function* () {
    const webhooks = yield* WebhookRepo
    const ownWebhook = (teamId: TeamId, id: string) =>
      webhooks
        .findById(teamId, WebhookId.make(id))
        .pipe(
          Effect.orDie,
          Effect.flatMap(
            Option.match({ onNone: () => Effect.fail(notFound("webhook")), onSome: Effect.succeed })
          )
        )
    return handlers
      .handle("listWebhooks", () =>
        Effect.gen(function* () {
          const p = yield* principal
          const rows = yield* webhooks.listByTeam(p.teamId).pipe(Effect.orDie)
          return yield* listDoc(rows.map((w) => webhookDoc(w)))
        })
      )
      .handle("createWebhook", ({ payload }) =>
        Effect.gen(function* () {
          const p = yield* requireRole("manage webhooks", "admin").pipe(Effect.mapError(denied))
          const { url, secret, eventTypes } = payload.data.attributes
          // Where it may point: checked here on the URL, and again on the resolved address at delivery.
          const target = checkTarget(url, allowPrivateFromEnv())
          if (target instanceof TargetRefused)
            return yield* Effect.fail(
              apiError(
                Unprocessable,
                422,
                "webhook_target_refused",
                "Webhook target refused",
                target.message,
                {
                  pointer: "/data/attributes/url"
                }
              )
            )
          const created = yield* webhooks
            .create({
              teamId: p.teamId,
              url: target.href,
              ...(secret === undefined ? {} : { secret }),
              ...(eventTypes === undefined ? {} : { eventTypes })
            })
            .pipe(Effect.orDie)
          // The secret is shown here once; later reads never carry it.
          return { data: webhookDoc(created, Redacted.value(created.secret)) }
        })
      )
      .handle("getWebhook", ({ path }) =>
        Effect.gen(function* () {
          const p = yield* principal
          return { data: webhookDoc(yield* ownWebhook(p.teamId, path.webhookId)) }
        })
      )
      .handle("deleteWebhook", ({ path }) =>
        Effect.gen(function* () {
          const p = yield* principal
          // Existence first, so another team's id is a 404 whatever the caller's role.
          yield* ownWebhook(p.teamId, path.webhookId)
          yield* requireRole("manage webhooks", "admin").pipe(Effect.mapError(denied))
          const removed = yield* webhooks.remove(p.teamId, WebhookId.make(path.webhookId)).pipe(Effect.orDie)
          if (!removed) return yield* Effect.fail(notFound("webhook"))
        })
      )
      .handle("listWebhookDeliveries", ({ path, urlParams }) =>
        Effect.gen(function* () {
          const p = yield* principal
          const hook = yield* ownWebhook(p.teamId, path.webhookId)
          const rows = yield* webhooks
            .listDeliveries(p.teamId, hook.id, urlParams["page[size]"] ?? 50)
            .pipe(Effect.orDie)
          return yield* listDoc(rows.map(deliveryDoc))
        })
      )
  })
)

const alertRuleDoc = (r: AlertRule) => ({
  type: "alert-rules" as const,
  id: r.id,
  attributes: {
    serviceId: r.serviceId,
    metric: r.metric,
    comparator: r.comparator,
    threshold: r.threshold,
    durationSeconds: r.durationSeconds,
    enabled: r.enabled,
    createdAt: r.createdAt.toISOString()
  },
  relationships: { team: ref("teams", r.teamId), service: ref("services", r.serviceId) }
})

/**
 * Alert rules: every member reads them. A team-wide rule is changed by owners and admins; a rule
 * of one service by whoever holds `manage` on that service (role-implied or granted).
 */
const AlertsLive = HttpApiBuilder.group(KyozoHttpApi, "alerts", (handlers) =>
  Effect.gen(function* () {
    const alerts = yield* AlertRepo
    const policy = yield* Policy
    const ownRule = (teamId: TeamId, id: string) =>
      alerts
        .get(teamId, id)
        .pipe(
          Effect.orDie,
          Effect.flatMap(
            Option.match({ onNone: () => Effect.fail(notFound("alert rule")), onSome: Effect.succeed })
          )
        )
    /** May the caller change rules scoped to `serviceId` (null: the whole team)? */
    const requireManage = (operation: string, serviceId: string | null, pointer?: string) =>
      serviceId === null
        ? requireRole(operation, "admin").pipe(Effect.mapError(denied))
        : policy.requireService(operation, serviceId, "manage").pipe(
            Effect.mapError((e) =>
              e._tag === "Forbidden"
                ? denied(e)
                : apiError(
                    NotFound,
                    404,
                    "not_found",
                    "Not found",
                    "No such service in your team.",
                    pointer === undefined ? undefined : { pointer }
                  )
            ),
            Effect.map(({ principal, service }) => ({ ...principal, serviceId: service.id }))
          )
    return handlers
      .handle("listAlertRules", () =>
        Effect.gen(function* () {
          const p = yield* principal
          const rows = yield* alerts.listByTeam(p.teamId).pipe(Effect.orDie)
          return yield* listDoc(rows.map(alertRuleDoc))
        })
      )
      .handle("createAlertRule", ({ payload }) =>
        Effect.gen(function* () {
          const a = payload.data.attributes
          const checked = yield* requireManage(
            "manage alert rules",
            a.serviceId ?? null,
            "/data/attributes/serviceId"
          )
          const created = yield* alerts
            .create({
              teamId: checked.teamId,
              serviceId: "serviceId" in checked ? checked.serviceId : null,
              metric: a.metric,
              comparator: a.comparator,
              threshold: a.threshold,
              ...(a.durationSeconds === undefined ? {} : { durationSeconds: a.durationSeconds }),
              ...(a.enabled === undefined ? {} : { enabled: a.enabled })
            })
            .pipe(Effect.orDie)
          return { data: alertRuleDoc(created) }
        })
      )
      .handle("getAlertRule", ({ path }) =>
        Effect.gen(function* () {
          const p = yield* principal
          return { data: alertRuleDoc(yield* ownRule(p.teamId, path.alertRuleId)) }
        })
      )
      .handle("updateAlertRule", ({ path, payload }) =>
        Effect.gen(function* () {
          const p = yield* principal
          // Existence first, so another team's id is a 404 whatever the caller's role.
          const rule = yield* ownRule(p.teamId, path.alertRuleId)
          yield* requireManage("change alert rules", rule.serviceId)
          const a = payload.data.attributes
          const updated = yield* alerts
            .update(p.teamId, rule.id, {
              ...(a.comparator === undefined ? {} : { comparator: a.comparator }),
              ...(a.threshold === undefined ? {} : { threshold: a.threshold }),
              ...(a.durationSeconds === undefined ? {} : { durationSeconds: a.durationSeconds }),
              ...(a.enabled === undefined ? {} : { enabled: a.enabled })
            })
            .pipe(Effect.orDie)
          if (Option.isNone(updated)) return yield* Effect.fail(notFound("alert rule"))
          return { data: alertRuleDoc(updated.value) }
        })
      )
      .handle("deleteAlertRule", ({ path }) =>
        Effect.gen(function* () {
          const p = yield* principal
          const rule = yield* ownRule(p.teamId, path.alertRuleId)
          yield* requireManage("delete alert rules", rule.serviceId)
          const removed = yield* alerts.remove(p.teamId, rule.id).pipe(Effect.orDie)
          if (!removed) return yield* Effect.fail(notFound("alert rule"))
        })
      )
  })
)

const PermissionsLive = HttpApiBuilder.group(KyozoHttpApi, "permissions", (handlers) =>
  Effect.gen(function* () {
    const permissions = yield* PermissionRepo
    const teams = yield* TeamRepo
    const policy = yield* Policy
    return handlers
      .handle("listPermissions", ({ path }) =>
        Effect.gen(function* () {
          const { principal: p, service } = yield* policy
            .requireService("view permissions", path.serviceId, "view")
            .pipe(Effect.mapError(policyError))
          const rows = yield* permissions.listForService(p.teamId, service.id).pipe(Effect.orDie)
          return yield* listDoc(rows.map(permissionDoc))
        })
      )
      .handle("grantPermission", ({ path, payload }) =>
        Effect.gen(function* () {
          const { principal: p, service } = yield* policy
            .requireService("grant permissions", path.serviceId, "admin")
            .pipe(Effect.mapError(policyError))
          const userId = UserId.make(payload.data.attributes.userId)
          const member = yield* teams.roleOf(p.teamId, userId).pipe(Effect.orDie)
          if (Option.isNone(member))
            return yield* Effect.fail(
              apiError(
                Unprocessable,
                422,
                "not_a_member",
                "Not a member",
                "Grants go to members of your team.",
                {
                  pointer: "/data/attributes/userId"
                }
              )
            )
          const granted = yield* permissions
            .grant({
              teamId: p.teamId,
              serviceId: service.id,
              userId,
              permission: payload.data.attributes.permission,
              grantedBy: p.userId
            })
            .pipe(Effect.orDie)
          if (Option.isNone(granted)) return yield* Effect.fail(notFound("service"))
          return { data: permissionDoc(granted.value) }
        })
      )
      .handle("revokePermission", ({ path }) =>
        Effect.gen(function* () {
          const { principal: p, service } = yield* policy
            .requireService("revoke permissions", path.serviceId, "admin")
            .pipe(Effect.mapError(policyError))
          const rows = yield* permissions.listForService(p.teamId, service.id).pipe(Effect.orDie)
          const grant = rows.find((r) => r.id === PermissionId.make(path.permissionId))
          if (grant === undefined) return yield* Effect.fail(notFound("permission"))
          yield* permissions.revoke(p.teamId, service.id, grant.userId, grant.permission).pipe(Effect.orDie)
        })
      )
  })
)

const RuntimeLive = HttpApiBuilder.group(KyozoHttpApi, "runtime", (handlers) =>
  Effect.gen(function* () {
    const manager = yield* ContainerManager
    const edgeRouter = yield* Effect.serviceOption(EdgeRouter)
    return handlers.handle("runtimeStatus", () =>
      Effect.gen(function* () {
        const breaker = yield* manager.circuitBreakerStatus
        const schedules = yield* manager.schedules
        const edge = Option.isSome(edgeRouter) ? yield* edgeRouter.value.status : null
        return {
          data: {
            type: "runtime-status" as const,
            id: "current",
            attributes: {
              mode: manager.runtimeMode,
              reason: manager.runtimeReason,
              circuit_breaker_status: breaker,
              edge:
                edge === null
                  ? null
                  : {
                      kind: edge.kind,
                      reason: edge.reason,
                      survivesRestart: edge.survivesRestart,
                      sharedPort: edge.sharedPort,
                      domain: edge.domain,
                      routes: edge.routes,
                      lastError: edge.lastError
                    },
              schedules: schedules.map((s) => ({
                pass: s.pass,
                intervalMs: s.intervalMs,
                runs: s.runs,
                failures: s.failures,
                lastStartedAt: s.lastStartedAt,
                lastFinishedAt: s.lastFinishedAt,
                lastDurationMs: s.lastDurationMs,
                lastError: s.lastError
              }))
            }
          }
        }
      })
    )
  })
)

/**
 * The bearer middleware of the REST API: the same verification as RPC and uploads
 * (`Auth.makeAuthenticate`). HttpApiSecurity.bearer hands an empty token when the header is
 * missing, so an empty token is rejected here before any lookup.
 */
export const AuthorizationLive = Layer.effect(
  Authorization,
  Effect.map(makeAuthenticate, (authenticate) =>
    Authorization.of({
      bearer: (token) => {
        const value = Redacted.value(token)
        if (value.trim() === "")
          return Effect.fail(
            apiError(
              Unauthenticated,
              401,
              "unauthorized",
              "Unauthorized",
              "Missing bearer token: send `authorization: Bearer kz_…`."
            )
          )
        return authenticate(`Bearer ${value}`).pipe(
          Effect.mapError((e): Unauthenticated | TooManyRequests =>
            e._tag === "RateLimited"
              ? new TooManyRequests({
                  errors: [
                    {
                      status: "429",
                      code: "rate_limited",
                      title: "Too many requests",
                      detail: e.message,
                      meta: { retryAfterSeconds: e.retryAfterSeconds }
                    }
                  ]
                })
              : apiError(Unauthenticated, 401, "unauthorized", "Unauthorized", e.message)
          )
        )
      }
    })
  )
)

/** Every group's handlers, with what they need beyond the application's layers. */
export const layer = Layer.mergeAll(
  TeamsLive,
  MembersLive,
  InvitationsLive,
  ApiKeysLive,
  ServicesLive,
  DeploymentsLive,
  DetectionsLive,
  HealthLive,
  MetricsLive,
  RecommendationsLive,
  PermissionsLive,
  WebhooksLive,
  AlertsLive,
  RuntimeLive
).pipe(Layer.provide(LocalRepos))

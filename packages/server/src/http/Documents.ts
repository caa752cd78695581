/**
 * Domain values as JSON:API resource objects (the shapes `KyozoHttpApi` declares), and the list
 * document with its `links`. Encoding only: no rule and no lookup here.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type { ApiKey } from "@kyozo/api/domain/ApiKey"
import type { Deployment } from "@kyozo/api/domain/Deployment"
import type { HealthCheck } from "@kyozo/api/domain/HealthCheck"
import type { MetricSample } from "@kyozo/api/domain/MetricSample"
import type { ServiceDomain } from "@kyozo/api/domain/ServiceDomain"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import type { ServicePermission } from "@kyozo/api/domain/ServicePermission"
import type { Team } from "@kyozo/api/domain/Team"
import type { LogLine } from "@kyozo/core/engine/ContainerRuntime"
import { serviceUrl } from "@kyozo/core/engine/ServiceNaming"
import type { AlertRule } from "@kyozo/core/store/AlertRepo"
import type { Invitation } from "@kyozo/core/store/InvitationRepo"
import type { Webhook, WebhookDelivery } from "@kyozo/core/Webhook"
import { Effect } from "effect"

import type { DetectionView } from "../application/Detections.js"
import type { ServiceRecommendation } from "../application/Insights.js"
import type { MemberView } from "../application/Members.js"
import type { RuntimeStatusView } from "../application/RuntimeStatus.js"
import type { EdgeNames } from "../application/Services.js"

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString())

export const ref = (type: string, id: string | null) => ({ data: id === null ? null : { type, id } })

export const teamDoc = (t: Team) => ({
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

/**
 * `hostUrl` (and `httpsUrl`, `domains`) depend on the edge (its routes and ports), not on the row:
 * computed when encoding.
 */
export const serviceDoc = (
  s: ServiceInstance,
  hostUrl: string | null = null,
  names: Omit<EdgeNames, "hostUrl"> = { httpsUrl: null, domains: [] }
) => ({
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
    httpsUrl: names.httpsUrl,
    domains: [...names.domains],
    cpuMillis: s.cpuMillis,
    memoryMb: s.memoryMb,
    envKeys: Object.keys(s.env).sort(),
    healthConfig: s.healthConfig,
    restartPolicy: s.restartPolicy,
    restartCount: s.restartCount,
    replicas: s.replicas,
    autoscale: s.autoscale,
    volumes: s.volumes.map((v) => ({ name: v.name, target: v.target })),
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString()
  },
  relationships: {
    team: ref("teams", s.teamId),
    currentDeployment: ref("deployments", s.currentDeploymentId)
  }
})

export const deploymentDoc = (d: Deployment) => ({
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

export const apiKeyDoc = (k: ApiKey, key?: string) => ({
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

export const permissionDoc = (p: ServicePermission) => ({
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

export const memberDoc = (m: MemberView) => ({
  type: "members" as const,
  id: m.id,
  attributes: {
    email: m.email,
    name: m.name,
    role: m.role,
    createdAt: m.createdAt.toISOString(),
    state: m.state
  }
})

/** An invitation as the inviting team sees it (the invitee's email). */
export const sentInvitationDoc = (
  invitation: Pick<Invitation, "id" | "role" | "createdAt">,
  email: string
) => ({
  type: "invitations" as const,
  id: invitation.id,
  attributes: { email, role: invitation.role, createdAt: invitation.createdAt.toISOString() }
})

/** An invitation as the invitee sees it (the inviting team's name). */
export const receivedInvitationDoc = (invitation: Invitation, team: Team) => ({
  type: "invitations" as const,
  id: invitation.id,
  attributes: { teamName: team.name, role: invitation.role, createdAt: invitation.createdAt.toISOString() },
  relationships: { team: ref("teams", team.id) }
})

export const webhookDoc = (w: Webhook, secret?: string) => ({
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

export const deliveryDoc = (d: WebhookDelivery) => ({
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

export const alertRuleDoc = (r: AlertRule) => ({
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

export const logLineDoc = (l: LogLine, i: number) => ({
  type: "log-lines" as const,
  id: String(i + 1),
  attributes: { stream: l.stream, timestamp: l.timestamp, line: l.line }
})

export const detectionDoc = (d: DetectionView) => ({
  type: "detections" as const,
  id: d.id,
  attributes: { rootPath: d.rootPath, result: d.result, detectedAt: d.detectedAt.toISOString() },
  relationships: { service: ref("services", d.serviceId) }
})

export const healthCheckDoc = (c: HealthCheck) => ({
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
})

export const metricSampleDoc = (m: MetricSample) => ({
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
})

export const recommendationDoc = ({ serviceId, ...r }: ServiceRecommendation) => ({
  type: "recommendations" as const,
  id: `${serviceId}-${r.window}`,
  attributes: r,
  relationships: { service: ref("services", serviceId) }
})

export const runtimeStatusDoc = (s: RuntimeStatusView) => ({
  type: "runtime-status" as const,
  id: "current",
  attributes: {
    mode: s.mode,
    reason: s.reason,
    circuit_breaker_status: s.breaker,
    edge: s.edge,
    schedules: s.schedules
  }
})

/** The request's own URL (path and query), for `links.self`. */
export const selfLink = Effect.map(HttpServerRequest.HttpServerRequest, (r) => r.url)

export const withQuery = (path: string, params: Record<string, string | undefined>): string => {
  const q = Object.entries(params)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(
      ([k, v]) =>
        `${encodeURIComponent(k).replace(/%5B/g, "[").replace(/%5D/g, "]")}=${encodeURIComponent(v)}`
    )
  return q.length === 0 ? path : `${path}?${q.join("&")}`
}

/** A collection document of one page (no next page). */
export const listDoc = <A>(data: ReadonlyArray<A>) =>
  Effect.map(selfLink, (self) => ({ data, links: { self, next: null } }))

export const domainDoc = (d: ServiceDomain) => ({
  type: "domains" as const,
  id: d.hostname,
  attributes: { hostname: d.hostname, createdAt: d.createdAt.toISOString() },
  relationships: { service: ref("services", d.serviceId) }
})

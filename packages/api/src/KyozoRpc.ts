/**
 * The typed RPC contract of Kyozo (served at `/rpc`, NDJSON over HTTP). It mirrors the Deployer
 * seam of `@kyozo/workers/Deployer` (its wire shapes: domain/Deploy) and imports nothing from the server, so the CLI, the REPL and
 * scripts can build a client from it alone.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcMiddleware from "@effect/rpc/RpcMiddleware"
import { Context, Schema } from "effect"

import { AutoscalePolicy } from "./domain/AutoscalePolicy.js"
import { BreakerStatus } from "./domain/Breaker.js"
import {
  DeployError,
  DeploymentSummary,
  DeployProgress,
  DeployRequest,
  DeploySource,
  InvalidSource,
  RollbackRequest,
  ServiceView
} from "./domain/Deploy.js"
import type { DeploymentEvent } from "./domain/DeploymentEvent.js"
import { ApiKeyId, TeamId, UserId } from "./domain/Ids.js"
import { Role } from "./domain/Membership.js"
import { DomainError, HostnameInput, ServiceDomainView } from "./domain/ServiceDomain.js"
import { RestartPolicy } from "./domain/ServiceInstance.js"
import { DetectError, TopologyResult } from "./domain/Topology.js"

/** Missing, malformed, unknown, revoked or expired credentials. Never says which: that would help guessing. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}) {}

/** Too many requests with this API key: wait `retryAfterSeconds` (REST answers 429 with `Retry-After`). */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  retryAfterSeconds: Schema.Number
}) {
  override get message() {
    return `Rate limit exceeded for this API key: retry after ${this.retryAfterSeconds} s.`
  }
}

/** Authenticated, but the role in the team does not allow the operation. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  operation: Schema.String,
  role: Role,
  required: Role
}) {
  override get message() {
    return `Your role ${this.role} cannot ${this.operation}: it needs ${this.required} or above.`
  }
}

export const Principal = Schema.Struct({
  userId: UserId,
  teamId: TeamId,
  role: Role,
  keyId: ApiKeyId
})
export type Principal = typeof Principal.Type

/** Who is calling; provided to every handler by the Authentication middleware. */
export class CurrentPrincipal extends Context.Tag("@kyozo/api/CurrentPrincipal")<
  CurrentPrincipal,
  Principal
>() {}

/** Bearer-key authentication of every RPC (`authorization: Bearer kz_…`). */
export class Authentication extends RpcMiddleware.Tag<Authentication>()("@kyozo/api/Authentication", {
  provides: CurrentPrincipal,
  failure: Schema.Union(Unauthorized, RateLimited)
}) {}

/** Errors of operations that change something: the Deployer's, or a role too low. */
export const OperationError = Schema.Union(DeployError, Forbidden)

/** A log line on the wire (mirrors `LogLine` of the runtime). */
export const LogLineView = Schema.Struct({
  stream: Schema.Literal("stdout", "stderr"),
  /** Epoch milliseconds, when the engine knows it. */
  timestamp: Schema.NullOr(Schema.Number),
  line: Schema.String
})
export type LogLineView = typeof LogLineView.Type

/** A deployment event on the wire: dates as ISO strings (the stored model holds `Date`s). */
export const EventView = Schema.Struct({
  id: Schema.Number,
  teamId: Schema.String,
  serviceId: Schema.NullOr(Schema.String),
  deploymentId: Schema.NullOr(Schema.String),
  type: Schema.String,
  message: Schema.String,
  data: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  createdAt: Schema.String
})
export type EventView = typeof EventView.Type

/** A stored event as every front door sends it (SSE, RPC streams). */
export const toEventView = (e: DeploymentEvent): EventView => ({
  id: e.id,
  teamId: e.teamId,
  serviceId: e.serviceId,
  deploymentId: e.deploymentId,
  type: e.type,
  message: e.message,
  data: e.data,
  createdAt: e.createdAt.toISOString()
})

export const ScheduleView = Schema.Struct({
  pass: Schema.String,
  intervalMs: Schema.Number,
  runs: Schema.Number,
  failures: Schema.Number,
  lastStartedAt: Schema.NullOr(Schema.Number),
  lastFinishedAt: Schema.NullOr(Schema.Number),
  lastDurationMs: Schema.NullOr(Schema.Number),
  lastError: Schema.NullOr(Schema.String)
})

export const RuntimeStatusView = Schema.Struct({
  mode: Schema.Literal("docker", "mock"),
  reason: Schema.String,
  breaker: BreakerStatus,
  schedules: Schema.Array(ScheduleView)
})
export type RuntimeStatusView = typeof RuntimeStatusView.Type

export const WhoAmIView = Schema.Struct({
  ...Principal.fields,
  email: Schema.String,
  teamName: Schema.String,
  /** An instance admin creates teams, changes quotas and reads /metrics. */
  instanceAdmin: Schema.optionalWith(Schema.Boolean, { default: () => false })
})
export type WhoAmIView = typeof WhoAmIView.Type

export const IssuedKey = Schema.Struct({
  keyId: ApiKeyId,
  prefix: Schema.String,
  /** The key in clear: shown this once, never stored. */
  key: Schema.String,
  expiresAt: Schema.NullOr(Schema.String)
})
export type IssuedKey = typeof IssuedKey.Type

export class ApiKeyNotFound extends Schema.TaggedError<ApiKeyNotFound>()("ApiKeyNotFound", {
  keyId: Schema.String
}) {
  override get message() {
    return `No active API key ${this.keyId} in your team.`
  }
}

/** Only instance admins may do this (create teams, change quotas, read /metrics). */
export class InstanceAdminRequired extends Schema.TaggedError<InstanceAdminRequired>()(
  "InstanceAdminRequired",
  {
    operation: Schema.String
  }
) {
  override get message() {
    return `Only an instance admin can ${this.operation}: ask the admin of this Kyozo server.`
  }
}

/** No such user on this server. */
export class UserNotFound extends Schema.TaggedError<UserNotFound>()("UserNotFound", {
  userId: Schema.String
}) {
  override get message() {
    return `No user ${this.userId} on this server.`
  }
}

/** No such team, or one the caller may not see (the two are not told apart). */
export class TeamNotFound extends Schema.TaggedError<TeamNotFound>()("TeamNotFound", {
  teamId: Schema.String
}) {
  override get message() {
    return `No team ${this.teamId} visible to you.`
  }
}

/** A team's quotas: at most this many services, millicores and megabytes of memory. */
export const QuotaValue = Schema.Int.pipe(Schema.between(0, 1_000_000_000))
export const TeamQuotas = Schema.Struct({
  quotaServices: Schema.optional(QuotaValue),
  quotaCpuMillis: Schema.optional(QuotaValue),
  quotaMemoryMb: Schema.optional(QuotaValue)
})

export const TeamView = Schema.Struct({
  id: TeamId,
  name: Schema.String,
  quotaServices: Schema.Number,
  quotaCpuMillis: Schema.Number,
  quotaMemoryMb: Schema.Number
})
export type TeamView = typeof TeamView.Type

/** Bounded like the REST path ids: at most 128 characters, no NUL. */
export const RpcId = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(128),
  Schema.filter((s) => !s.includes("\0") || "must not contain NUL bytes")
)

/** A key's name, as REST bounds it. */
export const ApiKeyName = Schema.String.pipe(
  Schema.maxLength(200),
  Schema.filter((s) => !s.includes("\0") || "must not contain NUL bytes")
)
/** A key's lifetime: one second to ten years. */
export const KeyExpirySeconds = Schema.Int.pipe(Schema.between(1, 10 * 365 * 86_400))

/** No such member in the caller's team (never says whether the user exists elsewhere). */
export class MemberNotFound extends Schema.TaggedError<MemberNotFound>()("MemberNotFound", {
  userId: Schema.String
}) {
  override get message() {
    return `No member ${this.userId} in your team.`
  }
}

const ServiceRef = { service: RpcId }

/** An env variable's name, as REST bounds it. */
const EnvKey = Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/))
const EnvValue = Schema.String.pipe(
  Schema.maxLength(32_768),
  Schema.filter((s) => !s.includes("\0") || "must not contain NUL bytes")
)

/** A service's settings after a change, and the deployment rolling them out (null: nothing had to). */
export const ServiceUpdateView = Schema.Struct({
  service: ServiceView,
  /** Names only: values may be secrets. */
  envKeys: Schema.Array(Schema.String),
  rolloutDeploymentId: Schema.NullOr(Schema.String)
})
export type ServiceUpdateView = typeof ServiceUpdateView.Type

export class KyozoRpc extends RpcGroup.make(
  Rpc.make("Deploy", {
    payload: DeployRequest,
    success: DeployProgress,
    error: OperationError,
    stream: true
  }),
  Rpc.make("ListServices", { success: Schema.Array(ServiceView), error: DeployError }),
  Rpc.make("GetService", { payload: ServiceRef, success: ServiceView, error: DeployError }),
  Rpc.make("StopService", { payload: ServiceRef, success: ServiceView, error: OperationError }),
  Rpc.make("StartService", { payload: ServiceRef, success: ServiceView, error: OperationError }),
  Rpc.make("RestartService", { payload: ServiceRef, success: ServiceView, error: OperationError }),
  /** Data volumes are kept unless `volumes`; the answer names the removed and the kept ones. */
  Rpc.make("RemoveService", {
    payload: { ...ServiceRef, volumes: Schema.optional(Schema.Boolean) },
    success: Schema.Struct({ removed: Schema.Array(Schema.String), kept: Schema.Array(Schema.String) }),
    error: OperationError
  }),
  Rpc.make("ScaleService", {
    payload: { service: Schema.String, replicas: Schema.Int.pipe(Schema.between(1, 20)) },
    success: ServiceView,
    error: OperationError
  }),
  /** Changes a service's settings; env, limits and health check roll out behind the health gate. */
  Rpc.make("UpdateService", {
    payload: {
      service: RpcId,
      envSet: Schema.optional(Schema.Record({ key: EnvKey, value: EnvValue })),
      envUnset: Schema.optional(Schema.Array(EnvKey).pipe(Schema.maxItems(1000))),
      cpuMillis: Schema.optional(Schema.Int.pipe(Schema.between(10, 64_000))),
      memoryMb: Schema.optional(Schema.Int.pipe(Schema.between(6, 1_048_576))),
      restartPolicy: Schema.optional(RestartPolicy),
      /** Autoscaling between min and max replicas on a utilisation target; null turns it off. */
      autoscale: Schema.optional(Schema.NullOr(AutoscalePolicy))
    },
    success: ServiceUpdateView,
    error: OperationError
  }),
  /** The names of a service's env variables (never their values). */
  Rpc.make("ServiceEnvKeys", {
    payload: ServiceRef,
    success: Schema.Array(Schema.String),
    error: OperationError
  }),
  Rpc.make("Rollback", { payload: RollbackRequest, success: DeploymentSummary, error: OperationError }),
  Rpc.make("Logs", {
    payload: {
      service: RpcId,
      follow: Schema.optional(Schema.Boolean),
      tail: Schema.optional(Schema.Int.pipe(Schema.between(0, 10_000)))
    },
    success: LogLineView,
    error: DeployError,
    stream: true
  }),
  Rpc.make("Events", {
    payload: {
      afterId: Schema.optional(Schema.Int.pipe(Schema.between(0, Number.MAX_SAFE_INTEGER))),
      follow: Schema.optional(Schema.Boolean),
      service: Schema.optional(RpcId)
    },
    success: EventView,
    error: DeployError,
    stream: true
  }),
  Rpc.make("Detect", {
    payload: { source: DeploySource },
    success: TopologyResult,
    error: Schema.Union(DetectError, InvalidSource)
  }),
  Rpc.make("RuntimeStatus", { success: RuntimeStatusView }),
  Rpc.make("WhoAmI", { success: WhoAmIView }),
  /** A new key for the caller in the caller's team (admin or owner). */
  Rpc.make("IssueApiKey", {
    payload: {
      name: Schema.optional(ApiKeyName),
      expiresInSeconds: Schema.optional(KeyExpirySeconds),
      /** For another member of the team (admin or owner); default: the caller. */
      userId: Schema.optional(RpcId)
    },
    success: IssuedKey,
    error: Schema.Union(Forbidden, MemberNotFound)
  }),
  /** One's own key, or (admin or owner) anyone's in the team. */
  Rpc.make("RevokeApiKey", {
    payload: { keyId: RpcId },
    error: Schema.Union(Forbidden, ApiKeyNotFound)
  }),
  /** An instance admin changes a team's quotas (others: InstanceAdminRequired on their team, TeamNotFound elsewhere). */
  /** An instance admin makes another user an instance admin (or takes it back). */
  Rpc.make("SetInstanceAdmin", {
    payload: { userId: RpcId, instanceAdmin: Schema.Boolean },
    error: Schema.Union(InstanceAdminRequired, UserNotFound)
  }),
  Rpc.make("SetTeamQuotas", {
    payload: { teamId: RpcId, ...TeamQuotas.fields },
    success: TeamView,
    error: Schema.Union(InstanceAdminRequired, TeamNotFound)
  }),
  /** Custom domains of a service: the edge routes each to it by Host (and SNI over HTTPS). */
  Rpc.make("ListDomains", {
    payload: ServiceRef,
    success: Schema.Array(ServiceDomainView),
    error: OperationError
  }),
  /** Needs `manage`; a name another service has (any team's) is DomainTaken; a bad one InvalidDomain. */
  Rpc.make("AddDomain", {
    payload: { service: RpcId, hostname: HostnameInput },
    success: ServiceDomainView,
    error: Schema.Union(OperationError, DomainError)
  }),
  Rpc.make("RemoveDomain", {
    payload: { service: RpcId, hostname: HostnameInput },
    error: Schema.Union(OperationError, DomainError)
  })
).middleware(Authentication) {}

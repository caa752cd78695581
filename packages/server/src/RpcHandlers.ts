/**
 * The server side of `KyozoRpc`: each handler reads the caller from `CurrentPrincipal` (provided by
 * the Authentication middleware), asks `Policy` (the same module the REST handlers use: team role
 * plus per-service grants) before operations that change something, and calls the Deployer with the
 * caller's team. Team scoping lives in the Deployer and the repos; who may do what lives in Policy.
 */
import {
  CurrentPrincipal,
  type EventView,
  KyozoRpc,
  type LogLineView,
  type Principal,
  type TeamView,
  type WhoAmIView
} from "@kyozo/api/KyozoRpc"
import { ContainerManager } from "@kyozo/core/ContainerManager"
import type { DeploymentEvent } from "@kyozo/core/domain/DeploymentEvent"
import { TeamRepo } from "@kyozo/core/TeamRepo"
import { detectPlan } from "@kyozo/core/topology/TopologyDetector"
import { toResult } from "@kyozo/core/topology/Topology"
import { UserRepo } from "@kyozo/core/UserRepo"
import { Deployer } from "@kyozo/workers/Deployer"
import { Effect, Layer, Option, Stream } from "effect"
import { ApiKeys } from "./application/ApiKeys.js"
import { Services } from "./application/Services.js"
import { Sources } from "./application/Sources.js"
import { Teams } from "./application/Teams.js"
import { KeySessions } from "./KeySessions.js"
import { Policy } from "./Policy.js"

const toEventView = (e: DeploymentEvent): EventView => ({
  id: e.id,
  teamId: e.teamId,
  serviceId: e.serviceId,
  deploymentId: e.deploymentId,
  type: e.type,
  message: e.message,
  data: e.data,
  createdAt: e.createdAt.toISOString()
})

export const layer = KyozoRpc.toLayer(
  Effect.gen(function* () {
    const deployer = yield* Deployer
    const manager = yield* ContainerManager
    const users = yield* UserRepo
    const teams = yield* TeamRepo
    const policy = yield* Policy
    const sessions = yield* KeySessions
    const sources = yield* Sources
    const teamsApp = yield* Teams
    const apiKeys = yield* ApiKeys
    const servicesApp = yield* Services
    /** A stream of the caller's, ended when the caller's key stops being valid. */
    const guarded = <A, E, R>(f: (p: Principal) => Stream.Stream<A, E, R>) =>
      Stream.unwrap(Effect.map(CurrentPrincipal, (p) => f(p).pipe(sessions.guard(p.keyId))))

    return {
      Deploy: (request) =>
        Stream.unwrap(
          Effect.gen(function* () {
            const principal = yield* policy.requireDeploy(request.name)
            const source = yield* sources.resolve(principal.teamId, request.source)
            return deployer
              .deploy(principal.teamId, { ...request, source })
              .pipe(sessions.guard(principal.keyId))
          })
        ),
      ListServices: () => Effect.flatMap(CurrentPrincipal, (p) => deployer.list(p.teamId)),
      GetService: ({ service }) => Effect.flatMap(CurrentPrincipal, (p) => deployer.get(p.teamId, service)),
      ScaleService: ({ service, replicas }) =>
        Effect.flatMap(policy.requireService("scale services", service, "deploy"), (a) =>
          deployer.scale(a.principal.teamId, a.service.id, replicas)
        ),
      // The same rule as REST's PATCH: Services.update (policy, quotas, the rollout).
      UpdateService: ({ service, ...patch }) =>
        Effect.gen(function* () {
          const { service: row, rollout } = yield* servicesApp.update(service, patch)
          const p = yield* CurrentPrincipal
          return {
            service: yield* deployer.get(p.teamId, row.id),
            envKeys: Object.keys(row.env).sort(),
            rolloutDeploymentId: Option.getOrNull(rollout)
          }
        }),
      ServiceEnvKeys: ({ service }) =>
        Effect.map(policy.requireService("view the service", service, "view"), (a) =>
          Object.keys(a.service.env).sort()
        ),
      StopService: ({ service }) =>
        Effect.flatMap(policy.requireService("stop services", service, "deploy"), (a) =>
          deployer.stop(a.principal.teamId, a.service.id)
        ),
      StartService: ({ service }) =>
        Effect.flatMap(policy.requireService("start services", service, "deploy"), (a) =>
          deployer.start(a.principal.teamId, a.service.id)
        ),
      RestartService: ({ service }) =>
        Effect.flatMap(policy.requireService("restart services", service, "deploy"), (a) =>
          deployer.restart(a.principal.teamId, a.service.id)
        ),
      RemoveService: ({ service, volumes }) =>
        Effect.flatMap(policy.requireService("remove services", service, "manage"), (a) =>
          deployer.remove(a.principal.teamId, a.service.id, { volumes: volumes === true })
        ),
      Rollback: ({ service, to }) =>
        Effect.flatMap(policy.requireService("roll back services", service, "deploy"), (a) =>
          deployer.rollback(a.principal.teamId, a.service.id, to)
        ),
      Logs: ({ service, follow, tail }) =>
        guarded((p) =>
          deployer
            .logs(p.teamId, service, { follow: follow ?? false, tail: tail ?? 100 })
            .pipe(
              Stream.map((l): LogLineView => ({ stream: l.stream, timestamp: l.timestamp, line: l.line }))
            )
        ),
      Events: ({ afterId, follow, service }) =>
        guarded((p) =>
          deployer
            .events(p.teamId, {
              ...(afterId !== undefined ? { afterId } : {}),
              ...(service !== undefined ? { service } : {}),
              follow: follow ?? false
            })
            .pipe(Stream.map(toEventView))
        ),
      Detect: ({ source }) =>
        Effect.flatMap(CurrentPrincipal, (p) => sources.folderOf(p.teamId, source)).pipe(
          Effect.flatMap(detectPlan),
          Effect.map(toResult)
        ),
      RuntimeStatus: () =>
        Effect.gen(function* () {
          const breaker = yield* manager.circuitBreakerStatus
          const schedules = yield* manager.schedules
          return {
            mode: manager.runtimeMode,
            reason: manager.runtimeReason,
            breaker,
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
        }),
      WhoAmI: () =>
        Effect.gen(function* () {
          const p = yield* CurrentPrincipal
          const user = yield* users.findById(p.userId)
          const team = yield* teams.findById(p.teamId)
          return {
            ...p,
            email: Option.match(user, { onNone: () => "", onSome: (u) => u.email }),
            teamName: Option.match(team, { onNone: () => "", onSome: (t) => t.name }),
            instanceAdmin: Option.match(user, { onNone: () => false, onSome: (u) => u.instanceAdmin })
          } satisfies WhoAmIView
        }).pipe(Effect.orDie),
      IssueApiKey: (input) =>
        Effect.map(apiKeys.issue(input), ({ apiKey, key }) => ({
          keyId: apiKey.id,
          prefix: apiKey.prefix,
          key,
          expiresAt: apiKey.expiresAt === null ? null : apiKey.expiresAt.toISOString()
        })),
      RevokeApiKey: ({ keyId }) => apiKeys.revoke(keyId),
      SetInstanceAdmin: ({ userId, instanceAdmin }) => teamsApp.setInstanceAdmin(userId, instanceAdmin),
      SetTeamQuotas: ({ teamId, ...quotas }) =>
        Effect.map(teamsApp.setQuotas(teamId, quotas), (t): TeamView => ({
          id: t.id,
          name: t.name,
          quotaServices: t.quotaServices,
          quotaCpuMillis: t.quotaCpuMillis,
          quotaMemoryMb: t.quotaMemoryMb
        }))
    }
  })
).pipe(
  Layer.provide(
    Layer.mergeAll(Policy.Default, Sources.Default, Teams.Default, ApiKeys.Default, Services.Default)
  )
)

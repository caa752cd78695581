/**
 * The server side of `KyozoRpc`: each handler reads the caller from `CurrentPrincipal` (provided by
 * the Authentication middleware), asks `Policy` (the same module the REST handlers use: team role
 * plus per-service grants) before operations that change something, and calls the Deployer with the
 * caller's team. Team scoping lives in the Deployer and the repos; who may do what lives in Policy.
 */
import {
  ApiKeyNotFound,
  CurrentPrincipal,
  type EventView,
  KyozoRpc,
  type LogLineView,
  type WhoAmIView
} from "@kyozo/api/KyozoRpc"
import { ApiKeyRepo } from "@kyozo/core/ApiKeyRepo"
import { ContainerManager } from "@kyozo/core/ContainerManager"
import type { DeploymentEvent } from "@kyozo/core/domain/DeploymentEvent"
import { ApiKeyId } from "@kyozo/core/domain/Ids"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { TeamRepo } from "@kyozo/core/TeamRepo"
import { detectPlan } from "@kyozo/core/topology/TopologyDetector"
import { toResult } from "@kyozo/core/topology/Topology"
import * as Uploads from "@kyozo/core/Uploads"
import * as Workspaces from "@kyozo/core/Workspaces"
import { UserRepo } from "@kyozo/core/UserRepo"
import { Deployer, type DeploySource, InvalidSource } from "@kyozo/workers/Deployer"
import { Effect, Layer, Option, Stream } from "effect"
import * as fs from "node:fs"
import { Policy, requireRole } from "./Policy.js"

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
    const config = yield* KyozoConfig
    const users = yield* UserRepo
    const teams = yield* TeamRepo
    const keys = yield* ApiKeyRepo
    const policy = yield* Policy

    /** The folder of a source on this server; an unknown upload is InvalidSource, like a bad path. */
    const folderOf = (source: DeploySource) =>
      Effect.flatMap(CurrentPrincipal, (principal) => {
        if (source._tag === "Upload") {
          const dir = Uploads.uploadDir(config.dataDir, principal.teamId, source.uploadId)
          return dir !== undefined && fs.existsSync(dir)
            ? Effect.succeed(dir)
            : Effect.fail(
                new InvalidSource({ source: source.uploadId, reason: "no such upload in your team" })
              )
        }
        // Same rule as the deployer: a path must lie inside the workspaces root.
        return Workspaces.resolveInside(Workspaces.rootFor(config.dataDir), source.path).pipe(
          Effect.mapError((e) => new InvalidSource({ source: source.path, reason: e.message }))
        )
      })

    return {
      Deploy: (request) =>
        Stream.unwrap(
          Effect.map(policy.requireDeploy(request.name), (principal) =>
            deployer.deploy(principal.teamId, request)
          )
        ),
      ListServices: () => Effect.flatMap(CurrentPrincipal, (p) => deployer.list(p.teamId)),
      GetService: ({ service }) => Effect.flatMap(CurrentPrincipal, (p) => deployer.get(p.teamId, service)),
      ScaleService: ({ service, replicas }) =>
        Effect.flatMap(policy.requireService("scale services", service, "deploy"), (a) =>
          deployer.scale(a.principal.teamId, a.service.id, replicas)
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
      RemoveService: ({ service }) =>
        Effect.flatMap(policy.requireService("remove services", service, "manage"), (a) =>
          deployer.remove(a.principal.teamId, a.service.id)
        ),
      Rollback: ({ service, to }) =>
        Effect.flatMap(policy.requireService("roll back services", service, "deploy"), (a) =>
          deployer.rollback(a.principal.teamId, a.service.id, to)
        ),
      Logs: ({ service, follow, tail }) =>
        Stream.unwrap(
          Effect.map(CurrentPrincipal, (p) =>
            deployer
              .logs(p.teamId, service, { follow: follow ?? false, tail: tail ?? 100 })
              .pipe(
                Stream.map((l): LogLineView => ({ stream: l.stream, timestamp: l.timestamp, line: l.line }))
              )
          )
        ),
      Events: ({ afterId, follow, service }) =>
        Stream.unwrap(
          Effect.map(CurrentPrincipal, (p) =>
            deployer
              .events(p.teamId, {
                ...(afterId !== undefined ? { afterId } : {}),
                ...(service !== undefined ? { service } : {}),
                follow: follow ?? false
              })
              .pipe(Stream.map(toEventView))
          )
        ),
      Detect: ({ source }) => folderOf(source).pipe(Effect.flatMap(detectPlan), Effect.map(toResult)),
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
            teamName: Option.match(team, { onNone: () => "", onSome: (t) => t.name })
          } satisfies WhoAmIView
        }).pipe(Effect.orDie),
      IssueApiKey: ({ name, expiresInSeconds }) =>
        Effect.gen(function* () {
          const p = yield* requireRole("issue API keys", "admin")
          const expiresAt =
            expiresInSeconds === undefined ? null : new Date(Date.now() + expiresInSeconds * 1000)
          const { apiKey, key } = yield* keys
            .issue({ teamId: p.teamId, userId: p.userId, name: name ?? "", expiresAt })
            .pipe(Effect.orDie)
          return {
            keyId: apiKey.id,
            prefix: apiKey.prefix,
            key,
            expiresAt: apiKey.expiresAt === null ? null : apiKey.expiresAt.toISOString()
          }
        }),
      RevokeApiKey: ({ keyId }) =>
        Effect.gen(function* () {
          const p = yield* requireRole("revoke API keys", "admin")
          const revoked = yield* keys.revoke(p.teamId, ApiKeyId.make(keyId)).pipe(Effect.orDie)
          if (!revoked) return yield* new ApiKeyNotFound({ keyId })
        })
    }
  })
).pipe(Layer.provide(Policy.Default))

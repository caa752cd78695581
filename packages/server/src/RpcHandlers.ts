/**
 * The server side of `KyozoRpc`: each handler reads the caller from `CurrentPrincipal` (provided by
 * the Authentication middleware), checks the role for operations that change something, and calls
 * the Deployer with the caller's team. Team scoping lives in the Deployer; the role check lives here.
 */
import {
  ApiKeyNotFound,
  CurrentPrincipal,
  type EventView,
  Forbidden,
  KyozoRpc,
  type LogLineView,
  type WhoAmIView
} from "@kyozo/api/KyozoRpc"
import { ApiKeyRepo } from "@kyozo/core/ApiKeyRepo"
import { ContainerManager } from "@kyozo/core/ContainerManager"
import type { DeploymentEvent } from "@kyozo/core/domain/DeploymentEvent"
import { ApiKeyId } from "@kyozo/core/domain/Ids"
import { type Role, roleAtLeast } from "@kyozo/core/domain/Membership"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { TeamRepo } from "@kyozo/core/TeamRepo"
import { detectPlan } from "@kyozo/core/topology/TopologyDetector"
import { toResult } from "@kyozo/core/topology/Topology"
import * as Uploads from "@kyozo/core/Uploads"
import * as Workspaces from "@kyozo/core/Workspaces"
import { UserRepo } from "@kyozo/core/UserRepo"
import { Deployer, type DeploySource, InvalidSource } from "@kyozo/workers/Deployer"
import { Effect, Option, Stream } from "effect"
import * as fs from "node:fs"

/** Changing services needs at least "member"; viewers read. */
const OPERATE: Role = "member"

const requireRole = (operation: string, required: Role = OPERATE) =>
  Effect.flatMap(CurrentPrincipal, (principal) =>
    roleAtLeast(principal.role, required)
      ? Effect.succeed(principal)
      : Effect.fail(new Forbidden({ operation, role: principal.role, required }))
  )

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
          Effect.map(requireRole("deploy"), (principal) => deployer.deploy(principal.teamId, request))
        ),
      ListServices: () => Effect.flatMap(CurrentPrincipal, (p) => deployer.list(p.teamId)),
      GetService: ({ service }) => Effect.flatMap(CurrentPrincipal, (p) => deployer.get(p.teamId, service)),
      StopService: ({ service }) =>
        Effect.flatMap(requireRole("stop services"), (p) => deployer.stop(p.teamId, service)),
      StartService: ({ service }) =>
        Effect.flatMap(requireRole("start services"), (p) => deployer.start(p.teamId, service)),
      RestartService: ({ service }) =>
        Effect.flatMap(requireRole("restart services"), (p) => deployer.restart(p.teamId, service)),
      RemoveService: ({ service }) =>
        Effect.flatMap(requireRole("remove services"), (p) => deployer.remove(p.teamId, service)),
      Rollback: ({ service, to }) =>
        Effect.flatMap(requireRole("roll back services"), (p) => deployer.rollback(p.teamId, service, to)),
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
)

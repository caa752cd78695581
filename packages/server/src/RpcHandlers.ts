/**
 * The server side of `KyozoRpc`: adapters over the application services, like the REST handlers
 * (decode, call, encode). The services read the caller from `CurrentPrincipal` (provided by the
 * Authentication middleware), apply the policy and scope everything to the caller's team; streams
 * end when the caller's key stops being valid.
 */
import { toDomainView } from "@kyozo/api/domain/ServiceDomain"
import { KyozoRpc, type LogLineView, type TeamView, toEventView } from "@kyozo/api/KyozoRpc"
import { Effect, Layer, Option, Stream } from "effect"

import { ApiKeys } from "./application/ApiKeys.js"
import * as ApplicationLive from "./application/ApplicationLive.js"
import { Deployments } from "./application/Deployments.js"
import { Detections } from "./application/Detections.js"
import { Domains } from "./application/Domains.js"
import { RuntimeStatus } from "./application/RuntimeStatus.js"
import { Services } from "./application/Services.js"
import { Teams } from "./application/Teams.js"

export const layer = KyozoRpc.toLayer(
  Effect.gen(function* () {
    const teams = yield* Teams
    const apiKeys = yield* ApiKeys
    const services = yield* Services
    const deployments = yield* Deployments
    const detections = yield* Detections
    const runtime = yield* RuntimeStatus
    const domains = yield* Domains

    return {
      Deploy: (request) => deployments.deploy(request),
      ListServices: () => services.views,
      GetService: ({ service }) => services.view(service),
      ScaleService: ({ service, replicas }) => services.scale(service, replicas),
      // The same rule as REST's PATCH: Services.update (policy, quotas, the rollout).
      UpdateService: ({ service, ...patch }) =>
        Effect.gen(function* () {
          const { service: row, rollout } = yield* services.update(service, patch)
          return {
            service: yield* services.view(row.id),
            envKeys: Object.keys(row.env).sort(),
            rolloutDeploymentId: Option.getOrNull(rollout)
          }
        }),
      ServiceEnvKeys: ({ service }) => services.envKeys(service),
      StopService: ({ service }) => services.stop(service),
      StartService: ({ service }) => services.start(service),
      RestartService: ({ service }) => services.restart(service),
      RemoveService: ({ service, volumes }) => services.remove(service, { volumes: volumes === true }),
      Rollback: ({ service, to }) => Effect.map(deployments.rollback(service, to), (r) => r.summary),
      Logs: ({ service, follow, tail }) =>
        services
          .logs(service, { follow, tail })
          .pipe(Stream.map((l): LogLineView => ({ stream: l.stream, timestamp: l.timestamp, line: l.line }))),
      Events: (options) => deployments.eventStream(options).pipe(Stream.map(toEventView)),
      Detect: ({ source }) => detections.detect(source),
      RuntimeStatus: () =>
        Effect.map(runtime.status, ({ mode, reason, breaker, schedules }) => ({
          mode,
          reason,
          breaker,
          schedules
        })),
      WhoAmI: () => teams.whoAmI,
      IssueApiKey: (input) =>
        Effect.map(apiKeys.issue(input), ({ apiKey, key }) => ({
          keyId: apiKey.id,
          prefix: apiKey.prefix,
          key,
          expiresAt: apiKey.expiresAt === null ? null : apiKey.expiresAt.toISOString()
        })),
      RevokeApiKey: ({ keyId }) => apiKeys.revoke(keyId),
      SetInstanceAdmin: ({ userId, instanceAdmin }) => teams.setInstanceAdmin(userId, instanceAdmin),
      SetTeamQuotas: ({ teamId, ...quotas }) =>
        Effect.map(teams.setQuotas(teamId, quotas), (t): TeamView => ({
          id: t.id,
          name: t.name,
          quotaServices: t.quotaServices,
          quotaCpuMillis: t.quotaCpuMillis,
          quotaMemoryMb: t.quotaMemoryMb
        })),
      ListDomains: ({ service }) => Effect.map(domains.list(service), (rows) => rows.map(toDomainView)),
      AddDomain: ({ hostname, service }) =>
        Effect.map(domains.add(service, hostname), ({ domain }) => toDomainView(domain)),
      RemoveDomain: ({ hostname, service }) => domains.remove(service, hostname)
    }
  })
).pipe(Layer.provide(ApplicationLive.layer))

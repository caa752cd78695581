/**
 * The cleanup pass. Touches only objects labelled `kyozo.managed=true` (checked again on every
 * object, not only trusted to the engine's filter):
 * - removes stopped (exited, dead, or created and never started) containers that are superseded (their `kyozo.deployment` is not the service's
 *   current deployment, and that deployment is not still in progress) or whose service is deleted
 *   or unknown; running containers are never removed here;
 * - prunes health checks and metric samples past retention and rolls "1m" samples up into "1h";
 * - prunes dangling kyozo images and kyozo build cache.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { ContainerRuntime, type ContainerSummary } from "@kyozo/core/ContainerRuntime"
import { HealthCheckRepo } from "@kyozo/core/HealthCheckRepo"
import * as Labels from "@kyozo/core/Labels"
import { emptyReport, type PassReport } from "@kyozo/core/MaintenancePasses"
import { MetricSampleRepo } from "@kyozo/core/MetricSampleRepo"
import { Clock, Duration, Effect, Either } from "effect"
import { WorkerSettings } from "./WorkerSettings.js"

const inProgressDeployment = ["pending", "building", "starting", "health-check", "switching"]

interface ServiceRow {
  readonly id: string
  readonly current_deployment_id: string | null
  readonly gone: boolean
}

/** Why a container should go, or null to keep it. */
export const removalReason = (
  container: ContainerSummary,
  services: ReadonlyMap<string, ServiceRow>,
  deploymentsInProgress: ReadonlySet<string>
): string | null => {
  if (!Labels.isManaged(container.labels)) return null
  // Running, paused or restarting containers are never cleanup's business.
  if (container.state !== "exited" && container.state !== "dead" && container.state !== "created") return null
  const serviceId = container.labels[Labels.Service]
  const service = serviceId ? services.get(serviceId) : undefined
  if (!service) return "service unknown"
  if (service.gone) return "service deleted"
  const deployment = container.labels[Labels.Deployment]
  if (deployment && deploymentsInProgress.has(deployment)) return null
  if (deployment !== undefined && deployment === service.current_deployment_id) return null
  return `superseded (deployment ${deployment ?? "none"}, current ${service.current_deployment_id ?? "none"})`
}

export class CleanupWorker extends Effect.Service<CleanupWorker>()("@kyozo/workers/CleanupWorker", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runtime = yield* ContainerRuntime
    const healthChecks = yield* HealthCheckRepo
    const metricSamples = yield* MetricSampleRepo

    const containers = Effect.gen(function* () {
      const { concurrency } = yield* WorkerSettings
      const listed = yield* runtime.listContainers({ all: true, labels: { [Labels.Managed]: "true" } })
      const managed = listed.filter((c) => Labels.isManaged(c.labels))
      const serviceIds = [
        ...new Set(managed.map((c) => c.labels[Labels.Service]).filter((id): id is string => !!id))
      ]
      const deploymentIds = [
        ...new Set(managed.map((c) => c.labels[Labels.Deployment]).filter((id): id is string => !!id))
      ]
      const services = new Map(
        serviceIds.length === 0
          ? []
          : (yield* sql<ServiceRow>`
              SELECT id, current_deployment_id, (deleted_at IS NOT NULL OR desired_state = 'removed') AS gone
              FROM container_service_instances WHERE ${sql.in("id", serviceIds)}`).map(
              (s) => [s.id, s] as const
            )
      )
      const inProgress = new Set(
        deploymentIds.length === 0
          ? []
          : (yield* sql<{ id: string }>`SELECT id FROM deployments
              WHERE ${sql.in("id", deploymentIds)} AND ${sql.in("status", inProgressDeployment)}`).map(
              (d) => d.id
            )
      )
      const doomed = managed.flatMap((c) => {
        const reason = removalReason(c, services, inProgress)
        return reason === null ? [] : [{ container: c, reason }]
      })
      const outcomes = yield* Effect.forEach(
        doomed,
        ({ container, reason }) =>
          runtime.removeContainer(container.id).pipe(
            Effect.tap(() => Effect.logInfo(`removed container ${container.name}: ${reason}`)),
            Effect.tapError((e) =>
              Effect.logWarning(`removing container ${container.name} failed: ${e.message}`)
            ),
            Effect.either
          ),
        { concurrency }
      )
      const removed = outcomes.filter(Either.isRight).length
      return { examined: managed.length, removed, failures: outcomes.length - removed }
    })

    /** One housekeeping step: its failure is counted, and the other steps still run. */
    const step = <A>(name: string, effect: Effect.Effect<A, unknown>, describe: (a: A) => string) =>
      effect.pipe(
        Effect.map((a) => ({ note: describe(a), failed: 0 })),
        Effect.catchAllCause((cause) =>
          Effect.logWarning(`cleanup step ${name} failed`, cause).pipe(
            Effect.as({ note: `${name} failed`, failed: 1 })
          )
        )
      )

    const run: Effect.Effect<PassReport, unknown> = Effect.gen(function* () {
      const settings = yield* WorkerSettings
      const now = yield* Clock.currentTimeMillis
      const before = (d: Duration.Duration) => new Date(now - Duration.toMillis(d))
      const c = yield* containers.pipe(
        Effect.catchAllCause((cause) =>
          Effect.logWarning("listing containers for cleanup failed", cause).pipe(
            Effect.as({ examined: 0, removed: 0, failures: 1 })
          )
        )
      )
      const steps = [
        yield* step(
          "health retention",
          healthChecks.pruneOlderThan(before(settings.healthRetention)),
          (n) => `${n} health checks pruned`
        ),
        yield* step(
          "downsample",
          Effect.flatMap(metricSamples.hoursPendingDownsample(new Date(now)), (hours) =>
            Effect.as(Effect.forEach(hours, metricSamples.downsample, { discard: true }), hours.length)
          ),
          (n) => `${n} hours downsampled`
        ),
        yield* step(
          "metrics retention",
          metricSamples.pruneOlderThan("1m", before(settings.metricsRetention)),
          (n) => `${n} 1m samples pruned`
        ),
        yield* step(
          "hourly metrics retention",
          metricSamples.pruneOlderThan("1h", before(settings.hourlyMetricsRetention)),
          (n) => `${n} 1h samples pruned`
        ),
        yield* step(
          "images",
          runtime.pruneImages({ labels: { [Labels.Managed]: "true" } }),
          (r) => `${r.removed.length} images pruned (${r.reclaimedBytes} bytes)`
        ),
        yield* step(
          "build cache",
          runtime.pruneBuildCache({ labels: { [Labels.Managed]: "true" } }),
          (r) => `build cache: ${r.reclaimedBytes} bytes reclaimed`
        )
      ]
      return {
        ...emptyReport("cleanup"),
        examined: c.examined,
        acted: c.removed,
        failures: c.failures + steps.reduce((n, s) => n + s.failed, 0),
        notes: steps.map((s) => s.note)
      }
    })

    return { run } as const
  }),
  dependencies: [HealthCheckRepo.Default, MetricSampleRepo.Default]
}) {}

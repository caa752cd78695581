/**
 * The cleanup pass. Touches only objects labelled `kyozo.managed=true` (checked again on every
 * object, not only trusted to the engine's filter):
 * - removes stopped (exited, dead, or created and never started) containers that are superseded (their `kyozo.deployment` is not the service's
 *   current deployment, and that deployment is not still in progress) or whose service is deleted
 *   or unknown; running containers are never removed here;
 * - prunes health checks and metric samples past retention and rolls "1m" samples up into "1h";
 * - removes dangling (untagged, unused) kyozo images and trims the engine's build cache to a budget
 *   (it is host-wide and unlabelled: least recently used entries beyond 10 GiB go);
 * - per service, removes images beyond the retained rollback set (never the running one), and
 *   networks and volumes labelled for a deleted or unknown service;
 * - disk-aware: past a threshold of kyozo image bytes, keeps fewer rollback images;
 * - prunes finished workflow history (@effect/cluster's `cluster_messages` / `cluster_replies`).
 * A service with an unfinished deployment keeps its images, networks and volumes (the deploy may be
 * building, starting or rolling back to them); of its containers only exited superseded ones go.
 * Every removal appends a `cleanup.removed` event.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import { ContainerRuntime, type ContainerSummary } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { VolumeLabel } from "@kyozo/core/engine/ServiceVolumes"
import { HealthCheckRepo } from "@kyozo/core/store/HealthCheckRepo"
import { MetricSampleRepo } from "@kyozo/core/store/MetricSampleRepo"
import { emptyReport, type PassReport } from "@kyozo/core/supervision/MaintenancePasses"
import { Clock, Context, Duration, Effect, Either } from "effect"

import { WorkerSettings } from "../WorkerSettings.js"

const inProgressDeployment = ["pending", "building", "starting", "health-check", "switching"]

export interface CleanupSettingsShape {
  /** Images kept per service for rollback (the running one is kept on top of these). */
  readonly keepImages: number
  /** When kyozo's images take more than this many bytes, prune harder: keep `keepImagesUnderPressure`. */
  readonly diskThresholdBytes: number
  readonly keepImagesUnderPressure: number
  /** Finished workflow history older than this is deleted. */
  readonly workflowRetention: Duration.Duration
  /** The engine's build cache (host-wide, BuildKit's layer cache) is trimmed to this many bytes. */
  readonly buildCacheKeepBytes: number
}

export class CleanupSettings extends Context.Reference<CleanupSettings>()("@kyozo/workers/CleanupSettings", {
  defaultValue: (): CleanupSettingsShape => ({
    keepImages: 5,
    diskThresholdBytes: 20 * 1024 ** 3,
    keepImagesUnderPressure: 1,
    workflowRetention: Duration.days(7),
    buildCacheKeepBytes: 10 * 1024 ** 3
  })
}) {}

/** @effect/cluster ids are snowflakes: milliseconds since 2025-01-01 shifted left by 22 bits. */
const SnowflakeEpochMillis = Date.UTC(2025, 0, 1)
export const snowflakeAt = (epochMillis: number): bigint =>
  BigInt(Math.max(0, epochMillis - SnowflakeEpochMillis)) << 22n

/** How many rollback images a service keeps, given kyozo's total image bytes. */
export const imagesToKeep = (totalBytes: number, settings: CleanupSettingsShape): number =>
  totalBytes > settings.diskThresholdBytes
    ? Math.min(settings.keepImages, settings.keepImagesUnderPressure)
    : settings.keepImages

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
    // ImageBuilder lists a service's images by `kyozo.service` alone; cleanup gives it a view of the
    // engine that only ever lists kyozo-managed images, so a foreign image carrying a look-alike
    // label is never pruned.
    const managedOnly = {
      ...runtime,
      listImages: (filter?: { readonly labels?: Record<string, string | null> }) =>
        Effect.map(runtime.listImages({ labels: { ...filter?.labels, [Labels.Managed]: "true" } }), (list) =>
          list.filter((i) => Labels.isManaged(i.labels))
        )
    }
    const images = yield* ImageBuilder.pipe(
      Effect.provide(ImageBuilder.Default),
      Effect.provideService(ContainerRuntime, managedOnly),
      Effect.orDie
    )

    /**
     * Appends `cleanup.removed`, only with the team and service the database knows (the team is
     * looked up from the service when the object carries none, as workflow history does).
     */
    const removedEvent = (
      kind: "container" | "image" | "network" | "volume" | "workflow-history",
      name: string,
      reason: string,
      owner: { readonly teamId?: string | undefined; readonly serviceId?: string | undefined }
    ) => {
      const data = JSON.stringify({ kind, name, reason })
      const message = `removed ${kind} ${name}: ${reason}`
      return sql`INSERT INTO container_deployment_events (team_id, service_id, type, message, data)
        SELECT t.id, (SELECT s.id FROM container_service_instances s WHERE s.id = ${owner.serviceId ?? null}),
               'cleanup.removed', ${message}, ${data}::jsonb
        FROM teams t WHERE t.id = COALESCE(${owner.teamId ?? null},
          (SELECT s.team_id FROM container_service_instances s WHERE s.id = ${owner.serviceId ?? null}))`.pipe(
        Effect.asVoid,
        Effect.catchAllCause((cause) => Effect.logWarning("recording cleanup.removed failed", cause))
      )
    }

    /** Services with an unfinished deployment: cleanup leaves all their objects alone. */
    const deployingServices = Effect.map(
      sql<{ service_id: string }>`SELECT DISTINCT service_id FROM deployments
        WHERE status NOT IN ('succeeded', 'failed', 'compensated', 'superseded', 'unchanged')`,
      (rows) => new Set(rows.map((r) => r.service_id))
    )

    const servicesById = (ids: ReadonlyArray<string>) =>
      ids.length === 0
        ? Effect.succeed(new Map<string, ServiceRow & { team_id: string; image: string | null }>())
        : Effect.map(
            sql<ServiceRow & { team_id: string; image: string | null }>`
              SELECT id, team_id, current_deployment_id, image,
                     (deleted_at IS NOT NULL OR desired_state = 'removed') AS gone
              FROM container_service_instances WHERE ${sql.in("id", ids)}`,
            (rows) => new Map(rows.map((s) => [s.id, s] as const))
          )

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
      // Containers of a deploying service: only the in-progress deployment's are protected (see
      // removalReason); an exited superseded one can go, the deploy never returns to it.
      const doomed = managed.flatMap((c) => {
        const reason = removalReason(c, services, inProgress)
        return reason === null ? [] : [{ container: c, reason }]
      })
      const outcomes = yield* Effect.forEach(
        doomed,
        ({ container, reason }) =>
          runtime.removeContainer(container.id).pipe(
            Effect.tap(() => Effect.logInfo(`removed container ${container.name}: ${reason}`)),
            Effect.tap(() =>
              removedEvent("container", container.name, reason, {
                teamId: container.labels[Labels.Team],
                serviceId: container.labels[Labels.Service]
              })
            ),
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

    /** Images beyond each service's rollback set; fewer kept when kyozo's images pass the threshold. */
    const serviceImages = Effect.gen(function* () {
      const settings = yield* CleanupSettings
      const all = (yield* runtime.listImages({ labels: { [Labels.Managed]: "true" } })).filter((i) =>
        Labels.isManaged(i.labels)
      )
      const totalBytes = all.reduce((n, i) => n + i.sizeBytes, 0)
      const keep = imagesToKeep(totalBytes, settings)
      const serviceIds = [
        ...new Set(all.map((i) => i.labels[Labels.Service]).filter((id): id is string => !!id))
      ]
      const services = yield* servicesById(serviceIds)
      const deploying = yield* deployingServices
      // Images still used by any container (running or not) are protected, as is the recorded one.
      const containers = yield* runtime.listContainers({ all: true, labels: { [Labels.Managed]: "true" } })
      let removed = 0
      for (const serviceId of serviceIds) {
        if (deploying.has(serviceId)) continue
        const service = services.get(serviceId)
        const protect = [
          ...containers.filter((c) => c.labels[Labels.Service] === serviceId).map((c) => c.image),
          ...(service?.image ? [service.image] : [])
        ]
        // A deleted or unknown service keeps no rollback set.
        const keepHere = service === undefined || service.gone ? 0 : keep
        const result = yield* images.pruneRetained(serviceId, keepHere, protect)
        for (const name of result.removed) {
          yield* removedEvent(
            "image",
            name,
            keepHere === 0 ? "service gone" : `beyond the newest ${keepHere}`,
            {
              teamId:
                service?.team_id ??
                all.find((i) => i.labels[Labels.Service] === serviceId)?.labels[Labels.Team],
              serviceId
            }
          )
        }
        removed += result.removed.length
      }
      return { removed, totalBytes, keep, pressure: keep < settings.keepImages }
    })

    /**
     * Untagged kyozo images no container uses. Not `runtime.pruneImages`: that prunes every unused
     * kyozo image, tagged ones too, which would empty the rollback sets kept above.
     */
    const danglingImages = Effect.gen(function* () {
      const deploying = yield* deployingServices
      const used = new Set(
        (yield* runtime.listContainers({ all: true, labels: { [Labels.Managed]: "true" } })).map(
          (c) => c.image
        )
      )
      const dangling = (yield* runtime.listImages({ labels: { [Labels.Managed]: "true" } })).filter(
        (i) =>
          Labels.isManaged(i.labels) &&
          i.tags.length === 0 &&
          !used.has(i.id) &&
          !deploying.has(i.labels[Labels.Service] ?? "")
      )
      let removed = 0
      let reclaimedBytes = 0
      for (const image of dangling) {
        const ok = yield* Effect.either(runtime.removeImage(image.id))
        if (Either.isLeft(ok)) {
          // 409: a child image or a container still refers to it; the next pass looks again.
          yield* Effect.logInfo(`keeping dangling image ${image.id}: ${ok.left.message}`)
          continue
        }
        removed++
        reclaimedBytes += image.sizeBytes
        yield* removedEvent("image", image.id, "dangling", {
          teamId: image.labels[Labels.Team],
          serviceId: image.labels[Labels.Service]
        })
      }
      return { removed, reclaimedBytes }
    })

    /** Networks and volumes labelled for a service that is deleted or unknown. */
    const orphanedNetworksAndVolumes = Effect.gen(function* () {
      const networks = (yield* runtime.listNetworks({ labels: { [Labels.Managed]: "true" } })).filter(
        (n) => Labels.isManaged(n.labels) && !!n.labels[Labels.Service]
      )
      // A service's declared data volumes (ServiceVolumes.ts) are never cleanup's to remove, not
      // even of a deleted service: only `kyozo rm --volumes` removes them.
      const volumes = (yield* runtime.listVolumes({ labels: { [Labels.Managed]: "true" } })).filter(
        (v) => Labels.isManaged(v.labels) && !!v.labels[Labels.Service] && v.labels[VolumeLabel] === undefined
      )
      const services = yield* servicesById([
        ...new Set([...networks, ...volumes].map((o) => o.labels[Labels.Service]!))
      ])
      const deploying = yield* deployingServices
      const orphan = (labels: Record<string, string>) => {
        const id = labels[Labels.Service]!
        if (deploying.has(id)) return null
        const service = services.get(id)
        return service === undefined ? "service unknown" : service.gone ? "service deleted" : null
      }
      let removed = 0
      for (const network of networks) {
        const reason = orphan(network.labels)
        if (reason === null) continue
        const ok = yield* Effect.either(runtime.removeNetwork(network.id))
        if (Either.isLeft(ok)) {
          yield* Effect.logWarning(`removing network ${network.name} failed: ${ok.left.message}`)
          continue
        }
        removed++
        yield* removedEvent("network", network.name, reason, {
          teamId: network.labels[Labels.Team],
          serviceId: network.labels[Labels.Service]
        })
      }
      for (const volume of volumes) {
        const reason = orphan(volume.labels)
        if (reason === null) continue
        const ok = yield* Effect.either(runtime.removeVolume(volume.name))
        if (Either.isLeft(ok)) {
          yield* Effect.logWarning(`removing volume ${volume.name} failed: ${ok.left.message}`)
          continue
        }
        removed++
        yield* removedEvent("volume", volume.name, reason, {
          teamId: volume.labels[Labels.Team],
          serviceId: volume.labels[Labels.Service]
        })
      }
      return removed
    })

    /**
     * Finished workflow history: an entity address whose every request has its final reply and
     * whose newest message is older than the retention. Whole addresses go at once, so a running
     * workflow never loses the journal it replays from. No cluster tables (in-memory engine): nothing.
     */
    const workflowHistory = (cutoffMillis: number) =>
      Effect.gen(function* () {
        const [exists] = yield* sql<{ present: boolean }>`
          SELECT to_regclass('cluster_messages') IS NOT NULL AND to_regclass('cluster_replies') IS NOT NULL AS present`
        if (!exists?.present) return 0
        const cutoff = snowflakeAt(cutoffMillis).toString()
        const finished = yield* sql<{ entity_type: string; entity_id: string; messages: string }>`
          SELECT m.entity_type, m.entity_id, COUNT(*)::text AS messages
          FROM cluster_messages m
          LEFT JOIN cluster_replies r ON r.request_id = m.id AND r.kind = 0
          GROUP BY m.entity_type, m.entity_id
          HAVING MAX(m.id) < ${cutoff}::bigint AND bool_and(m.kind <> 0 OR r.id IS NOT NULL)`
        let removed = 0
        for (const address of finished) {
          // Short statements, no transaction held across the loop (PGlite has one session).
          yield* sql`DELETE FROM cluster_replies WHERE request_id IN (
            SELECT id FROM cluster_messages WHERE entity_type = ${address.entity_type}
              AND entity_id = ${address.entity_id})`
          yield* sql`DELETE FROM cluster_messages WHERE entity_type = ${address.entity_type}
            AND entity_id = ${address.entity_id}`
          removed += Number(address.messages)
          // A ServiceEntity's address is its service id: that service's team sees the event.
          yield* removedEvent(
            "workflow-history",
            `${address.entity_type}/${address.entity_id}`,
            `finished, ${address.messages} messages older than the retention`,
            { serviceId: address.entity_id }
          )
        }
        return removed
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
          "rollback images",
          serviceImages,
          (r) =>
            `${r.removed} rollback images pruned (keep ${r.keep}${r.pressure ? ", disk pressure" : ""}, ${r.totalBytes} bytes of images)`
        ),
        yield* step(
          "networks and volumes",
          orphanedNetworksAndVolumes,
          (n) => `${n} networks/volumes of removed services removed`
        ),
        yield* step(
          "workflow history",
          Effect.flatMap(CleanupSettings, (s) =>
            workflowHistory(now - Duration.toMillis(s.workflowRetention))
          ),
          (n) => `${n} workflow history messages pruned`
        ),
        yield* step(
          "dangling images",
          danglingImages,
          (r) => `${r.removed} dangling images pruned (${r.reclaimedBytes} bytes)`
        ),
        yield* step(
          "build cache",
          Effect.flatMap(CleanupSettings, (s) =>
            runtime.pruneBuildCache({ keepBytes: s.buildCacheKeepBytes })
          ),
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

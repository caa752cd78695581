/**
 * The metrics pass: one-shot stats of every running kyozo container, CPU % from the previous
 * sample kept in memory per container (one-shot stats carry no `precpu_stats`), all samples
 * stored in one INSERT. Containers whose `kyozo.service` label names no known service are
 * sampled for the CPU baseline but not stored (the foreign key would reject them anyway).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { ContainerRuntime, cpuPercent, type ContainerStats } from "@kyozo/core/ContainerRuntime"
import * as Labels from "@kyozo/core/Labels"
import { emptyReport, type PassReport } from "@kyozo/core/MaintenancePasses"
import { MetricSampleRepo, type NewMetricSample } from "@kyozo/core/MetricSampleRepo"
import { Effect, Either } from "effect"
import { WorkerSettings } from "./WorkerSettings.js"

export class MetricsWorker extends Effect.Service<MetricsWorker>()("@kyozo/workers/MetricsWorker", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runtime = yield* ContainerRuntime
    const samples = yield* MetricSampleRepo
    // Previous raw sample per container id; entries of vanished containers are dropped each pass.
    const previous = new Map<string, ContainerStats>()

    const run: Effect.Effect<PassReport, unknown> = Effect.gen(function* () {
      const { concurrency } = yield* WorkerSettings
      const listed = yield* runtime.listContainers({ labels: { [Labels.Managed]: "true" } })
      const running = listed.filter((c) => c.state === "running" && Labels.isManaged(c.labels))
      const serviceIds = [
        ...new Set(running.map((c) => c.labels[Labels.Service]).filter((id): id is string => !!id))
      ]
      const known =
        serviceIds.length === 0
          ? new Set<string>()
          : new Set(
              (yield* sql<{ id: string }>`SELECT id FROM container_service_instances
                  WHERE ${sql.in("id", serviceIds)} AND deleted_at IS NULL`).map((r) => r.id)
            )

      const outcomes = yield* Effect.forEach(
        running,
        (container) =>
          runtime.stats(container.id).pipe(
            Effect.map((current) => {
              const cpu = cpuPercent(previous.get(container.id), current)
              previous.set(container.id, current)
              return { container, current, cpu }
            }),
            Effect.tapError((e) => Effect.logWarning(`stats of ${container.name} failed: ${e.message}`)),
            Effect.either
          ),
        { concurrency }
      )

      const alive = new Set(running.map((c) => c.id))
      for (const id of previous.keys()) if (!alive.has(id)) previous.delete(id)

      const rows: Array<NewMetricSample> = []
      for (const outcome of outcomes) {
        if (Either.isLeft(outcome)) continue
        const { container, current, cpu } = outcome.right
        const serviceId = container.labels[Labels.Service]
        if (!serviceId || !known.has(serviceId)) continue
        rows.push({
          serviceId,
          containerId: container.id,
          cpuPercent: cpu,
          memoryBytes: current.memoryBytes,
          memoryLimitBytes: current.memoryLimitBytes,
          netRxBytes: current.netRxBytes,
          netTxBytes: current.netTxBytes,
          blockReadBytes: current.blockReadBytes,
          blockWriteBytes: current.blockWriteBytes,
          pids: current.pids,
          sampledAt: new Date(current.readAt)
        })
      }
      const stored = yield* samples.insertMany(rows)
      const failures = outcomes.filter(Either.isLeft).length
      return {
        ...emptyReport("metrics"),
        examined: running.length,
        acted: stored,
        failures,
        notes:
          running.length - failures - stored > 0
            ? [`${running.length - failures - stored} containers of unknown services not stored`]
            : []
      }
    })

    return { run } as const
  }),
  dependencies: [MetricSampleRepo.Default]
}) {}

/**
 * Insights into a service: its metric samples, trends (one point per step, for charts), resource
 * recommendations and health history. Every member of the team reads them (Policy.viewService);
 * another team's service is ServiceNotFound.
 *
 * Windows: samples of an hour or a day are minute samples, a week reads the hourly roll-ups (a week
 * of minute samples is ~10k rows per container). Recommendations take the p95 over minute samples
 * for a day (hourly means would hide the peaks a limit must absorb); a week's p95 is of hourly means.
 */
import type { ServiceNotFound } from "@kyozo/api/domain/Deploy"
import type { HealthCheck } from "@kyozo/api/domain/HealthCheck"
import type { ServiceId } from "@kyozo/api/domain/Ids"
import type { MetricSample } from "@kyozo/api/domain/MetricSample"
import type { CurrentPrincipal } from "@kyozo/api/KyozoRpc"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { HealthCheckRepo } from "@kyozo/core/store/HealthCheckRepo"
import { MetricSampleRepo } from "@kyozo/core/store/MetricSampleRepo"
import { bucket, type TrendPoint, trendSpec, type TrendWindow } from "@kyozo/workers/maintenance/MetricTrends"
import { type Prices, recommend, type Recommendation } from "@kyozo/workers/maintenance/Recommendations"
import { Effect } from "effect"

import { Policy } from "../Policy.js"
import { repository } from "./Storage.js"

export type MetricsWindow = "hour" | "day" | "week"
export type RecommendationWindow = "day" | "week"

const WINDOW_MS: Record<MetricsWindow, number> = { hour: 3_600_000, day: 86_400_000, week: 7 * 86_400_000 }

/** A recommendation with what the service has now, priced alike (730 hours a month). */
export interface ServiceRecommendation extends Recommendation {
  readonly serviceId: ServiceId
  readonly window: RecommendationWindow
  readonly samples: number
  readonly currentCpuMillis: number
  readonly currentMemoryMb: number
  readonly currentMonthlyCost: number
  readonly prices: Prices
}

export class Insights extends Effect.Service<Insights>()("@kyozo/server/application/Insights", {
  effect: Effect.gen(function* () {
    const samples = yield* repository(MetricSampleRepo)
    const checks = yield* repository(HealthCheckRepo)
    const policy = yield* Policy
    const { prices } = yield* KyozoConfig

    const cost = (cpuMillis: number, memoryMb: number) =>
      Math.round(((cpuMillis / 1000) * prices.vcpuHour + (memoryMb / 1024) * prices.gbHour) * 730 * 100) / 100

    /** The service's samples over the window, oldest first. */
    const metrics = (
      service: string,
      window: MetricsWindow = "hour"
    ): Effect.Effect<ReadonlyArray<MetricSample>, ServiceNotFound, CurrentPrincipal> =>
      Effect.flatMap(policy.viewService(service), ({ service: found }) =>
        samples.listByService(
          found.id,
          window === "week" ? "1h" : "1m",
          new Date(Date.now() - WINDOW_MS[window])
        )
      )

    /** One point per step over the window ending now (null where no sample fell), oldest first. */
    const trends = (
      service: string,
      window: TrendWindow = "hour"
    ): Effect.Effect<ReadonlyArray<TrendPoint>, ServiceNotFound, CurrentPrincipal> =>
      Effect.flatMap(policy.viewService(service), ({ service: found }) =>
        Effect.gen(function* () {
          const spec = trendSpec(window)
          const now = Date.now()
          const rows = yield* samples.listByService(
            found.id,
            spec.resolution,
            new Date(now - spec.spanMs - spec.stepMs)
          )
          return bucket(
            window,
            rows.map((r) => ({
              at: r.sampledAt.getTime(),
              cpuPercent: r.cpuPercent,
              memoryBytes: r.memoryBytes
            })),
            now
          )
        })
      )

    /** Limits from the p95 of the window, with the monthly cost of now and of the suggestion. */
    const recommendations = (
      service: string,
      window: RecommendationWindow = "week"
    ): Effect.Effect<ServiceRecommendation, ServiceNotFound, CurrentPrincipal> =>
      Effect.flatMap(policy.viewService(service), ({ service: found }) =>
        Effect.gen(function* () {
          const rows = yield* samples.listByService(
            found.id,
            window === "week" ? "1h" : "1m",
            new Date(Date.now() - WINDOW_MS[window])
          )
          return {
            serviceId: found.id,
            window,
            samples: rows.length,
            ...recommend(rows, prices),
            currentCpuMillis: found.cpuMillis,
            currentMemoryMb: found.memoryMb,
            currentMonthlyCost: cost(found.cpuMillis, found.memoryMb),
            prices
          }
        })
      )

    /** The service's latest health checks, newest first. */
    const healthHistory = (
      service: string,
      options: { readonly limit?: number | undefined } = {}
    ): Effect.Effect<ReadonlyArray<HealthCheck>, ServiceNotFound, CurrentPrincipal> =>
      // The service is the team's (checked first), so its rows are too.
      Effect.flatMap(policy.viewService(service), ({ service: found }) =>
        checks.latestByService(found.id, options.limit ?? 50)
      )

    return { metrics, trends, recommendations, healthHistory } as const
  }),
  dependencies: [MetricSampleRepo.Default, HealthCheckRepo.Default, Policy.Default]
}) {}

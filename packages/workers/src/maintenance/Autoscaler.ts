/**
 * Autoscaling on the metrics Kyozo collects, in the manner of the Kubernetes HPA (see
 * `AutoscalePolicy`): each pass reads the newest sample of every running replica of the current
 * deployment, averages its utilisation (CPU in percent of the service's CPU limit, memory in
 * percent of its memory limit) and recommends `ceil(replicas × utilisation / target)`, nothing
 * when within 10 % of the target, the highest of the metrics when both are set, clamped to
 * [min, max]. Scaling out happens at once; scaling in takes the highest recommendation of the
 * stabilisation window, so a short dip does not flap the count (a fresh start counts as one, too).
 *
 * Every change goes through `Deployer.scale`, the quota-gated rule `kyozo scale` uses, and is an
 * `autoscale.scaled` event with the figures that caused it; a refusal (quota) is one
 * `autoscale.blocked` event per refused target.
 */
import { type AutoscalePolicy, DEFAULT_STABILIZATION_SECONDS } from "@kyozo/api/domain/AutoscalePolicy"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { MetricSampleRepo } from "@kyozo/core/store/MetricSampleRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { Clock, Duration, Effect, Layer, Option, Schedule } from "effect"

import { Deployer } from "../deploy/Deployer.js"

/** Within this fraction of the target nothing changes (the HPA's default tolerance). */
export const TOLERANCE = 0.1

export type AutoscaleMetric = "cpu" | "memory"

export interface Reading {
  readonly metric: AutoscaleMetric
  /** Average utilisation of the sampled replicas, in percent of their limit. */
  readonly utilization: number
  readonly target: number
  /** How many replicas the average is over. */
  readonly sampled: number
}

export interface Recommendation {
  /** Epoch milliseconds (the Clock's). */
  readonly at: number
  readonly replicas: number
}

export interface Decision {
  readonly desired: number
  /** The recommendation of this pass (clamped), before the scale-in window. */
  readonly recommended: number
  /** The reading that decided (the one recommending the most), null without readings. */
  readonly reading: Reading | null
  /** The window's recommendations, this pass's included: the next pass's history. */
  readonly history: ReadonlyArray<Recommendation>
  readonly why: string
}

const clamp = (n: number, policy: AutoscalePolicy) =>
  Math.min(policy.maxReplicas, Math.max(policy.minReplicas, n))

/** One metric's recommendation for `current` replicas. */
export const recommendFor = (current: number, reading: Pick<Reading, "utilization" | "target">): number => {
  const ratio = reading.utilization / reading.target
  if (Math.abs(ratio - 1) <= TOLERANCE) return current
  return Math.max(1, Math.ceil(current * ratio))
}

/** The HPA's decision: pure, so tests give it synthetic readings and times. */
export const decide = (
  policy: AutoscalePolicy,
  current: number,
  readings: ReadonlyArray<Reading>,
  history: ReadonlyArray<Recommendation>,
  now: number
): Decision => {
  let reading: Reading | null = null
  let raw = current
  for (const r of readings) {
    const n = recommendFor(current, r)
    if (reading === null || n > raw) {
      reading = r
      raw = n
    }
  }
  const recommended = clamp(raw, policy)
  const windowMs = (policy.stabilizationSeconds ?? DEFAULT_STABILIZATION_SECONDS) * 1000
  const kept = [...history.filter((h) => now - h.at < windowMs), { at: now, replicas: recommended }]
  const highest = Math.max(...kept.map((h) => h.replicas))
  const desired = clamp(recommended > current ? recommended : Math.min(current, highest), policy)
  const figures =
    reading === null
      ? "no metrics yet"
      : `${reading.metric} ${reading.utilization.toFixed(1)} % of the limit (average of ${reading.sampled}) vs target ${reading.target} %`
  const why =
    desired > current
      ? `${figures}: ${recommended} replicas recommended`
      : desired < current
        ? `${figures}: ${desired} replicas, the highest recommendation of the last ${windowMs / 1000} s`
        : recommended < current
          ? `${figures}: ${recommended} recommended, held at ${current} by the ${windowMs / 1000} s stabilisation window`
          : `${figures}: ${current} replicas fit`
  return { desired, recommended, reading, history: kept, why }
}

/** Readings of the service from its replicas' newest samples (ids of the running replicas). */
export const readingsOf = (
  service: Pick<ServiceInstance, "autoscale" | "cpuMillis" | "memoryMb">,
  newest: ReadonlyArray<{ cpuPercent: number; memoryBytes: number; memoryLimitBytes: number }>
): ReadonlyArray<Reading> => {
  const policy = service.autoscale
  if (policy === null || newest.length === 0) return []
  const out: Array<Reading> = []
  const avg = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
  if (policy.targetCpuPercent !== undefined) {
    // cpuPercent is in percent of one CPU; the limit is cpuMillis thousandths of one.
    const limit = Math.max(1, service.cpuMillis) / 10
    out.push({
      metric: "cpu",
      utilization: avg(newest.map((s) => (s.cpuPercent / limit) * 100)),
      target: policy.targetCpuPercent,
      sampled: newest.length
    })
  }
  if (policy.targetMemoryPercent !== undefined) {
    const fallback = service.memoryMb * 1024 * 1024
    out.push({
      metric: "memory",
      utilization: avg(
        newest.map((s) => (s.memoryBytes / (s.memoryLimitBytes > 0 ? s.memoryLimitBytes : fallback)) * 100)
      ),
      target: policy.targetMemoryPercent,
      sampled: newest.length
    })
  }
  return out
}

export interface AutoscalerOptions {
  /** How far back a sample still counts (default: twice the metrics interval, at least 30 s). */
  readonly lookback?: Duration.DurationInput
}

export class Autoscaler extends Effect.Service<Autoscaler>()("@kyozo/workers/Autoscaler", {
  effect: Effect.gen(function* () {
    const services = yield* ServiceRepo
    const samples = yield* MetricSampleRepo
    const events = yield* DeploymentEventRepo
    const runtime = yield* ContainerRuntime
    const deployer = yield* Deployer
    const config = yield* Effect.serviceOption(KyozoConfig)
    const defaultLookback = Option.match(config, {
      onNone: () => Duration.seconds(120),
      onSome: (c) => Duration.max(Duration.seconds(30), Duration.times(c.metricsInterval, 2))
    })
    const histories = new Map<string, ReadonlyArray<Recommendation>>()
    const blocked = new Map<string, number>()

    /** One service: decide, and scale when the decision differs from what runs. */
    const step = (service: ServiceInstance, lookback: Duration.Duration) =>
      Effect.gen(function* () {
        const policy = service.autoscale!
        const now = yield* Clock.currentTimeMillis
        const replicas = yield* runtime.listContainers({
          labels: { [Labels.Service]: service.id, [Labels.Deployment]: service.currentDeploymentId! }
        })
        const running = new Set(replicas.filter((c) => c.state === "running").map((c) => c.id))
        const recent = yield* samples.listRecent([service.id], new Date(now - Duration.toMillis(lookback)))
        const newest = new Map<string, (typeof recent)[number]>()
        for (const s of recent) if (running.has(s.containerId)) newest.set(s.containerId, s)
        const readings = readingsOf(
          service,
          [...newest.values()].map((s) => ({
            cpuPercent: s.cpuPercent,
            memoryBytes: Number(s.memoryBytes),
            memoryLimitBytes: Number(s.memoryLimitBytes)
          }))
        )
        // A service first seen now counts its current count as a recommendation: no scale-in
        // before a whole window has been watched (after a Kyozo restart too).
        const history = histories.get(service.id) ?? [{ at: now, replicas: service.replicas }]
        const decision = decide(policy, service.replicas, readings, history, now)
        histories.set(service.id, decision.history)
        if (decision.desired === service.replicas) return null
        const data = {
          from: service.replicas,
          to: decision.desired,
          recommended: decision.recommended,
          metric: decision.reading?.metric ?? null,
          utilization: decision.reading === null ? null : Math.round(decision.reading.utilization * 10) / 10,
          target: decision.reading?.target ?? null,
          sampled: decision.reading?.sampled ?? 0,
          minReplicas: policy.minReplicas,
          maxReplicas: policy.maxReplicas,
          stabilizationSeconds: policy.stabilizationSeconds ?? DEFAULT_STABILIZATION_SECONDS
        }
        const scaled = yield* Effect.either(deployer.scale(service.teamId, service.id, decision.desired))
        if (scaled._tag === "Left") {
          if (blocked.get(service.id) === decision.desired) return null
          blocked.set(service.id, decision.desired)
          yield* events.append({
            teamId: service.teamId,
            serviceId: service.id,
            type: "autoscale.blocked",
            message: `Autoscaling ${service.name} to ${decision.desired} replicas refused: ${scaled.left.message}`,
            data: { ...data, error: scaled.left._tag }
          })
          return null
        }
        blocked.delete(service.id)
        yield* events.append({
          teamId: service.teamId,
          serviceId: service.id,
          type: "autoscale.scaled",
          message: `Scaled ${service.name} from ${service.replicas} to ${decision.desired} replicas: ${decision.why}`,
          data
        })
        return decision.desired
      })

    /** Every autoscaled service that runs; one failure is logged and does not stop the others. */
    const pass = (options: AutoscalerOptions = {}) =>
      Effect.gen(function* () {
        const lookback = Duration.decode(options.lookback ?? defaultLookback)
        const all = yield* services.listDesired()
        let scaled = 0
        for (const service of all) {
          if (
            service.autoscale === null ||
            service.desiredState !== "running" ||
            service.status === "deploying" ||
            service.currentDeploymentId === null
          ) {
            histories.delete(service.id)
            continue
          }
          const result = yield* Effect.either(step(service, lookback))
          if (result._tag === "Left")
            yield* Effect.logWarning(`autoscaling ${service.name} failed`, result.left)
          else if (result.right !== null) scaled++
        }
        return { scaled }
      })

    return { pass } as const
  }),
  dependencies: [MetricSampleRepo.Default]
}) {}

/** The autoscaling loop (KYOZO_AUTOSCALE_INTERVAL, default 15 s), in the layer's scope. */
export const layer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const autoscaler = yield* Autoscaler
    const interval = Option.match(yield* Effect.serviceOption(KyozoConfig), {
      onNone: () => Duration.seconds(15),
      onSome: (c) => c.autoscaleInterval
    })
    yield* autoscaler.pass().pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("autoscale pass failed", cause)),
      Effect.repeat(Schedule.spaced(interval)),
      Effect.delay(interval),
      Effect.forkScoped
    )
  })
).pipe(Layer.provide(Autoscaler.Default))

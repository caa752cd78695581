/**
 * The metrics pass: one-shot stats of every running kyozo container, CPU % from the previous
 * sample kept in memory per container (one-shot stats carry no `precpu_stats`), all samples
 * stored in one INSERT. Containers whose `kyozo.service` label names no known service are
 * sampled for the CPU baseline but not stored (the foreign key would reject them anyway).
 * After the samples are stored, the alert rules of the sampled services are evaluated; a rule's
 * transition (fired, resolved) is recorded once, as an `alert.fired` / `alert.resolved` event.
 */
import type { ServiceId } from "@kyozo/api/domain/Ids"
import { ContainerRuntime, type ContainerStats, cpuPercent } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { AlertRepo } from "@kyozo/core/store/AlertRepo"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { MetricSampleRepo, type NewMetricSample } from "@kyozo/core/store/MetricSampleRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { emptyReport, type PassReport } from "@kyozo/core/supervision/MaintenancePasses"
import { Clock, Effect, Either } from "effect"

import { evaluate, type SamplePoint } from "../notify/AlertEvaluator.js"
import { WorkerSettings } from "../WorkerSettings.js"

export class MetricsWorker extends Effect.Service<MetricsWorker>()("@kyozo/workers/MetricsWorker", {
  effect: Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const services = yield* ServiceRepo
    const samples = yield* MetricSampleRepo
    const alerts = yield* AlertRepo
    const events = yield* DeploymentEventRepo
    // Previous raw sample per container id; entries of vanished containers are dropped each pass.
    const previous = new Map<string, ContainerStats>()

    /**
     * Evaluates the enabled rules of these services on their recent "1m" samples at the Clock's
     * now. Level-driven: a pass that missed a transition catches it up on the next one.
     */
    const evaluateAlerts = (
      serviceIds: ReadonlyArray<ServiceId | string>
    ): Effect.Effect<{ readonly fired: number; readonly resolved: number }, unknown> =>
      Effect.gen(function* () {
        const bound = yield* alerts.rulesForServices(serviceIds)
        if (bound.length === 0) return { fired: 0, resolved: 0 }
        const now = yield* Clock.currentTimeMillis
        const ids = [...new Set(bound.map((b) => b.serviceId))]
        // Long enough for the longest rule, plus the evaluator's gap allowance.
        const spanMs = Math.max(...bound.map((b) => b.rule.durationSeconds)) * 1000 + 150_000
        const recent = yield* samples.listRecent(ids, new Date(now - spanMs))
        const byService = new Map<string, Array<SamplePoint>>()
        for (const s of recent) {
          const list = byService.get(s.serviceId) ?? []
          list.push({
            at: s.sampledAt.getTime(),
            cpuPercent: s.cpuPercent,
            memoryBytes: Number(s.memoryBytes),
            memoryLimitBytes: Number(s.memoryLimitBytes),
            pids: s.pids
          })
          byService.set(s.serviceId, list)
        }
        const firing = new Set((yield* alerts.firing(ids)).map((f) => `${f.ruleId} ${f.serviceId}`))
        let fired = 0
        let resolved = 0
        for (const { rule, serviceId, teamId } of bound) {
          const transition = evaluate(
            rule,
            byService.get(serviceId) ?? [],
            now,
            firing.has(`${rule.id} ${serviceId}`)
          )
          if (transition._tag === "Unchanged") continue
          const describe = `${rule.metric} ${rule.comparator} ${rule.threshold} for ${rule.durationSeconds} s`
          const data = {
            ruleId: rule.id,
            metric: rule.metric,
            comparator: rule.comparator,
            threshold: rule.threshold,
            durationSeconds: rule.durationSeconds,
            value: transition.value
          }
          // fire/resolve report whether this call made the change: one event per transition.
          if (transition._tag === "Fired") {
            if (!(yield* alerts.fire(rule.id, serviceId, transition.value, new Date(now)))) continue
            fired++
            yield* events.append({
              teamId,
              serviceId,
              type: "alert.fired",
              message: `alert: ${describe} (now ${transition.value.toFixed(1)})`,
              data
            })
          } else {
            const cleared = yield* alerts.resolve(rule.id, serviceId)
            if (cleared._tag === "None") continue
            resolved++
            yield* events.append({
              teamId,
              serviceId,
              type: "alert.resolved",
              message: `resolved: ${describe} (now ${transition.value.toFixed(1)})`,
              data: { ...data, firedAt: cleared.value.firedAt.toISOString() }
            })
          }
        }
        return { fired, resolved }
      })

    const run: Effect.Effect<PassReport, unknown> = Effect.gen(function* () {
      const { statsConcurrency } = yield* WorkerSettings
      const listed = yield* runtime.listContainers({ labels: { [Labels.Managed]: "true" } })
      const running = listed.filter((c) => c.state === "running" && Labels.isManaged(c.labels))
      const serviceIds = [
        ...new Set(running.map((c) => c.labels[Labels.Service]).filter((id): id is string => !!id))
      ]
      // The services not deleted (listDesired reads only row versions when nothing changed).
      const known =
        serviceIds.length === 0
          ? new Set<string>()
          : new Set((yield* services.listDesired()).map((r) => r.id))

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
        { concurrency: statsConcurrency }
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
      // Alerts never fail the pass: the samples are stored, the next pass evaluates again.
      const alerted = yield* evaluateAlerts([...new Set(rows.map((r) => r.serviceId))]).pipe(
        Effect.map((a) => ({ ...a, failed: 0 })),
        Effect.catchAllCause((cause) =>
          Effect.logWarning("alert evaluation failed", cause).pipe(
            Effect.as({ fired: 0, resolved: 0, failed: 1 })
          )
        )
      )
      const notes: Array<string> = []
      if (running.length - failures - stored > 0)
        notes.push(`${running.length - failures - stored} containers of unknown services not stored`)
      if (alerted.fired + alerted.resolved > 0)
        notes.push(`${alerted.fired} alerts fired, ${alerted.resolved} resolved`)
      if (alerted.failed > 0) notes.push("alert evaluation failed")
      return {
        ...emptyReport("metrics"),
        examined: running.length,
        acted: stored,
        failures: failures + alerted.failed,
        notes
      }
    })

    return { run, evaluateAlerts } as const
  }),
  dependencies: [
    MetricSampleRepo.Default,
    AlertRepo.Default,
    DeploymentEventRepo.Default,
    ServiceRepo.Default
  ]
}) {}

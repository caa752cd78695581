/**
 * The recovery pass, run right after the health pass on its results. Level-driven like the rest:
 * every pass compares the desired state (the rows) with what the engine shows and converges —
 * restarts per restart policy with backoff and OTP intensity, degrades dependents of down services
 * instead of restarting them, and notices containers stopped or removed behind Kyozo's back.
 * Every action is an event in container_deployment_events (which also feeds the webhooks).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { ServiceId } from "@kyozo/api/domain/Ids"
import type { ServiceInstance, ServiceStatus } from "@kyozo/api/domain/ServiceInstance"
import { publishedByEngine } from "@kyozo/core/edge/Transport"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { inJson } from "@kyozo/core/store/SqlRows"
import { emptyReport, type PassReport } from "@kyozo/core/supervision/MaintenancePasses"
import { Clock, Context, Duration, Effect, Option } from "effect"

import * as Dependencies from "../deploy/Dependencies.js"
import { portTaken, recreateOnFreePort, takenPort } from "../deploy/Replicas.js"
import { type HealthResult, HealthWorker, type Observation } from "./HealthWorker.js"
import {
  type ContainerCondition,
  decide,
  initialRestartState,
  observeClean,
  policyAllows,
  RecoverySettings,
  type RestartState
} from "./RestartPolicy.js"

/**
 * The seam for containers that are gone: the deploy side may provide a way to re-create a
 * service's container from its current deployment. Without it, recovery marks the service failed.
 */
export class Recreate extends Context.Tag("@kyozo/workers/Recreate")<
  Recreate,
  {
    readonly recreate: (service: ServiceInstance) => Effect.Effect<{ readonly containerId: string }, unknown>
  }
>() {}

interface RecoveryRow {
  readonly service_id: string
  readonly backoff_level: number
  readonly last_restart_at: Date | null
  readonly restarts: unknown
  readonly gave_up_at: Date | null
}

const toState = (row: RecoveryRow): RestartState => ({
  backoffLevel: Number(row.backoff_level),
  lastRestartAt: row.last_restart_at === null ? null : new Date(row.last_restart_at).getTime(),
  restarts: (Array.isArray(row.restarts) ? row.restarts : JSON.parse(String(row.restarts ?? "[]"))).map(
    Number
  ),
  gaveUpAt: row.gave_up_at === null ? null : new Date(row.gave_up_at).getTime()
})

/** Why a container needs a restart, or null when it does not. */
const conditionOf = (result: HealthResult): ContainerCondition | "missing" | null => {
  const o: Observation = result.observation
  if (o.containerState === "missing") return "missing"
  if (o.containerState !== undefined && o.containerState !== "running" && o.containerState !== "restarting") {
    // paused is a deliberate act; created and exited/dead are down.
    if (o.containerState === "paused") return null
    return { _tag: "Exited", exitCode: o.exitCode ?? null }
  }
  return result.effective === "unhealthy" ? { _tag: "Unhealthy" } : null
}

export class RecoveryWorker extends Effect.Service<RecoveryWorker>()("@kyozo/workers/RecoveryWorker", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runtime = yield* ContainerRuntime
    const services = yield* ServiceRepo
    const events = yield* DeploymentEventRepo
    const health = yield* HealthWorker

    const loadStates = (ids: ReadonlyArray<string>) =>
      ids.length === 0
        ? Effect.succeed(new Map<string, RestartState>())
        : sql<RecoveryRow>`SELECT service_id, backoff_level, last_restart_at, restarts, gave_up_at
                           FROM service_recovery WHERE ${inJson(sql, "service_id", ids)}`.pipe(
            Effect.map((rows) => new Map(rows.map((r) => [r.service_id, toState(r)] as const)))
          )

    const saveState = (serviceId: string, state: RestartState) =>
      sql`INSERT INTO service_recovery (service_id, backoff_level, last_restart_at, restarts, gave_up_at, updated_at)
          VALUES (${serviceId}, ${state.backoffLevel},
                  ${state.lastRestartAt === null ? null : new Date(state.lastRestartAt)},
                  ${JSON.stringify(state.restarts)}::jsonb,
                  ${state.gaveUpAt === null ? null : new Date(state.gaveUpAt)}, now())
          ON CONFLICT (service_id) DO UPDATE SET backoff_level = EXCLUDED.backoff_level,
            last_restart_at = EXCLUDED.last_restart_at, restarts = EXCLUDED.restarts,
            gave_up_at = EXCLUDED.gave_up_at, updated_at = now()`

    const emit = (service: ServiceInstance, type: string, message: string, data: Record<string, unknown>) =>
      events.append({
        teamId: service.teamId,
        serviceId: service.id,
        deploymentId: service.currentDeploymentId,
        type,
        message,
        data
      })

    const setStatus = (service: ServiceInstance, status: ServiceStatus) =>
      service.status === status ? Effect.void : Effect.asVoid(services.updateObserved(service.id, { status }))

    /** Acts on one service; returns a short note of what it did, or null. */
    const recoverOne = (
      result: HealthResult,
      state: RestartState,
      blocked: Dependencies.Blocked | undefined,
      now: number
    ): Effect.Effect<string | null, unknown> =>
      Effect.gen(function* () {
        const settings = yield* RecoverySettings
        const { service } = result
        if (service.status === "deploying") return null

        if (blocked) {
          if (service.status === "degraded") return null
          yield* setStatus(service, "degraded")
          yield* emit(
            service,
            "service.degraded",
            `degraded: depends on ${blocked.down.join(", ")} (root cause ${blocked.rootCauses.join(", ")})`,
            { dependsOn: blocked.down, rootCause: blocked.rootCauses }
          )
          return `${service.id} degraded`
        }

        let current = result
        if (service.status === "degraded") {
          // Its dependencies are back: look again now rather than acting on the pass's old result.
          const observation = yield* health.observe(service)
          current = { service, observation, effective: observation.status }
          const healthy = observation.status === "healthy"
          yield* setStatus(service, healthy ? "running" : "unhealthy")
          yield* emit(service, "service.rechecked", `dependencies recovered; health ${observation.status}`, {
            health: observation.status,
            detail: observation.detail
          })
          if (healthy) return `${service.id} rechecked`
        }

        const condition = conditionOf(current)
        if (condition === null) {
          const clean = observeClean(state, now, settings)
          const next =
            clean.gaveUpAt !== null && current.effective === "healthy" ? { ...clean, gaveUpAt: null } : clean
          if (next !== state) yield* saveState(service.id, next)
          return null
        }

        if (condition === "missing") {
          const recreate = yield* Effect.serviceOption(Recreate)
          if (Option.isSome(recreate)) {
            const made = yield* recreate.value.recreate(service)
            // Not probed yet: the health pass makes it `running` once it answers.
            yield* setStatus(service, "starting")
            yield* services.recordRestart(service.id)
            yield* emit(service, "service.recreated", "container missing: re-created", {
              containerId: made.containerId
            })
            return `${service.id} recreated`
          }
          if (service.status === "failed") return null
          yield* setStatus(service, "failed")
          yield* emit(service, "service.container-missing", "container missing and no way to re-create it", {
            containerId: service.containerId
          })
          return `${service.id} container missing`
        }

        if (state.gaveUpAt !== null) return null
        const containerId = current.observation.containerId!
        if (!policyAllows(service.restartPolicy, condition)) {
          const cleanExit = condition._tag === "Exited" && condition.exitCode === 0
          const status: ServiceStatus = cleanExit ? "stopped" : "failed"
          if (service.status === status) return null
          yield* setStatus(service, status)
          yield* emit(
            service,
            cleanExit ? "service.stopped" : "service.failed",
            `restart policy ${service.restartPolicy}: not restarted (${current.observation.detail})`,
            {
              reason: "restart-policy",
              policy: service.restartPolicy,
              exitCode: current.observation.exitCode ?? null
            }
          )
          return `${service.id} ${status} by policy`
        }

        const decision = decide(state, now, settings)
        switch (decision._tag) {
          case "Wait":
            return null
          case "GiveUp": {
            yield* saveState(service.id, decision.next)
            yield* setStatus(service, "failed")
            const data = {
              restartsInWindow: decision.restartsInWindow,
              maxRestarts: settings.maxRestarts,
              windowSeconds: Duration.toSeconds(settings.maxWindow)
            }
            yield* emit(
              service,
              "service.failed",
              `more than ${settings.maxRestarts} restarts in ${Duration.format(settings.maxWindow)}: giving up`,
              { reason: "restart-intensity", ...data }
            )
            yield* emit(service, "alert.fired", `${service.name} keeps failing and is no longer restarted`, {
              alert: "restart-intensity",
              ...data
            })
            return `${service.id} gave up`
          }
          case "Restart": {
            // `starting` from now on: the URL fails while it restarts, and only a probe of the
            // health pass after the restart makes it `running` again.
            yield* setStatus(service, "starting")
            const restarted = yield* Effect.either(
              condition._tag === "Unhealthy"
                ? runtime.restartContainer(containerId)
                : runtime.startContainer(containerId)
            )
            if (restarted._tag === "Left") {
              if (!portTaken(restarted.left)) {
                // Nothing restarts (the engine is out, or refused): `starting` would hide the outage.
                // Only while the row still says so (a deploy or a restart may own it since).
                yield* services.updateStatusIf(service.id, "starting", "unhealthy")
                return yield* Effect.fail(restarted.left)
              }
              return yield* portTakenOnRestart(
                service,
                containerId,
                restarted.left.message,
                takenPort(restarted.left),
                decision.next
              )
            }
            yield* saveState(service.id, decision.next)
            yield* services.recordRestart(service.id)
            yield* emit(service, "service.restarted", `restarted (${current.observation.detail})`, {
              containerId,
              reason: condition._tag === "Unhealthy" ? "unhealthy" : "exited",
              exitCode: current.observation.exitCode ?? null,
              attempt: decision.next.backoffLevel,
              delaySeconds: Duration.toSeconds(decision.delay),
              restartsInWindow: decision.next.restarts.length
            })
            return `${service.id} restarted`
          }
        }
      })

    /**
     * The container's pinned 127.0.0.1 port was taken by another program while it was down. Behind
     * the edge (HTTP) it is re-created on a free port and the URL keeps answering; for a TCP service
     * the port is the URL itself, so the service fails with an event saying which port to free.
     */
    const portTakenOnRestart = (
      service: ServiceInstance,
      containerId: string,
      detail: string,
      taken: number | null,
      next: RestartState
    ) =>
      Effect.gen(function* () {
        if (publishedByEngine(service)) {
          if (service.status === "failed") return null
          yield* setStatus(service, "failed")
          yield* emit(
            service,
            "service.port-taken",
            `its URL port 127.0.0.1:${service.hostPort} is taken by another program, so it cannot start (${detail}). Free the port; Kyozo starts it on the next pass.`,
            { containerId, hostPort: service.hostPort, reason: "port-taken" }
          )
          return `${service.id} port taken`
        }
        const made = yield* recreateOnFreePort(service, containerId, taken).pipe(
          Effect.provideService(ContainerRuntime, runtime),
          Effect.provideService(ServiceRepo, services)
        )
        yield* saveState(service.id, next)
        yield* services.recordRestart(service.id)
        yield* services.updateObserved(service.id, { status: "starting" })
        yield* emit(
          service,
          "service.port-moved",
          `127.0.0.1:${made.oldPort ?? "?"} was taken by another program: re-created on 127.0.0.1:${made.newPort}; the URL is unchanged`,
          {
            containerId: made.containerId,
            previousContainerId: containerId,
            oldPort: made.oldPort,
            newPort: made.newPort
          }
        )
        return `${service.id} re-created on a free port`
      })

    /** Containers running although the row says stopped: stop them (reconcile toward the rows). */
    const stopUnwanted = (snapshot: ReadonlyArray<ServiceInstance> | undefined) =>
      Effect.gen(function* () {
        const stopped = (snapshot ?? (yield* services.listDesired())).filter(
          (s) => s.desiredState === "stopped" && s.containerId
        )
        let acted = 0
        for (const service of stopped) {
          const info = yield* runtime.inspectContainer(service.containerId!).pipe(
            Effect.map(Option.some),
            Effect.catchTag("ContainerNotFound", () => Effect.succeedNone)
          )
          if (Option.isNone(info) || !info.value.running) continue
          yield* runtime.stopContainer(info.value.id)
          yield* setStatus(service, "stopped")
          yield* emit(service, "service.stopped", "desired state is stopped: container stopped", {
            reason: "reconcile",
            containerId: info.value.id
          })
          acted++
        }
        return acted
      })

    /** `snapshot`: the service rows the health pass read (read again when absent). */
    const run = (
      results: ReadonlyArray<HealthResult>,
      snapshot?: ReadonlyArray<ServiceInstance>
    ): Effect.Effect<PassReport, unknown> =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const states = yield* loadStates(results.map((r) => r.service.id))
        const edges = yield* Effect.provideService(Dependencies.loadEdges, SqlClient.SqlClient, sql)
        // Down for its dependents: unhealthy after thresholds, or given up on and not healthy since.
        const down = new Set(
          results
            .filter(
              (r) =>
                r.effective === "unhealthy" || (r.service.status === "failed" && r.effective !== "healthy")
            )
            .map((r) => r.service.id as string)
        )
        const blocked = Dependencies.analyse(edges, down)
        const notes: Array<string> = []
        let failures = 0
        for (const result of results) {
          const outcome = yield* recoverOne(
            result,
            states.get(result.service.id) ?? initialRestartState,
            blocked.get(result.service.id),
            now
          ).pipe(
            Effect.tapErrorCause((cause) =>
              Effect.logWarning(`recovery of ${result.service.id} failed`, cause)
            ),
            Effect.either
          )
          if (outcome._tag === "Left") failures++
          else if (outcome.right !== null) notes.push(outcome.right)
        }
        const stoppedCount = yield* stopUnwanted(snapshot).pipe(
          Effect.tapErrorCause((cause) => Effect.logWarning("stopping unwanted containers failed", cause)),
          Effect.orElseSucceed(() => 0)
        )
        return {
          ...emptyReport("health"),
          examined: results.length,
          acted: notes.length + stoppedCount,
          failures,
          notes
        }
      })

    /** Forgets a service's restart history (after a deploy or a manual start). */
    const reset = (serviceId: ServiceId) =>
      Effect.asVoid(sql`DELETE FROM service_recovery WHERE service_id = ${serviceId}`)

    return { run, reset } as const
  }),
  dependencies: [ServiceRepo.Default, DeploymentEventRepo.Default]
}) {}

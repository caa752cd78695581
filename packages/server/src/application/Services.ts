/**
 * Services, the application rules every front door calls: changing a service's settings needs
 * `manage` on it (Policy), and any change of its limits goes through the team's quota check
 * (the same gate deploys use), under the team's lock so concurrent changes cannot overshoot.
 */
import type { CurrentPrincipal, Forbidden } from "@kyozo/api/KyozoRpc"
import type { HealthCheckConfig } from "@kyozo/core/domain/HealthCheckConfig"
import type { RestartPolicy, ServiceInstance } from "@kyozo/core/domain/ServiceInstance"
import { ServiceRepo } from "@kyozo/core/ServiceRepo"
import { type DeployError, Deployer, type QuotaExceeded, ServiceNotFound } from "@kyozo/workers/Deployer"
import * as Quotas from "@kyozo/workers/Quotas"
import { Effect, Option } from "effect"
import { Policy } from "../Policy.js"

export interface ServicePatch {
  readonly cpuMillis?: number
  readonly memoryMb?: number
  readonly env?: Readonly<Record<string, string>>
  readonly healthConfig?: HealthCheckConfig
  readonly restartPolicy?: RestartPolicy
  /** Applied by the Deployer: quotas count replicas, and the change converges at once. */
  readonly replicas?: number
}

export class Services extends Effect.Service<Services>()("@kyozo/server/application/Services", {
  effect: Effect.gen(function* () {
    const services = yield* ServiceRepo
    const policy = yield* Policy
    const quotas = yield* Quotas.makeGate
    const deployer = yield* Deployer

    /** Changes settings of a service of the caller's team; raising limits must fit the team's quotas. */
    const update = (
      service: string,
      patch: ServicePatch
    ): Effect.Effect<
      ServiceInstance,
      Forbidden | ServiceNotFound | QuotaExceeded | DeployError,
      CurrentPrincipal
    > =>
      Effect.gen(function* () {
        const { principal, service: found } = yield* policy.requireService(
          "change the service's settings",
          service,
          "manage"
        )
        const id = found.id
        const teamId = principal.teamId
        // What the change adds, read under the lock (the row may have changed since the policy read it).
        const additions = Effect.gen(function* () {
          const current = yield* services.findById(teamId, id)
          if (Option.isNone(current)) return { services: 0, cpuMillis: 0, memoryMb: 0 }
          return {
            services: 0,
            cpuMillis: patch.cpuMillis === undefined ? 0 : patch.cpuMillis - current.value.cpuMillis,
            memoryMb: patch.memoryMb === undefined ? 0 : patch.memoryMb - current.value.memoryMb
          }
        })
        const apply = services.update(teamId, id, {
          ...(patch.cpuMillis === undefined ? {} : { cpuMillis: patch.cpuMillis }),
          ...(patch.memoryMb === undefined ? {} : { memoryMb: patch.memoryMb }),
          ...(patch.env === undefined ? {} : { env: patch.env }),
          ...(patch.healthConfig === undefined ? {} : { healthConfig: patch.healthConfig }),
          ...(patch.restartPolicy === undefined ? {} : { restartPolicy: patch.restartPolicy })
        })
        // A rename is not part of this patch: a name conflict cannot happen here.
        const updated = yield* quotas
          .withinQuota(teamId, additions, apply)
          .pipe(Effect.catchTag("ServiceNameTaken", Effect.die))
        if (Option.isNone(updated)) return yield* new ServiceNotFound({ service })
        if (patch.replicas === undefined || patch.replicas === updated.value.replicas) return updated.value
        yield* deployer.scale(teamId, id, patch.replicas)
        return Option.getOrElse(yield* services.findById(teamId, id).pipe(Effect.orDie), () => updated.value)
      })

    return { update } as const
  }),
  dependencies: [ServiceRepo.Default, Policy.Default]
}) {}

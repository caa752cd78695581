/**
 * Autoscaling of a service, in the manner of the Kubernetes HPA: the replica count follows a
 * target utilisation (CPU in percent of the service's CPU limit, or memory in percent of its memory
 * limit), between `minReplicas` and `maxReplicas`; scaling in waits for `stabilizationSeconds`
 * (the highest recommendation of that window wins), so a dip does not flap the count.
 */
import { Schema } from "effect"

const Replicas = Schema.Int.pipe(Schema.between(1, 20))
const Percent = Schema.Int.pipe(Schema.between(1, 100))

export const AutoscalePolicy = Schema.Struct({
  minReplicas: Replicas,
  maxReplicas: Replicas,
  /** Target average CPU use per replica, in percent of the service's CPU limit (cpuMillis). */
  targetCpuPercent: Schema.optional(Percent),
  /** Target average memory use per replica, in percent of its memory limit. */
  targetMemoryPercent: Schema.optional(Percent),
  /** Scale-in stabilisation window (default 300 s, as the HPA's). */
  stabilizationSeconds: Schema.optional(Schema.Int.pipe(Schema.between(0, 3600)))
}).pipe(
  Schema.filter((p) =>
    p.minReplicas > p.maxReplicas
      ? `minReplicas (${p.minReplicas}) must not exceed maxReplicas (${p.maxReplicas})`
      : p.targetCpuPercent === undefined && p.targetMemoryPercent === undefined
        ? "give targetCpuPercent or targetMemoryPercent (or both)"
        : true
  )
)
export type AutoscalePolicy = typeof AutoscalePolicy.Type

export const DEFAULT_STABILIZATION_SECONDS = 300

/**
 * What a deploy writes to a service row from the folder's kyozo.json (replicas, health check, env
 * values, autoscale): the one rule for turning a plan into row settings. On the first deploy they
 * are the new row's settings; on a redeploy a change is written before the workflow runs, so the
 * deploy itself rolls it out behind the health gate (its unchanged check compares env, health
 * config and replica count), like a PATCH's rollout. Replicas count against the team's quotas.
 */
import type { AutoscalePolicy } from "@kyozo/api/domain/AutoscalePolicy"
import { HealthCheckConfig } from "@kyozo/api/domain/HealthCheckConfig"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import type { PlannedHealthCheck, PlannedService } from "@kyozo/core/build/topology/Topology"
import { Schema } from "effect"

import type { Additions } from "./Quotas.js"
import { NEW_SERVICE_CPU_MILLIS, NEW_SERVICE_MEMORY_MB } from "./Quotas.js"

export interface RowSettings {
  readonly env?: Readonly<Record<string, string>>
  readonly healthConfig?: HealthCheckConfig
  readonly replicas?: number
  readonly autoscale?: AutoscalePolicy
}

/** kyozo.json's check over the row's (its intervals and thresholds stay); a path alone means HTTP. */
export const healthConfigOf = (check: PlannedHealthCheck, current?: HealthCheckConfig): HealthCheckConfig => {
  const base = current === undefined ? {} : Schema.encodeSync(HealthCheckConfig)(current)
  const type = check.type ?? (check.path !== undefined ? "http" : undefined)
  return Schema.decodeSync(HealthCheckConfig)({
    ...base,
    ...(type === undefined ? {} : { type: type === "none" ? "docker" : type }),
    ...(check.path === undefined ? {} : { path: check.path })
  })
}

const clamp = (n: number, policy: AutoscalePolicy) =>
  Math.min(policy.maxReplicas, Math.max(policy.minReplicas, n))

/**
 * The settings a deploy of `planned` writes over `current` (absent: a new service), only those that
 * differ. With autoscaling on a live service the autoscaler owns the count: the file's `replicas`
 * is the first count only, and a count outside a new [min, max] is brought inside.
 */
export const rowSettingsOf = (planned: PlannedService, current?: ServiceInstance): RowSettings => {
  const autoscale = planned.autoscale ?? current?.autoscale ?? null
  const env =
    planned.env === undefined
      ? undefined
      : current === undefined
        ? { ...planned.env }
        : Object.entries(planned.env).some(([k, v]) => current.env[k] !== v)
          ? { ...current.env, ...planned.env }
          : undefined
  const health =
    planned.healthCheck === undefined ? undefined : healthConfigOf(planned.healthCheck, current?.healthConfig)
  const healthConfig =
    health === undefined ||
    (current !== undefined &&
      JSON.stringify(Schema.encodeSync(HealthCheckConfig)(health)) ===
        JSON.stringify(Schema.encodeSync(HealthCheckConfig)(current.healthConfig)))
      ? undefined
      : health
  const now = current?.replicas ?? 1
  const wanted =
    autoscale === null
      ? planned.replicas
      : current === undefined
        ? clamp(planned.replicas ?? autoscale.minReplicas, autoscale)
        : clamp(now, autoscale)
  const replicas = wanted === undefined || wanted === now ? undefined : wanted
  return {
    ...(env === undefined ? {} : { env }),
    ...(healthConfig === undefined ? {} : { healthConfig }),
    ...(replicas === undefined ? {} : { replicas }),
    ...(planned.autoscale === undefined ? {} : { autoscale: planned.autoscale })
  }
}

/** What the settings add to the team's usage: a new service of the default size per replica, or more replicas. */
export const additionsOf = (settings: RowSettings, current?: ServiceInstance): Additions => {
  if (current === undefined) {
    const n = settings.replicas ?? 1
    return { services: 1, cpuMillis: n * NEW_SERVICE_CPU_MILLIS, memoryMb: n * NEW_SERVICE_MEMORY_MB }
  }
  const more = settings.replicas === undefined ? 0 : settings.replicas - current.replicas
  return { services: 0, cpuMillis: more * current.cpuMillis, memoryMb: more * current.memoryMb }
}

/**
 * /metrics in the Prometheus text exposition format (0.0.4): Kyozo's own figures (deploys and
 * their durations, breaker state, schedule pass times, deploy queue depth) and per-service gauges
 * labelled by service and team. `collect` reads them; `render` is pure, so the format is testable.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { BreakerStatus } from "@kyozo/api/domain/Breaker"
import { Effect } from "effect"

import { ContainerManager, type ScheduleStatus } from "./supervision/ContainerManager.js"

export const ContentType = "text/plain; version=0.0.4; charset=utf-8"

export type MetricType = "counter" | "gauge" | "summary" | "untyped"

export interface Sample {
  readonly labels?: Readonly<Record<string, string>>
  readonly value: number
  /** A suffix such as `_sum` or `_count` (summaries). */
  readonly suffix?: string
}

export interface Family {
  readonly name: string
  readonly type: MetricType
  readonly help: string
  readonly samples: ReadonlyArray<Sample>
}

/** Label values escape backslash, double quote and newline (the format's only escapes). */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")

/** HELP text escapes backslash and newline. */
const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/** Label names must match [a-zA-Z_][a-zA-Z0-9_]*; anything else becomes "_". */
const labelName = (name: string): string => {
  const cleaned = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[a-zA-Z_]/.test(cleaned) ? cleaned : `_${cleaned}`
}

export const formatValue = (value: number): string =>
  Number.isNaN(value) ? "NaN" : value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : String(value)

const formatLabels = (labels: Readonly<Record<string, string>> | undefined): string => {
  const entries = Object.entries(labels ?? {})
  return entries.length === 0
    ? ""
    : `{${entries.map(([k, v]) => `${labelName(k)}="${escapeLabelValue(v)}"`).join(",")}}`
}

/** The exposition text of the families, each with its HELP and TYPE lines; ends with a newline. */
export const render = (families: ReadonlyArray<Family>): string => {
  const lines: Array<string> = []
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`)
    lines.push(`# TYPE ${f.name} ${f.type}`)
    for (const s of f.samples)
      lines.push(`${f.name}${s.suffix ?? ""}${formatLabels(s.labels)} ${formatValue(s.value)}`)
  }
  return `${lines.join("\n")}\n`
}

// ---------------------------------------------------------------------------------------------
// What Kyozo exposes

export interface DeployFigures {
  /** Deployments by status. */
  readonly byStatus: ReadonlyArray<{ readonly status: string; readonly count: number }>
  /** Finished deployments: count and total seconds from creation to finish. */
  readonly finished: { readonly count: number; readonly sumSeconds: number }
  /** Deployments not yet finished (pending … switching): the deploy queue. */
  readonly queueDepth: number
}

export interface ServiceFigures {
  readonly serviceId: string
  readonly service: string
  readonly team: string
  readonly status: string
  readonly restartCount: number
  /** The newest metric sample, when there is one. */
  readonly sample: {
    readonly cpuPercent: number
    readonly memoryBytes: number
    readonly memoryLimitBytes: number
    readonly netRxBytes: number
    readonly netTxBytes: number
    readonly pids: number
  } | null
}

export interface MetricsSnapshot {
  readonly breaker: BreakerStatus
  readonly schedules: ReadonlyArray<ScheduleStatus>
  readonly deploys: DeployFigures
  readonly services: ReadonlyArray<ServiceFigures>
}

const SERVICE_STATUSES = [
  "pending",
  "deploying",
  "starting",
  "running",
  "degraded",
  "unhealthy",
  "failed",
  "stopped"
] as const
const BREAKER_STATES = ["closed", "open", "half-open"] as const

export const families = (m: MetricsSnapshot): ReadonlyArray<Family> => {
  const b = { breaker: m.breaker.name }
  const svc = (s: ServiceFigures) => ({ service: s.service, service_id: s.serviceId, team: s.team })
  const sampled = m.services.filter((s) => s.sample !== null)
  const perSample = (
    name: string,
    help: string,
    pick: (x: NonNullable<ServiceFigures["sample"]>) => number,
    type: MetricType = "gauge"
  ): Family => ({
    name,
    type,
    help,
    samples: sampled.map((s) => ({ labels: svc(s), value: pick(s.sample!) }))
  })
  return [
    {
      name: "kyozo_deployments",
      type: "gauge",
      help: "Deployments by status.",
      samples: m.deploys.byStatus.map((d) => ({ labels: { status: d.status }, value: d.count }))
    },
    {
      name: "kyozo_deployment_duration_seconds",
      type: "summary",
      help: "Time from creation to finish of finished deployments.",
      samples: [
        { suffix: "_sum", value: m.deploys.finished.sumSeconds },
        { suffix: "_count", value: m.deploys.finished.count }
      ]
    },
    {
      name: "kyozo_deploy_queue_depth",
      type: "gauge",
      help: "Deployments not finished yet.",
      samples: [{ value: m.deploys.queueDepth }]
    },
    {
      name: "kyozo_circuit_breaker_state",
      type: "gauge",
      help: "1 for the runtime circuit breaker's current state.",
      samples: BREAKER_STATES.map((state) => ({
        labels: { ...b, state },
        value: m.breaker.state === state ? 1 : 0
      }))
    },
    {
      name: "kyozo_circuit_breaker_consecutive_failures",
      type: "gauge",
      help: "Consecutive failed engine calls.",
      samples: [{ labels: b, value: m.breaker.consecutiveFailures }]
    },
    {
      name: "kyozo_circuit_breaker_trips",
      type: "gauge",
      help: "Trips since the breaker last closed.",
      samples: [{ labels: b, value: m.breaker.trips }]
    },
    {
      name: "kyozo_runtime_calls_total",
      type: "counter",
      help: "Engine calls through the breaker, by outcome.",
      samples: (["successes", "failures", "rejections", "interruptions"] as const).map((outcome) => ({
        labels: { ...b, outcome },
        value: m.breaker.totals[outcome]
      }))
    },
    {
      name: "kyozo_schedule_runs_total",
      type: "counter",
      help: "Runs of each maintenance pass.",
      samples: m.schedules.map((s) => ({ labels: { pass: s.pass }, value: s.runs }))
    },
    {
      name: "kyozo_schedule_failures_total",
      type: "counter",
      help: "Failed runs of each maintenance pass.",
      samples: m.schedules.map((s) => ({ labels: { pass: s.pass }, value: s.failures }))
    },
    {
      name: "kyozo_schedule_last_duration_seconds",
      type: "gauge",
      help: "Duration of the last run of each maintenance pass.",
      samples: m.schedules
        .filter((s) => s.lastDurationMs !== null)
        .map((s) => ({ labels: { pass: s.pass }, value: s.lastDurationMs! / 1000 }))
    },
    {
      name: "kyozo_schedule_last_finished_timestamp_seconds",
      type: "gauge",
      help: "When each maintenance pass last finished (Unix time).",
      samples: m.schedules
        .filter((s) => s.lastFinishedAt !== null)
        .map((s) => ({ labels: { pass: s.pass }, value: s.lastFinishedAt! / 1000 }))
    },
    {
      name: "kyozo_service_up",
      type: "gauge",
      help: "1 when the service is running and healthy.",
      samples: m.services.map((s) => ({ labels: svc(s), value: s.status === "running" ? 1 : 0 }))
    },
    {
      name: "kyozo_service_status",
      type: "gauge",
      help: "1 for the service's current status.",
      samples: m.services.flatMap((s) =>
        SERVICE_STATUSES.map((status) => ({
          labels: { ...svc(s), status },
          value: s.status === status ? 1 : 0
        }))
      )
    },
    {
      name: "kyozo_service_restarts_total",
      type: "counter",
      help: "Automatic restarts of the service.",
      samples: m.services.map((s) => ({ labels: svc(s), value: s.restartCount }))
    },
    perSample("kyozo_service_cpu_percent", "CPU use in the newest sample.", (x) => x.cpuPercent),
    perSample("kyozo_service_memory_bytes", "Memory use in the newest sample.", (x) => x.memoryBytes),
    perSample(
      "kyozo_service_memory_limit_bytes",
      "Memory limit of the container.",
      (x) => x.memoryLimitBytes
    ),
    perSample("kyozo_service_network_receive_bytes", "Bytes received by the container.", (x) => x.netRxBytes),
    perSample("kyozo_service_network_transmit_bytes", "Bytes sent by the container.", (x) => x.netTxBytes),
    perSample("kyozo_service_pids", "Processes in the container.", (x) => x.pids)
  ]
}

// ---------------------------------------------------------------------------------------------
// Reading the figures

const FINISHED = ["succeeded", "failed", "compensated", "superseded", "unchanged"]

export const collectDeploys: Effect.Effect<DeployFigures, SqlError, SqlClient.SqlClient> = Effect.gen(
  function* () {
    const sql = yield* SqlClient.SqlClient
    const byStatus = yield* sql<{ status: string; n: number }>`
    SELECT status, count(*)::int AS n FROM deployments GROUP BY status ORDER BY status`
    const [finished] = yield* sql<{ n: number; secs: number | string | null }>`
    SELECT count(*)::int AS n, sum(extract(epoch FROM finished_at - created_at))::float8 AS secs
    FROM deployments WHERE finished_at IS NOT NULL`
    return {
      byStatus: byStatus.map((r) => ({ status: r.status, count: Number(r.n) })),
      finished: { count: Number(finished?.n ?? 0), sumSeconds: Number(finished?.secs ?? 0) },
      queueDepth: byStatus.filter((r) => !FINISHED.includes(r.status)).reduce((a, r) => a + Number(r.n), 0)
    }
  }
)

export const collectServices: Effect.Effect<
  ReadonlyArray<ServiceFigures>,
  SqlError,
  SqlClient.SqlClient
> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{
    id: string
    name: string
    team: string
    status: string
    restart_count: number
    cpu_percent: number | null
    memory_bytes: string | number | null
    memory_limit_bytes: string | number | null
    net_rx_bytes: string | number | null
    net_tx_bytes: string | number | null
    pids: number | null
  }>`
      SELECT s.id, s.name, t.name AS team, s.status, s.restart_count,
             m.cpu_percent, m.memory_bytes, m.memory_limit_bytes, m.net_rx_bytes, m.net_tx_bytes, m.pids
      FROM container_service_instances s
      JOIN teams t ON t.id = s.team_id
      LEFT JOIN LATERAL (
        SELECT * FROM metric_samples ms WHERE ms.service_id = s.id AND ms.resolution = '1m'
        ORDER BY ms.sampled_at DESC LIMIT 1
      ) m ON TRUE
      WHERE s.deleted_at IS NULL
      ORDER BY t.name, s.name`
  return rows.map((r): ServiceFigures => ({
    serviceId: r.id,
    service: r.name,
    team: r.team,
    status: r.status,
    restartCount: Number(r.restart_count),
    sample:
      r.cpu_percent === null
        ? null
        : {
            cpuPercent: Number(r.cpu_percent),
            memoryBytes: Number(r.memory_bytes),
            memoryLimitBytes: Number(r.memory_limit_bytes),
            netRxBytes: Number(r.net_rx_bytes),
            netTxBytes: Number(r.net_tx_bytes),
            pids: Number(r.pids)
          }
  }))
})

/** Everything /metrics shows, from the manager's status and the database. */
export const collect: Effect.Effect<MetricsSnapshot, SqlError, SqlClient.SqlClient | ContainerManager> =
  Effect.gen(function* () {
    const manager = yield* ContainerManager
    const breaker = yield* manager.circuitBreakerStatus
    const schedules = yield* manager.schedules
    const deploys = yield* collectDeploys
    const services = yield* collectServices
    return { breaker, schedules, deploys, services }
  })

/** The whole /metrics body. */
export const renderMetrics = Effect.map(collect, (m) => render(families(m)))

/**
 * /metrics text: a parser-level check of the exposition format (every line a comment, blank, or
 * `name{labels} value`), label escaping, breaker state, and per-service gauges read from PGlite.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import type { BreakerStatus } from "@kyozo/api/domain/Breaker"
import * as PrometheusText from "@kyozo/core/PrometheusText"
import type { ScheduleStatus } from "@kyozo/core/supervision/ContainerManager"
import { Effect, Layer } from "effect"

import { pgliteLayer } from "./support/database.js"

const LABEL_VALUE = String.raw`"(?:[^"\\\n]|\\[\\"n])*"`
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE}`
const SAMPLE = new RegExp(
  String.raw`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{${LABEL}(?:,${LABEL})*\})? (-?[0-9.]+(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$`
)
const COMMENT = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/

/** Checks every line and returns the samples as `name{labels}` → value. */
const parse = (text: string): Map<string, number> => {
  expect(text.endsWith("\n")).toBe(true)
  const samples = new Map<string, number>()
  const typed = new Set<string>()
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue
    const c = COMMENT.exec(line)
    if (c) {
      if (c[1] === "TYPE") {
        expect(["counter", "gauge", "summary", "histogram", "untyped"]).toContain(c[3])
        typed.add(c[2]!)
      }
      continue
    }
    const m = SAMPLE.exec(line)
    if (!m) throw new Error(`not a valid exposition line: ${JSON.stringify(line)}`)
    const family = m[1]!.replace(/_(sum|count)$/, "")
    expect(typed.has(m[1]!) || typed.has(family)).toBe(true)
    const key = `${m[1]}${m[2] ?? ""}`
    expect(samples.has(key)).toBe(false) // no duplicate series
    samples.set(key, Number(m[3]))
  }
  return samples
}

const breaker: BreakerStatus = {
  name: "docker",
  state: "open",
  consecutiveFailures: 5,
  window: { size: 20, calls: 20, failures: 10, failureRate: 0.5 },
  openedAt: 1000,
  retryAt: 31000,
  openForMs: 30000,
  trips: 2,
  halfOpenInFlight: 0,
  totals: { calls: 100, successes: 90, failures: 10, rejections: 3, interruptions: 0 },
  lastChange: null
}

const schedules: ReadonlyArray<ScheduleStatus> = [
  {
    pass: "health",
    intervalMs: 30000,
    runs: 12,
    failures: 1,
    lastStartedAt: 1_700_000_000_000,
    lastFinishedAt: 1_700_000_000_250,
    lastDurationMs: 250,
    lastReport: null,
    lastError: null
  }
]

describe("Prometheus text (pure)", () => {
  it("escapes label values: backslash, quote, newline", () => {
    expect(PrometheusText.escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd')
    const text = PrometheusText.render([
      {
        name: "x_total",
        type: "counter",
        help: "multi\nline help",
        samples: [{ labels: { "bad-name": 'quote " back \\ nl \n end' }, value: 3 }]
      }
    ])
    const samples = parse(text)
    expect(samples.get(String.raw`x_total{bad_name="quote \" back \\ nl \n end"}`)).toBe(3)
    expect(text).toContain("# HELP x_total multi\\nline help")
  })

  it("breaker state, schedule pass times, deploys and service gauges are well-formed", () => {
    const text = PrometheusText.render(
      PrometheusText.families({
        breaker,
        schedules,
        deploys: {
          byStatus: [
            { status: "building", count: 2 },
            { status: "succeeded", count: 7 }
          ],
          finished: { count: 7, sumSeconds: 70.5 },
          queueDepth: 2
        },
        services: [
          {
            serviceId: "svc_1",
            service: "web",
            team: 'Team "A"',
            status: "running",
            restartCount: 4,
            sample: {
              cpuPercent: 12.5,
              memoryBytes: 1024,
              memoryLimitBytes: 4096,
              netRxBytes: 1,
              netTxBytes: 2,
              pids: 3
            }
          },
          { serviceId: "svc_2", service: "db", team: "b", status: "failed", restartCount: 0, sample: null }
        ]
      })
    )
    const s = parse(text)
    expect(s.get('kyozo_circuit_breaker_state{breaker="docker",state="open"}')).toBe(1)
    expect(s.get('kyozo_circuit_breaker_state{breaker="docker",state="closed"}')).toBe(0)
    expect(s.get('kyozo_runtime_calls_total{breaker="docker",outcome="rejections"}')).toBe(3)
    expect(s.get('kyozo_schedule_last_duration_seconds{pass="health"}')).toBe(0.25)
    expect(s.get('kyozo_schedule_runs_total{pass="health"}')).toBe(12)
    expect(s.get("kyozo_deployment_duration_seconds_sum")).toBe(70.5)
    expect(s.get("kyozo_deployment_duration_seconds_count")).toBe(7)
    expect(s.get("kyozo_deploy_queue_depth")).toBe(2)
    const web = 'service="web",service_id="svc_1",team="Team \\"A\\""'
    expect(s.get(`kyozo_service_up{${web}}`)).toBe(1)
    expect(s.get(`kyozo_service_cpu_percent{${web}}`)).toBe(12.5)
    expect(s.get(`kyozo_service_restarts_total{${web}}`)).toBe(4)
    expect(s.get('kyozo_service_status{service="db",service_id="svc_2",team="b",status="failed"}')).toBe(1)
    expect(s.get('kyozo_service_up{service="db",service_id="svc_2",team="b"}')).toBe(0)
    // No sample, no resource gauges for db.
    expect([...s.keys()].some((k) => k.startsWith('kyozo_service_cpu_percent{service="db"'))).toBe(false)
  })
})

describe("Prometheus figures from the database", () => {
  layer(pgliteLayer.pipe(Layer.orDie), { timeout: "120 seconds" })((it) => {
    it.effect("deploy counts, durations, queue depth and the newest sample per service", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`TRUNCATE metric_samples, container_deployment_events, deployments, container_service_instances, teams CASCADE`
        yield* sql`INSERT INTO teams (id, name) VALUES ('team_p', 'prom')`
        yield* sql`INSERT INTO container_service_instances (id, team_id, name, status, restart_count)
                   VALUES ('svc_p1', 'team_p', 'api', 'running', 2), ('svc_p2', 'team_p', 'idle', 'stopped', 0)`
        yield* sql`INSERT INTO deployments (id, service_id, team_id, status, created_at, finished_at) VALUES
          ('dep_1', 'svc_p1', 'team_p', 'succeeded', '2026-01-01T00:00:00Z', '2026-01-01T00:00:30Z'),
          ('dep_2', 'svc_p1', 'team_p', 'failed', '2026-01-01T00:01:00Z', '2026-01-01T00:01:10Z'),
          ('dep_3', 'svc_p1', 'team_p', 'building', now(), NULL)`
        yield* sql`INSERT INTO metric_samples (service_id, container_id, cpu_percent, memory_bytes, memory_limit_bytes, pids, sampled_at) VALUES
          ('svc_p1', 'c1', 5, 100, 1000, 1, '2026-01-01T00:00:00Z'),
          ('svc_p1', 'c1', 7.5, 200, 1000, 2, '2026-01-01T00:01:00Z')`
        const deploys = yield* PrometheusText.collectDeploys
        expect(deploys.finished).toEqual({ count: 2, sumSeconds: 40 })
        expect(deploys.queueDepth).toBe(1)
        const services = yield* PrometheusText.collectServices
        const text = PrometheusText.render(
          PrometheusText.families({ breaker, schedules: [], deploys, services })
        )
        const s = parse(text)
        const api = 'service="api",service_id="svc_p1",team="prom"'
        expect(s.get(`kyozo_service_cpu_percent{${api}}`)).toBe(7.5)
        expect(s.get(`kyozo_service_memory_bytes{${api}}`)).toBe(200)
        expect(s.get(`kyozo_service_restarts_total{${api}}`)).toBe(2)
        expect(s.get('kyozo_service_up{service="idle",service_id="svc_p2",team="prom"}')).toBe(0)
        expect(s.get('kyozo_deployments{status="building"}')).toBe(1)
      })
    )
  })
})

/**
 * metric_samples: "1m" rows from the metrics loop, rolled up into "1h" rows by cleanup, each
 * resolution pruned on its own retention.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { ServiceId } from "@kyozo/api/domain/Ids"
import { MetricSample, type Resolution } from "@kyozo/api/domain/MetricSample"
import { Effect } from "effect"

import { rowDecoder } from "./SqlRows.js"

export interface NewMetricSample {
  readonly serviceId: ServiceId | string
  readonly containerId: string
  readonly resolution?: Resolution
  readonly cpuPercent: number
  readonly memoryBytes: number
  readonly memoryLimitBytes: number
  readonly netRxBytes?: number
  readonly netTxBytes?: number
  readonly blockReadBytes?: number
  readonly blockWriteBytes?: number
  readonly pids?: number
  /** Defaults to the database's now(). */
  readonly sampledAt?: Date
}

const columns = `id, service_id, container_id, resolution, cpu_percent, memory_bytes, memory_limit_bytes,
  net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes, pids, sampled_at`

const HOUR_MS = 3_600_000

/** The start of the UTC hour holding `date`. */
export const hourStart = (date: Date): Date => new Date(Math.floor(date.getTime() / HOUR_MS) * HOUR_MS)

export class MetricSampleRepo extends Effect.Service<MetricSampleRepo>()("@kyozo/core/MetricSampleRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = rowDecoder(MetricSample)

    /**
     * One INSERT for all rows (a pass over hundreds of containers is one round trip), the rows as
     * one JSON parameter: binding 12 parameters per row costs more than the insert itself.
     */
    const insertMany = (samples: ReadonlyArray<NewMetricSample>): Effect.Effect<number, SqlError> => {
      if (samples.length === 0) return Effect.succeed(0)
      const now = new Date()
      const json = JSON.stringify(
        samples.map((s) => ({
          service_id: s.serviceId,
          container_id: s.containerId,
          resolution: s.resolution ?? "1m",
          cpu_percent: Number.isFinite(s.cpuPercent) ? s.cpuPercent : 0,
          memory_bytes: Math.round(s.memoryBytes),
          memory_limit_bytes: Math.round(s.memoryLimitBytes),
          net_rx_bytes: Math.round(s.netRxBytes ?? 0),
          net_tx_bytes: Math.round(s.netTxBytes ?? 0),
          block_read_bytes: Math.round(s.blockReadBytes ?? 0),
          block_write_bytes: Math.round(s.blockWriteBytes ?? 0),
          pids: Math.round(s.pids ?? 0),
          sampled_at: (s.sampledAt ?? now).toISOString()
        }))
      )
      return sql`INSERT INTO metric_samples (service_id, container_id, resolution, cpu_percent, memory_bytes,
          memory_limit_bytes, net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes, pids, sampled_at)
        SELECT service_id, container_id, resolution, cpu_percent, memory_bytes, memory_limit_bytes,
          net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes, pids, sampled_at
        FROM jsonb_to_recordset(${json}::jsonb) AS x(service_id text, container_id text, resolution text,
          cpu_percent double precision, memory_bytes bigint, memory_limit_bytes bigint, net_rx_bytes bigint,
          net_tx_bytes bigint, block_read_bytes bigint, block_write_bytes bigint, pids integer,
          sampled_at timestamptz)`.pipe(Effect.as(samples.length))
    }

    /** Oldest first, for charts. */
    const listByService = (
      serviceId: ServiceId | string,
      resolution: Resolution,
      since: Date
    ): Effect.Effect<ReadonlyArray<MetricSample>, SqlError> =>
      rows.all(
        sql`SELECT ${sql.literal(columns)} FROM metric_samples
            WHERE service_id = ${serviceId} AND resolution = ${resolution} AND sampled_at >= ${since}
            ORDER BY sampled_at, id`
      )

    /** Samples of several services since `since`, oldest first: what alert rules are evaluated on. */
    const listRecent = (
      serviceIds: ReadonlyArray<ServiceId | string>,
      since: Date,
      resolution: Resolution = "1m"
    ): Effect.Effect<ReadonlyArray<MetricSample>, SqlError> =>
      serviceIds.length === 0
        ? Effect.succeed([])
        : rows.all(
            sql`SELECT ${sql.literal(columns)} FROM metric_samples
                WHERE ${sql.in("service_id", serviceIds)} AND resolution = ${resolution} AND sampled_at >= ${since}
                ORDER BY sampled_at, id`
          )

    /**
     * Rolls the "1m" rows of one hour into one "1h" row per container, stamped with the hour's
     * start. Idempotent: the hour's "1h" rows are replaced in the same statement, so a rerun (or a
     * late sample) rewrites the averages instead of adding rows. Counters (network, block I/O) are
     * cumulative, so the roll-up keeps their maximum; gauges are averaged.
     */
    const downsample = (hour: Date): Effect.Effect<number, SqlError> => {
      const from = hourStart(hour)
      const to = new Date(from.getTime() + HOUR_MS)
      return sql<{ n: number }>`
        WITH replaced AS (
          DELETE FROM metric_samples WHERE resolution = '1h' AND sampled_at = ${from}
        ), inserted AS (
          INSERT INTO metric_samples (service_id, container_id, resolution, cpu_percent, memory_bytes,
            memory_limit_bytes, net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes, pids, sampled_at)
          SELECT service_id, container_id, '1h', avg(cpu_percent), round(avg(memory_bytes))::bigint,
            max(memory_limit_bytes), max(net_rx_bytes), max(net_tx_bytes), max(block_read_bytes),
            max(block_write_bytes), round(avg(pids))::int, ${from}::timestamptz
          FROM metric_samples
          WHERE resolution = '1m' AND sampled_at >= ${from} AND sampled_at < ${to}
          GROUP BY service_id, container_id
          RETURNING 1
        )
        SELECT count(*)::int AS n FROM inserted`.pipe(Effect.map((r) => r[0]?.n ?? 0))
    }

    /**
     * Complete hours (before `before`) holding "1m" rows but no "1h" row yet: what cleanup still
     * has to roll up. Level-driven, so a missed pass is caught up by the next one.
     */
    const hoursPendingDownsample = (before: Date, limit = 48): Effect.Effect<ReadonlyArray<Date>, SqlError> =>
      sql<{ hour: Date }>`
        SELECT DISTINCT m.hour FROM (
          SELECT date_trunc('hour', sampled_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour
          FROM metric_samples WHERE resolution = '1m' AND sampled_at < ${hourStart(before)}
        ) m
        WHERE NOT EXISTS (SELECT 1 FROM metric_samples h WHERE h.resolution = '1h' AND h.sampled_at = m.hour)
        ORDER BY m.hour
        LIMIT ${limit}`.pipe(Effect.map((r) => r.map((x) => new Date(x.hour))))

    /** Deletes rows of one resolution sampled before `date`; returns how many went. */
    const pruneOlderThan = (resolution: Resolution, date: Date): Effect.Effect<number, SqlError> =>
      sql<{ n: number }>`WITH gone AS (
          DELETE FROM metric_samples WHERE resolution = ${resolution} AND sampled_at < ${date} RETURNING 1
        ) SELECT count(*)::int AS n FROM gone`.pipe(Effect.map((r) => r[0]?.n ?? 0))

    return {
      insertMany,
      listByService,
      listRecent,
      downsample,
      hoursPendingDownsample,
      pruneOlderThan
    } as const
  })
}) {}

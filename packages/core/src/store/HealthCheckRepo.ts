/**
 * health_checks: transitions plus a sampled trail (the health pass decides what to store, see
 * HealthWorker). The health loop appends a pass's rows in one statement, reads the newest row of
 * each service once at start, and cleanup prunes rows past retention.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { type CheckType, HealthCheck, type HealthStatus } from "@kyozo/api/domain/HealthCheck"
import type { ServiceId } from "@kyozo/api/domain/Ids"
import { Effect } from "effect"

import { rowDecoder } from "./SqlRows.js"

export interface NewHealthCheck {
  readonly serviceId: ServiceId | string
  readonly containerId: string | null
  readonly checkType: CheckType
  readonly status: HealthStatus
  readonly latencyMs: number | null
  readonly detail?: string
  /** Defaults to the database's now(). */
  readonly checkedAt?: Date
}

const columns = "id, service_id, container_id, check_type, status, latency_ms, detail, checked_at"

const toRow = (row: NewHealthCheck) => ({
  service_id: row.serviceId,
  container_id: row.containerId,
  check_type: row.checkType,
  status: row.status,
  // The column is an integer; probes measure fractions of a millisecond.
  latency_ms: row.latencyMs === null ? null : Math.round(row.latencyMs),
  detail: row.detail ?? "",
  checked_at: row.checkedAt ?? new Date()
})

export class HealthCheckRepo extends Effect.Service<HealthCheckRepo>()("@kyozo/core/HealthCheckRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = rowDecoder(HealthCheck)

    const record = (row: NewHealthCheck): Effect.Effect<HealthCheck, SqlError> =>
      rows.single(sql`INSERT INTO health_checks ${sql.insert(toRow(row))} RETURNING ${sql.literal(columns)}`)

    /** Many rows in one statement: the health pass writes all of its results at once. */
    const recordMany = (batch: ReadonlyArray<NewHealthCheck>): Effect.Effect<number, SqlError> =>
      batch.length === 0
        ? Effect.succeed(0)
        : sql`INSERT INTO health_checks ${sql.insert(batch.map(toRow))}`.pipe(Effect.as(batch.length))

    /** Newest first. */
    const latestByService = (
      serviceId: ServiceId | string,
      limit = 20
    ): Effect.Effect<ReadonlyArray<HealthCheck>, SqlError> =>
      rows.all(
        sql`SELECT ${sql.literal(columns)} FROM health_checks
            WHERE service_id = ${serviceId}
            ORDER BY checked_at DESC, id DESC
            LIMIT ${Math.max(1, Math.floor(limit))}`
      )

    /** The newest row of each given service; services never checked are absent from the map. */
    const latestStatus = (
      serviceIds: ReadonlyArray<ServiceId | string>
    ): Effect.Effect<ReadonlyMap<string, HealthCheck>, SqlError> =>
      serviceIds.length === 0
        ? Effect.succeed(new Map())
        : rows
            .all(
              sql`SELECT DISTINCT ON (service_id) ${sql.literal(columns)} FROM health_checks
                  WHERE ${sql.in("service_id", serviceIds)}
                  ORDER BY service_id, checked_at DESC, id DESC`
            )
            .pipe(Effect.map((checks) => new Map(checks.map((c) => [c.serviceId as string, c] as const))))

    /** Deletes rows checked before `date`; returns how many went. */
    const pruneOlderThan = (date: Date): Effect.Effect<number, SqlError> =>
      sql<{ n: number }>`WITH gone AS (DELETE FROM health_checks WHERE checked_at < ${date} RETURNING 1)
                        SELECT count(*)::int AS n FROM gone`.pipe(Effect.map((r) => r[0]?.n ?? 0))

    return { record, recordMany, latestByService, latestStatus, pruneOlderThan } as const
  })
}) {}

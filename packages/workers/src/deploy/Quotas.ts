/**
 * Per-team quotas (teams.quota_services, quota_cpu_millis, quota_memory_mb): the one check every
 * change of service count, limits or replicas goes through (deploys creating services, PATCH of a
 * service's limits). Usage is what the team's live (not deleted) services reserve.
 *
 * Check and change are one short transaction holding the team row's lock (`SELECT … FOR UPDATE`):
 * a second change of the same team waits, then counts with the first one's rows committed, so two
 * deploys racing at the limit cannot both pass. Only SQL runs inside (never Docker, never a
 * workflow: on PGlite the transaction holds the only connection).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { QuotaExceeded } from "@kyozo/api/domain/Deploy"
import type { TeamId } from "@kyozo/api/domain/Ids"
import { Effect, Schema } from "effect"

/** The column defaults of container_service_instances (migrations/0001_init.sql): what a new service reserves. */
export const NEW_SERVICE_CPU_MILLIS = 500
export const NEW_SERVICE_MEMORY_MB = 512

const Usage = Schema.Struct({
  services: Schema.NumberFromString,
  cpu: Schema.NumberFromString,
  memory: Schema.NumberFromString,
  quota_services: Schema.Number,
  quota_cpu_millis: Schema.Number,
  quota_memory_mb: Schema.Number
})

/**
 * What a change adds to the team's usage (negative: frees). `cpuMillis`/`memoryMb` default to what
 * `services` new services of the default size reserve.
 */
export interface Additions {
  readonly services: number
  readonly cpuMillis?: number
  readonly memoryMb?: number
}

export interface QuotaGate {
  /**
   * Under the team's lock: computes the additions (inside the lock, so they see concurrent
   * changes), checks they fit, then runs `apply` (SQL only). Dimensions a change does not raise are
   * never refused, so a team above a lowered quota can still shrink.
   */
  readonly withinQuota: <A, E, R>(
    teamId: TeamId,
    additions: Effect.Effect<Additions, E, R>,
    apply: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, Exclude<E, SqlError> | QuotaExceeded, R>
}

export const makeGate: Effect.Effect<QuotaGate, never, SqlClient.SqlClient> = Effect.map(
  SqlClient.SqlClient,
  (sql): QuotaGate => {
    const check = (teamId: TeamId, additions: Additions) =>
      Effect.gen(function* () {
        const rows = yield* sql`
          SELECT (SELECT count(*) FROM container_service_instances s
                    WHERE s.team_id = t.id AND s.deleted_at IS NULL)::text AS services,
                 (SELECT coalesce(sum(cpu_millis * replicas), 0) FROM container_service_instances s
                    WHERE s.team_id = t.id AND s.deleted_at IS NULL)::text AS cpu,
                 (SELECT coalesce(sum(memory_mb * replicas), 0) FROM container_service_instances s
                    WHERE s.team_id = t.id AND s.deleted_at IS NULL)::text AS memory,
                 t.quota_services, t.quota_cpu_millis, t.quota_memory_mb
            FROM teams t WHERE t.id = ${teamId}`
        if (rows.length === 0) return
        const u = yield* Schema.decodeUnknown(Usage)(rows[0])
        const cpu = additions.cpuMillis ?? additions.services * NEW_SERVICE_CPU_MILLIS
        const memory = additions.memoryMb ?? additions.services * NEW_SERVICE_MEMORY_MB
        const wanted = [
          ["services", u.quota_services, u.services, additions.services],
          ["cpu_millis", u.quota_cpu_millis, u.cpu, cpu],
          ["memory_mb", u.quota_memory_mb, u.memory, memory]
        ] as const
        for (const [quota, limit, used, added] of wanted) {
          if (added > 0 && used + added > limit)
            return yield* new QuotaExceeded({ quota, limit, requested: used + added })
        }
      })

    const withinQuota = <A, E, R>(
      teamId: TeamId,
      additions: Effect.Effect<Additions, E, R>,
      apply: Effect.Effect<A, E, R>
    ): Effect.Effect<A, Exclude<E, SqlError> | QuotaExceeded, R> =>
      Effect.gen(function* () {
        // The team row's lock serialises every quota change of the team (released at commit).
        yield* sql`SELECT id FROM teams WHERE id = ${teamId} FOR UPDATE`
        const add = yield* additions
        yield* check(teamId, add)
        return yield* apply
      }).pipe(
        sql.withTransaction,
        // A database outage is not the caller's quota problem: storage errors are defects.
        Effect.catchIf(
          (e): e is SqlError =>
            typeof e === "object" &&
            e !== null &&
            "_tag" in e &&
            (e._tag === "SqlError" || e._tag === "ParseError"),
          (e) => Effect.die(e)
        )
      ) as Effect.Effect<A, Exclude<E, SqlError> | QuotaExceeded, R>
    return { withinQuota }
  }
)

/**
 * Per-team quotas (teams.quota_services, quota_cpu_millis, quota_memory_mb), checked before a deploy
 * creates service rows. Usage is what the team's live (not deleted) services reserve; a redeploy of
 * an existing service adds nothing. The check and the insert are not one transaction (PGlite has one
 * session and deploys must not hold it), so two deploys racing at the very limit may both pass.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { TeamId } from "@kyozo/core/domain/Ids"
import { Effect, Schema } from "effect"
import { QuotaExceeded } from "./Deployer.js"

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

export interface Additions {
  readonly services: number
  readonly cpuMillis?: number
  readonly memoryMb?: number
}

export type CheckQuotas = (teamId: TeamId, additions: Additions) => Effect.Effect<void, QuotaExceeded, never>

/** The check: fails with the first quota the additions would exceed; an unknown team has nothing to check. */
export const make: Effect.Effect<CheckQuotas, never, SqlClient.SqlClient> = Effect.map(
  SqlClient.SqlClient,
  (sql) => (teamId, additions) =>
    Effect.gen(function* () {
      if (additions.services <= 0 && !additions.cpuMillis && !additions.memoryMb) return
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
      const wanted = [
        ["services", u.quota_services, u.services + additions.services],
        [
          "cpu_millis",
          u.quota_cpu_millis,
          u.cpu + (additions.cpuMillis ?? additions.services * NEW_SERVICE_CPU_MILLIS)
        ],
        [
          "memory_mb",
          u.quota_memory_mb,
          u.memory + (additions.memoryMb ?? additions.services * NEW_SERVICE_MEMORY_MB)
        ]
      ] as const
      for (const [quota, limit, requested] of wanted) {
        if (requested > limit) return yield* new QuotaExceeded({ quota, limit, requested })
      }
    }).pipe(
      // A database outage is not the caller's quota problem.
      Effect.catchTags({ SqlError: Effect.die, ParseError: Effect.die })
    )
)

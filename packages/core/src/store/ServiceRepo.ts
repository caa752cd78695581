/**
 * Services: the desired state the reconciler converges to. Every API method is scoped by team;
 * `listDesired`, `findByIdAnyTeam`, `updateObserved`, `updateStatusIf` and `recordRestart` are the global ones the
 * loops and workflows use.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { AutoscalePolicy } from "@kyozo/api/domain/AutoscalePolicy"
import { HealthCheckConfig } from "@kyozo/api/domain/HealthCheckConfig"
import { type DeploymentId, makeServiceId, type ServiceId, type TeamId } from "@kyozo/api/domain/Ids"
import {
  type DesiredState,
  type RestartPolicy,
  ServiceInstance,
  type ServiceStatus
} from "@kyozo/api/domain/ServiceInstance"
import type { ServiceVolume } from "@kyozo/api/domain/ServiceVolume"
import { Effect, Option, Schema } from "effect"

import * as ChangeEpoch from "./ChangeEpoch.js"
import {
  clampLimit,
  definedColumns,
  inJson,
  jsonb,
  type Page,
  type PageOptions,
  rowDecoder,
  sqlConstraint,
  sqlState
} from "./SqlRows.js"

export class ServiceNameTaken extends Schema.TaggedError<ServiceNameTaken>()("ServiceNameTaken", {
  teamId: Schema.String,
  name: Schema.String
}) {
  override get message() {
    return `The team already has a service named "${this.name}". Choose another name, or delete the existing service first.`
  }
}

/** What an API caller may change; absent fields stay as they are. */
export interface UpdateService {
  readonly name?: string
  readonly kind?: string | null
  readonly framework?: string | null
  readonly image?: string | null
  readonly desiredState?: DesiredState
  readonly internalPort?: number | null
  readonly hostPort?: number | null
  readonly cpuMillis?: number
  readonly memoryMb?: number
  readonly env?: Readonly<Record<string, string>>
  readonly healthConfig?: HealthCheckConfig
  readonly restartPolicy?: RestartPolicy
  readonly replicas?: number
  readonly source?: Readonly<Record<string, unknown>>
  readonly volumes?: ReadonlyArray<ServiceVolume>
  /** null turns autoscaling off. */
  readonly autoscale?: AutoscalePolicy | null
}

/** A new service: its team and name, then the settings a caller may also change later (replicas default to 1). */
export interface CreateService extends Omit<UpdateService, "name"> {
  readonly id?: ServiceId
  readonly teamId: TeamId
  readonly name: string
}

/** What the loops observed; absent fields stay as they are, null clears. */
export interface ObservedState {
  readonly status?: ServiceStatus
  readonly containerId?: string | null
  readonly containerName?: string | null
  readonly currentDeploymentId?: DeploymentId | null
  readonly hostPort?: number | null
  readonly image?: string | null
}

const encodeHealth = Schema.encodeSync(HealthCheckConfig)

const isNameConflict = (e: SqlError): boolean =>
  sqlState(e) === "23505" && (sqlConstraint(e) === undefined || sqlConstraint(e) === "services_team_name_idx")

export class ServiceRepo extends Effect.Service<ServiceRepo>()("@kyozo/core/ServiceRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // The loops and the API read every service again and again; unchanged rows are not re-decoded.
    const rows = rowDecoder(ServiceInstance, { memoBy: "id" })

    const nameTaken =
      (teamId: TeamId, name: string | undefined) =>
      (e: SqlError): Effect.Effect<never, ServiceNameTaken | SqlError> =>
        name !== undefined && isNameConflict(e)
          ? Effect.fail(new ServiceNameTaken({ teamId, name }))
          : Effect.fail(e)

    const create = (input: CreateService): Effect.Effect<ServiceInstance, ServiceNameTaken | SqlError> => {
      const id = input.id ?? makeServiceId()
      return rows
        .single(
          sql`INSERT INTO container_service_instances ${sql.insert(
            definedColumns({
              id,
              team_id: input.teamId,
              name: input.name,
              kind: input.kind ?? null,
              framework: input.framework ?? null,
              image: input.image ?? null,
              desired_state: input.desiredState,
              internal_port: input.internalPort ?? null,
              host_port: input.hostPort ?? null,
              cpu_millis: input.cpuMillis,
              memory_mb: input.memoryMb,
              env: jsonb(input.env ?? {}),
              health_config: jsonb(input.healthConfig ? encodeHealth(input.healthConfig) : {}),
              restart_policy: input.restartPolicy,
              replicas: input.replicas,
              source: jsonb(input.source ?? {}),
              volumes: input.volumes === undefined ? undefined : jsonb(input.volumes),
              autoscale: input.autoscale == null ? undefined : jsonb(input.autoscale)
            })
          )} RETURNING *`
        )
        .pipe(
          Effect.catchTag("SqlError", nameTaken(input.teamId, input.name)),
          Effect.withSpan("ServiceRepo.create")
        )
    }

    const findById = (
      teamId: TeamId,
      id: ServiceId
    ): Effect.Effect<Option.Option<ServiceInstance>, SqlError> =>
      rows.first(
        sql`SELECT * FROM container_service_instances WHERE id = ${id} AND team_id = ${teamId} AND deleted_at IS NULL`
      )

    const findByName = (
      teamId: TeamId,
      name: string
    ): Effect.Effect<Option.Option<ServiceInstance>, SqlError> =>
      rows.first(
        sql`SELECT * FROM container_service_instances WHERE team_id = ${teamId} AND name = ${name} AND deleted_at IS NULL`
      )

    /** Oldest first; the cursor is the last service id of the previous page. */
    const list = (
      teamId: TeamId,
      options: PageOptions<ServiceId> = {}
    ): Effect.Effect<Page<ServiceInstance, ServiceId>, SqlError> => {
      const limit = clampLimit(options.limit)
      const after = options.after
        ? sql`AND (created_at, id) > (SELECT created_at, id FROM container_service_instances WHERE id = ${options.after} AND team_id = ${teamId})`
        : sql``
      return rows
        .all(
          sql`SELECT * FROM container_service_instances
              WHERE team_id = ${teamId} AND deleted_at IS NULL ${after}
              ORDER BY created_at, id LIMIT ${limit + 1}`
        )
        .pipe(
          Effect.map((found) => ({
            items: found.slice(0, limit),
            nextCursor: found.length > limit ? found[limit - 1]!.id : null
          }))
        )
    }

    const countByTeam = (teamId: TeamId): Effect.Effect<number, SqlError> =>
      sql<{
        n: number
      }>`SELECT count(*)::int AS n FROM container_service_instances WHERE team_id = ${teamId} AND deleted_at IS NULL`.pipe(
        Effect.map((r) => Number(r[0]?.n ?? 0))
      )

    const update = (
      teamId: TeamId,
      id: ServiceId,
      patch: UpdateService
    ): Effect.Effect<Option.Option<ServiceInstance>, ServiceNameTaken | SqlError> => {
      const columns = definedColumns({
        name: patch.name,
        kind: patch.kind,
        framework: patch.framework,
        image: patch.image,
        desired_state: patch.desiredState,
        internal_port: patch.internalPort,
        host_port: patch.hostPort,
        cpu_millis: patch.cpuMillis,
        memory_mb: patch.memoryMb,
        env: patch.env === undefined ? undefined : jsonb(patch.env),
        health_config: patch.healthConfig === undefined ? undefined : jsonb(encodeHealth(patch.healthConfig)),
        restart_policy: patch.restartPolicy,
        replicas: patch.replicas,
        source: patch.source === undefined ? undefined : jsonb(patch.source),
        volumes: patch.volumes === undefined ? undefined : jsonb(patch.volumes),
        autoscale:
          patch.autoscale === undefined ? undefined : patch.autoscale === null ? null : jsonb(patch.autoscale)
      })
      const set =
        Object.keys(columns).length > 0
          ? sql`${sql.update(columns)}, updated_at = now()`
          : sql`updated_at = now()`
      return rows
        .first(
          sql`UPDATE container_service_instances SET ${set}
              WHERE id = ${id} AND team_id = ${teamId} AND deleted_at IS NULL RETURNING *`
        )
        .pipe(
          Effect.catchTag("SqlError", nameTaken(teamId, patch.name)),
          Effect.withSpan("ServiceRepo.update")
        )
    }

    /** Marks the service deleted and removed; the cleanup loop then removes its containers. */
    const softDelete = (teamId: TeamId, id: ServiceId): Effect.Effect<boolean, SqlError> =>
      sql`UPDATE container_service_instances
          SET deleted_at = now(), desired_state = 'removed', updated_at = now()
          WHERE id = ${id} AND team_id = ${teamId} AND deleted_at IS NULL RETURNING id`.pipe(
        Effect.map((r) => r.length > 0)
      )

    /** Global: every service that still exists, for the reconcile loops. */
    // listDesired's rows by id, each with the row version (`xmin`: every committed change of a row,
    // by any process or statement, gives it a new one) it was read at.
    const desired = new Map<string, { readonly version: string; readonly row: ServiceInstance }>()

    /**
     * Global: every service not deleted, oldest first. The loops call this on every pass: it reads
     * each row's version (one narrow query) and fetches whole rows only for those that changed.
     */
    const listDesired = (): Effect.Effect<ReadonlyArray<ServiceInstance>, SqlError> =>
      Effect.gen(function* () {
        const heads = yield* sql<{ id: string; version: string }>`
          SELECT id, xmin::text AS version FROM container_service_instances
          WHERE deleted_at IS NULL ORDER BY created_at, id`
        const changed = heads.filter((h) => desired.get(h.id)?.version !== h.version).map((h) => h.id)
        if (changed.length > 0) {
          const fetched = yield* sql<Record<string, unknown>>`
            SELECT *, xmin::text AS kyozo_row_version FROM container_service_instances
            WHERE ${inJson(sql, "id", changed)}`
          const decoded = yield* rows.all(Effect.succeed(fetched))
          for (let i = 0; i < decoded.length; i++) {
            desired.set(decoded[i]!.id, { version: String(fetched[i]!.kyozo_row_version), row: decoded[i]! })
          }
        }
        const present = new Set<string>()
        const out: Array<ServiceInstance> = []
        for (const h of heads) {
          present.add(h.id)
          const entry = desired.get(h.id)
          // Changed again since the narrow read: the fetched (newer) row is what is; deleted ones go.
          if (entry !== undefined && entry.row.deletedAt === null) out.push(entry.row)
        }
        for (const id of desired.keys()) if (!present.has(id)) desired.delete(id)
        return out
      })

    /** Global: one service by id whatever its team, deleted ones included (workflows finishing up). */
    const findByIdAnyTeam = (id: ServiceId): Effect.Effect<Option.Option<ServiceInstance>, SqlError> =>
      rows.first(sql`SELECT * FROM container_service_instances WHERE id = ${id}`)

    /** Global: records what a loop observed. */
    const updateObserved = (
      id: ServiceId,
      observed: ObservedState
    ): Effect.Effect<Option.Option<ServiceInstance>, SqlError> => {
      const columns = definedColumns({
        status: observed.status,
        container_id: observed.containerId,
        container_name: observed.containerName,
        current_deployment_id: observed.currentDeploymentId,
        host_port: observed.hostPort,
        image: observed.image
      })
      const set =
        Object.keys(columns).length > 0
          ? sql`${sql.update(columns)}, updated_at = now()`
          : sql`updated_at = now()`
      return rows.first(sql`UPDATE container_service_instances SET ${set} WHERE id = ${id} RETURNING *`)
    }

    /**
     * Global: sets the status only while the row still says `expected` (one statement, so a deploy or
     * a restart that moved the row on since it was read is never overwritten); None when it had.
     */
    const updateStatusIf = (
      id: ServiceId,
      expected: ServiceStatus,
      status: ServiceStatus
    ): Effect.Effect<Option.Option<ServiceInstance>, SqlError> =>
      rows.first(
        sql`UPDATE container_service_instances SET status = ${status}, updated_at = now()
            WHERE id = ${id} AND status = ${expected} RETURNING *`
      )

    /** Global: counts a restart done by the supervisor or the health loop. */
    const recordRestart = (id: ServiceId): Effect.Effect<Option.Option<ServiceInstance>, SqlError> =>
      rows.first(
        sql`UPDATE container_service_instances
            SET restart_count = restart_count + 1, last_restart_at = now(), updated_at = now()
            WHERE id = ${id} RETURNING *`
      )

    /** The team's live services among `ids` (one statement for any number; others' ids match nothing). */
    const findByIds = (
      teamId: TeamId,
      ids: ReadonlyArray<ServiceId>
    ): Effect.Effect<ReadonlyArray<ServiceInstance>, SqlError> =>
      ids.length === 0
        ? Effect.succeed([])
        : rows.all(
            sql`SELECT * FROM container_service_instances
                WHERE team_id = ${teamId} AND deleted_at IS NULL AND ${sql.in("id", ids)}`
          )

    // Every write moves the services epoch, so cached service lists are dropped at once.
    const writing =
      <Args extends ReadonlyArray<unknown>, A, E>(f: (...args: Args) => Effect.Effect<A, E>) =>
      (...args: Args): Effect.Effect<A, E> =>
        ChangeEpoch.bumping(ChangeEpoch.services)(f(...args))

    return {
      create: writing(create),
      findById,
      findByName,
      findByIds,
      list,
      countByTeam,
      update: writing(update),
      softDelete: writing(softDelete),
      listDesired,
      findByIdAnyTeam,
      updateObserved: writing(updateObserved),
      updateStatusIf: writing(updateStatusIf),
      recordRestart: writing(recordRestart)
    } as const
  })
}) {}

/**
 * Deployments. Reads are scoped by team; `updateStatus` and `findByIdAnyTeam` are global because the
 * deploy workflow advances a deployment by id.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Deployment, type DeploymentStatus, isFinalDeploymentStatus } from "@kyozo/api/domain/Deployment"
import { type DeploymentId, makeDeploymentId, type ServiceId, type TeamId } from "@kyozo/api/domain/Ids"
import { Effect, type Option } from "effect"

import { clampLimit, definedColumns, rowDecoder } from "./SqlRows.js"

export interface CreateDeployment {
  readonly id?: DeploymentId
  readonly teamId: TeamId
  readonly serviceId: ServiceId
  readonly image?: string | null
  readonly contextHash?: string | null
}

export interface StatusChange {
  readonly status: DeploymentStatus
  readonly error?: string | null
  readonly image?: string | null
  readonly containerId?: string | null
  readonly containerName?: string | null
}

export class DeploymentRepo extends Effect.Service<DeploymentRepo>()("@kyozo/core/DeploymentRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = rowDecoder(Deployment)

    /**
     * Creates a pending deployment, only when the service belongs to the team (none otherwise), so a
     * caller cannot attach a deployment to another team's service.
     */
    const create = (input: CreateDeployment): Effect.Effect<Option.Option<Deployment>, SqlError> =>
      rows.first(
        sql`INSERT INTO deployments (id, service_id, team_id, image, context_hash)
            SELECT ${input.id ?? makeDeploymentId()}, s.id, s.team_id, ${input.image ?? null}, ${input.contextHash ?? null}
            FROM container_service_instances s WHERE s.id = ${input.serviceId} AND s.team_id = ${input.teamId}
            RETURNING *`
      )

    const get = (teamId: TeamId, id: DeploymentId): Effect.Effect<Option.Option<Deployment>, SqlError> =>
      rows.first(sql`SELECT * FROM deployments WHERE id = ${id} AND team_id = ${teamId}`)

    /** Global: for the deploy workflow. */
    const findByIdAnyTeam = (id: DeploymentId): Effect.Effect<Option.Option<Deployment>, SqlError> =>
      rows.first(sql`SELECT * FROM deployments WHERE id = ${id}`)

    /** Newest first. */
    const listByService = (
      teamId: TeamId,
      serviceId: ServiceId,
      options: { readonly limit?: number } = {}
    ): Effect.Effect<ReadonlyArray<Deployment>, SqlError> =>
      rows.all(
        sql`SELECT * FROM deployments WHERE team_id = ${teamId} AND service_id = ${serviceId}
            ORDER BY created_at DESC, id DESC LIMIT ${clampLimit(options.limit)}`
      )

    /** Newest first, across the team's services. */
    const listByTeam = (
      teamId: TeamId,
      options: { readonly limit?: number } = {}
    ): Effect.Effect<ReadonlyArray<Deployment>, SqlError> =>
      rows.all(
        sql`SELECT * FROM deployments WHERE team_id = ${teamId}
            ORDER BY created_at DESC, id DESC LIMIT ${clampLimit(options.limit)}`
      )

    /**
     * Global: moves a deployment on. A final status stamps `finished_at`; a deployment already in a
     * final status is left alone (a retried activity must not reopen it), and none is returned.
     */
    const updateStatus = (
      id: DeploymentId,
      change: StatusChange
    ): Effect.Effect<Option.Option<Deployment>, SqlError> => {
      const columns = definedColumns({
        status: change.status,
        error: change.error,
        image: change.image,
        container_id: change.containerId,
        container_name: change.containerName
      })
      const finished = isFinalDeploymentStatus(change.status) ? sql`, finished_at = now()` : sql``
      return rows.first(
        sql`UPDATE deployments SET ${sql.update(columns)}${finished}
            WHERE id = ${id} AND status NOT IN ('succeeded', 'failed', 'compensated', 'superseded', 'unchanged')
            RETURNING *`
      )
    }

    /** Global: deployments of a service still in flight (not final), oldest first. */
    const listUnfinished = (serviceId?: ServiceId): Effect.Effect<ReadonlyArray<Deployment>, SqlError> =>
      rows.all(
        sql`SELECT * FROM deployments
            WHERE status NOT IN ('succeeded', 'failed', 'compensated', 'superseded', 'unchanged')
            ${serviceId === undefined ? sql`` : sql`AND service_id = ${serviceId}`}
            ORDER BY created_at, id`
      )

    /** The newest deployment of each of the team's services named (one statement for any number). */
    const latestByServices = (
      teamId: TeamId,
      serviceIds: ReadonlyArray<ServiceId>
    ): Effect.Effect<ReadonlyArray<Deployment>, SqlError> =>
      serviceIds.length === 0
        ? Effect.succeed([])
        : rows.all(
            sql`SELECT DISTINCT ON (service_id) * FROM deployments
                WHERE team_id = ${teamId} AND ${sql.in("service_id", serviceIds)}
                ORDER BY service_id, created_at DESC, id DESC`
          )

    return {
      create,
      get,
      findByIdAnyTeam,
      listByService,
      listByTeam,
      updateStatus,
      listUnfinished,
      latestByServices
    } as const
  })
}) {}

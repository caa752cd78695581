/**
 * Per-service grants. The table has no team column, so every method takes the team and checks that
 * the service belongs to it: a grant on another team's service is invisible and cannot be made.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { makePermissionId, type ServiceId, type TeamId, type UserId } from "@kyozo/api/domain/Ids"
import { type Permission, ServicePermission } from "@kyozo/api/domain/ServicePermission"
import { Effect, type Option } from "effect"

import { rowDecoder } from "./SqlRows.js"

export interface Grant {
  readonly teamId: TeamId
  readonly serviceId: ServiceId
  readonly userId: UserId
  readonly permission: Permission
  readonly grantedBy?: UserId | null
}

export class PermissionRepo extends Effect.Service<PermissionRepo>()("@kyozo/core/PermissionRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = rowDecoder(ServicePermission)

    const inTeam = (teamId: TeamId, serviceId: ServiceId) =>
      sql`EXISTS (SELECT 1 FROM container_service_instances s WHERE s.id = ${serviceId} AND s.team_id = ${teamId} AND s.deleted_at IS NULL)`

    /** Grants a permission (idempotent: an existing identical grant is returned). None when the service is not the team's. */
    const grant = (input: Grant): Effect.Effect<Option.Option<ServicePermission>, SqlError> =>
      rows.first(
        sql`INSERT INTO service_permissions (id, service_id, user_id, permission, granted_by)
            SELECT ${makePermissionId()}, ${input.serviceId}, ${input.userId}, ${input.permission}, ${input.grantedBy ?? null}
            WHERE ${inTeam(input.teamId, input.serviceId)}
            ON CONFLICT (service_id, user_id, permission) DO UPDATE SET permission = EXCLUDED.permission
            RETURNING *`
      )

    const revoke = (
      teamId: TeamId,
      serviceId: ServiceId,
      userId: UserId,
      permission: Permission
    ): Effect.Effect<boolean, SqlError> =>
      sql`DELETE FROM service_permissions
          WHERE service_id = ${serviceId} AND user_id = ${userId} AND permission = ${permission}
            AND ${inTeam(teamId, serviceId)}
          RETURNING id`.pipe(Effect.map((r) => r.length > 0))

    /** The user's grants on one service. */
    const listFor = (
      teamId: TeamId,
      userId: UserId,
      serviceId: ServiceId
    ): Effect.Effect<ReadonlyArray<ServicePermission>, SqlError> =>
      rows.all(
        sql`SELECT * FROM service_permissions
            WHERE user_id = ${userId} AND service_id = ${serviceId} AND ${inTeam(teamId, serviceId)}
            ORDER BY permission`
      )

    /** Everyone's grants on one service. */
    const listForService = (
      teamId: TeamId,
      serviceId: ServiceId
    ): Effect.Effect<ReadonlyArray<ServicePermission>, SqlError> =>
      rows.all(
        sql`SELECT * FROM service_permissions WHERE service_id = ${serviceId} AND ${inTeam(teamId, serviceId)}
            ORDER BY user_id, permission`
      )

    return { grant, revoke, listFor, listForService } as const
  })
}) {}

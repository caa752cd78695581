/** Teams and memberships (who belongs to a team, with which role). */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { makeTeamId, type TeamId, type UserId } from "@kyozo/api/domain/Ids"
import { Membership, Role } from "@kyozo/api/domain/Membership"
import { Team } from "@kyozo/api/domain/Team"
import { Effect, Option, Schema } from "effect"

import * as ChangeEpoch from "./ChangeEpoch.js"
import { definedColumns, rowDecoder, sqlState } from "./SqlRows.js"

export class TeamNameTaken extends Schema.TaggedError<TeamNameTaken>()("TeamNameTaken", {
  name: Schema.String
}) {
  override get message() {
    return `A team named "${this.name}" already exists. Team names are unique; choose another.`
  }
}

export interface CreateTeam {
  readonly id?: TeamId
  readonly name: string
  readonly quotaServices?: number
  readonly quotaCpuMillis?: number
  readonly quotaMemoryMb?: number
}

export class TeamRepo extends Effect.Service<TeamRepo>()("@kyozo/core/TeamRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const teams = rowDecoder(Team)
    const memberships = rowDecoder(Membership)
    const roleRows = rowDecoder(Schema.Struct({ role: Role }))

    const create = (input: CreateTeam): Effect.Effect<Team, TeamNameTaken | SqlError> =>
      teams
        .single(
          sql`INSERT INTO teams ${sql.insert(
            definedColumns({
              id: input.id ?? makeTeamId(),
              name: input.name,
              quota_services: input.quotaServices,
              quota_cpu_millis: input.quotaCpuMillis,
              quota_memory_mb: input.quotaMemoryMb
            })
          )} RETURNING *`
        )
        .pipe(
          Effect.catchTag("SqlError", (e): Effect.Effect<never, TeamNameTaken | SqlError> =>
            sqlState(e) === "23505" ? Effect.fail(new TeamNameTaken({ name: input.name })) : Effect.fail(e)
          )
        )

    const findById = (id: TeamId): Effect.Effect<Option.Option<Team>, SqlError> =>
      teams.first(sql`SELECT * FROM teams WHERE id = ${id}`)

    /** The teams a user belongs to, by name. */
    const listForUser = (userId: UserId): Effect.Effect<ReadonlyArray<Team>, SqlError> =>
      teams.all(
        sql`SELECT t.* FROM teams t JOIN memberships m ON m.team_id = t.id WHERE m.user_id = ${userId} ORDER BY t.name`
      )

    /** Adds a member, or changes the role of an existing one. */
    const addMember = (teamId: TeamId, userId: UserId, role: Role): Effect.Effect<Membership, SqlError> =>
      memberships
        .single(
          sql`INSERT INTO memberships (team_id, user_id, role) VALUES (${teamId}, ${userId}, ${role})
            ON CONFLICT (team_id, user_id) DO UPDATE SET role = EXCLUDED.role RETURNING *`
        )
        .pipe(ChangeEpoch.bumping(ChangeEpoch.auth))

    const removeMember = (teamId: TeamId, userId: UserId): Effect.Effect<boolean, SqlError> =>
      sql`DELETE FROM memberships WHERE team_id = ${teamId} AND user_id = ${userId} RETURNING user_id`.pipe(
        Effect.map((r) => r.length > 0),
        ChangeEpoch.bumping(ChangeEpoch.auth)
      )

    /** The user's role in the team; none when not a member. */
    const roleOf = (teamId: TeamId, userId: UserId): Effect.Effect<Option.Option<Role>, SqlError> =>
      roleRows
        .first(sql`SELECT role FROM memberships WHERE team_id = ${teamId} AND user_id = ${userId}`)
        .pipe(Effect.map(Option.map((r) => r.role)))

    const listMembers = (teamId: TeamId): Effect.Effect<ReadonlyArray<Membership>, SqlError> =>
      memberships.all(sql`SELECT * FROM memberships WHERE team_id = ${teamId} ORDER BY created_at, user_id`)

    /** Changes a team's quotas (fields left out stay); none when there is no such team. */
    const setQuotas = (
      id: TeamId,
      quotas: {
        readonly quotaServices?: number
        readonly quotaCpuMillis?: number
        readonly quotaMemoryMb?: number
      }
    ): Effect.Effect<Option.Option<Team>, SqlError> =>
      teams.first(
        sql`UPDATE teams SET
              quota_services = coalesce(${quotas.quotaServices ?? null}::integer, quota_services),
              quota_cpu_millis = coalesce(${quotas.quotaCpuMillis ?? null}::integer, quota_cpu_millis),
              quota_memory_mb = coalesce(${quotas.quotaMemoryMb ?? null}::integer, quota_memory_mb)
            WHERE id = ${id} RETURNING *`
      )

    return { create, findById, listForUser, addMember, removeMember, roleOf, listMembers, setQuotas } as const
  })
}) {}

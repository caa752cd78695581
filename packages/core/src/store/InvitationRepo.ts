/** Invitations to teams: someone from outside a team joins it only by accepting one. */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { randomToken, TeamId, UserId } from "@kyozo/api/domain/Ids"
import { Role } from "@kyozo/api/domain/Membership"
import { Effect, type Option, Schema } from "effect"

import { rowDecoder } from "./SqlRows.js"

export class Invitation extends Schema.Class<Invitation>("Invitation")({
  id: Schema.String,
  teamId: TeamId,
  userId: UserId,
  role: Role,
  invitedBy: Schema.NullOr(UserId),
  createdAt: Schema.DateFromSelf
}) {}

export class InvitationRepo extends Effect.Service<InvitationRepo>()("@kyozo/core/InvitationRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = rowDecoder(Invitation)

    /** Invites (or re-invites with the new role). */
    const invite = (input: {
      readonly teamId: TeamId
      readonly userId: UserId
      readonly role: Role
      readonly invitedBy: UserId
    }): Effect.Effect<Invitation, SqlError> =>
      rows.single(
        sql`INSERT INTO team_invitations (id, team_id, user_id, role, invited_by)
            VALUES (${`inv_${randomToken()}`}, ${input.teamId}, ${input.userId}, ${input.role}, ${input.invitedBy})
            ON CONFLICT (team_id, user_id) DO UPDATE SET role = EXCLUDED.role, invited_by = EXCLUDED.invited_by
            RETURNING *`
      )

    /** The invitations a user holds. */
    const listForUser = (userId: UserId): Effect.Effect<ReadonlyArray<Invitation>, SqlError> =>
      rows.all(sql`SELECT * FROM team_invitations WHERE user_id = ${userId} ORDER BY created_at, id`)

    /** Takes the user's invitation out (accepting it); none when it is not theirs. */
    const take = (userId: UserId, id: string): Effect.Effect<Option.Option<Invitation>, SqlError> =>
      rows.first(sql`DELETE FROM team_invitations WHERE id = ${id} AND user_id = ${userId} RETURNING *`)

    /** The invitations a team sent that no one accepted yet (its pending members). */
    const listForTeam = (teamId: TeamId): Effect.Effect<ReadonlyArray<Invitation>, SqlError> =>
      rows.all(sql`SELECT * FROM team_invitations WHERE team_id = ${teamId} ORDER BY created_at, id`)

    /** Withdraws the team's invitation of a user; none when there was none. */
    const withdraw = (teamId: TeamId, userId: UserId): Effect.Effect<Option.Option<Invitation>, SqlError> =>
      rows.first(
        sql`DELETE FROM team_invitations WHERE team_id = ${teamId} AND user_id = ${userId} RETURNING *`
      )

    return { invite, listForUser, listForTeam, withdraw, take } as const
  })
}) {}

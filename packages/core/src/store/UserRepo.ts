/** Users. Emails are unique (case as given). */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { makeUserId, type TeamId, type UserId } from "@kyozo/api/domain/Ids"
import { User } from "@kyozo/api/domain/User"
import { Effect, Option, Schema } from "effect"

import { rowDecoder, sqlState } from "./SqlRows.js"

export class EmailTaken extends Schema.TaggedError<EmailTaken>()("EmailTaken", {
  email: Schema.String
}) {
  override get message() {
    return `A user with email ${this.email} already exists.`
  }
}

export interface CreateUser {
  readonly id?: UserId
  readonly email: string
  readonly name?: string
  readonly instanceAdmin?: boolean
}

export class UserRepo extends Effect.Service<UserRepo>()("@kyozo/core/UserRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const users = rowDecoder(User)

    const create = (input: CreateUser): Effect.Effect<User, EmailTaken | SqlError> =>
      users
        .single(
          sql`INSERT INTO users (id, email, name, instance_admin)
              VALUES (${input.id ?? makeUserId()}, ${input.email}, ${input.name ?? ""}, ${input.instanceAdmin ?? false})
              RETURNING *`
        )
        .pipe(
          Effect.catchTag("SqlError", (e): Effect.Effect<never, EmailTaken | SqlError> =>
            sqlState(e) === "23505" ? Effect.fail(new EmailTaken({ email: input.email })) : Effect.fail(e)
          )
        )

    const findById = (id: UserId): Effect.Effect<Option.Option<User>, SqlError> =>
      users.first(sql`SELECT * FROM users WHERE id = ${id}`)

    const findByEmail = (email: string): Effect.Effect<Option.Option<User>, SqlError> =>
      users.first(sql`SELECT * FROM users WHERE email = ${email}`)

    /** The members of a team. */
    const listByTeam = (teamId: TeamId): Effect.Effect<ReadonlyArray<User>, SqlError> =>
      users.all(
        sql`SELECT u.* FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.team_id = ${teamId} ORDER BY u.email`
      )

    /** Whether the user is an instance admin (false for unknown users). */
    const isInstanceAdmin = (id: UserId): Effect.Effect<boolean, SqlError> =>
      sql`SELECT 1 FROM users WHERE id = ${id} AND instance_admin`.pipe(Effect.map((r) => r.length > 0))

    const setInstanceAdmin = (id: UserId, value: boolean): Effect.Effect<boolean, SqlError> =>
      sql`UPDATE users SET instance_admin = ${value} WHERE id = ${id} RETURNING id`.pipe(
        Effect.map((r) => r.length > 0)
      )

    return { create, findById, findByEmail, listByTeam, isInstanceAdmin, setInstanceAdmin } as const
  })
}) {}

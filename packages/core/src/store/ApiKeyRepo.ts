/**
 * API keys. A key reads "kz_<8>_<32>"; its first part ("kz_<8>") is the stored, unique prefix used
 * to find the row, and only the sha256 of the whole key is stored. `issue` hands the key out once.
 */
import { createHash, timingSafeEqual } from "node:crypto"

import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { ApiKey } from "@kyozo/api/domain/ApiKey"
import { type ApiKeyId, makeApiKeyId, randomToken, type TeamId, type UserId } from "@kyozo/api/domain/Ids"
import { Effect, Option, Schema } from "effect"

import * as ChangeEpoch from "./ChangeEpoch.js"
import { rowDecoder } from "./SqlRows.js"

export const hashKey = (key: string): string => createHash("sha256").update(key, "utf8").digest("hex")

/** The prefix of a presented key ("kz_ab12cd34"), or none when it is not shaped like a Kyozo key. */
export const prefixOf = (key: string): Option.Option<string> => {
  const match = /^(kz_[0-9a-z]{8})_[0-9a-z]{32}$/.exec(key)
  return match ? Option.some(match[1]!) : Option.none()
}

/** A fresh key with its prefix and hash. */
export const generateKey = (): { readonly key: string; readonly prefix: string; readonly hash: string } => {
  const prefix = `kz_${randomToken(8)}`
  const key = `${prefix}_${randomToken(32)}`
  return { key, prefix, hash: hashKey(key) }
}

export interface CreateApiKey {
  readonly id?: ApiKeyId
  readonly teamId: TeamId
  readonly userId: UserId
  readonly name?: string
  readonly prefix: string
  /** sha256 hex of the whole key. */
  readonly hash: string
  readonly expiresAt?: Date | null
}

export interface StoredKey {
  readonly apiKey: ApiKey
  readonly hash: string
}

const sameHash = (a: string, b: string): boolean => {
  const x = Buffer.from(a, "hex")
  const y = Buffer.from(b, "hex")
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y)
}

export class ApiKeyRepo extends Effect.Service<ApiKeyRepo>()("@kyozo/core/ApiKeyRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const keys = rowDecoder(ApiKey)
    const stored = rowDecoder(Schema.Struct({ hash: Schema.String }))

    const create = (input: CreateApiKey): Effect.Effect<ApiKey, SqlError> =>
      keys.single(
        sql`INSERT INTO api_keys (id, team_id, user_id, name, prefix, hash, expires_at)
            VALUES (${input.id ?? makeApiKeyId()}, ${input.teamId}, ${input.userId}, ${input.name ?? ""},
                    ${input.prefix}, ${input.hash}, ${input.expiresAt ?? null})
            RETURNING *`
      )

    /** Creates a key and returns it in clear, the only time it is ever visible. */
    const issue = (input: {
      readonly teamId: TeamId
      readonly userId: UserId
      readonly name?: string
      readonly expiresAt?: Date | null
    }): Effect.Effect<{ readonly apiKey: ApiKey; readonly key: string }, SqlError> => {
      const generated = generateKey()
      return create({ ...input, prefix: generated.prefix, hash: generated.hash }).pipe(
        Effect.map((apiKey) => ({ apiKey, key: generated.key }))
      )
    }

    /** Global (authentication runs before the team is known): the key row and its hash. */
    const findByPrefix = (prefix: string): Effect.Effect<Option.Option<StoredKey>, SqlError> =>
      sql`SELECT * FROM api_keys WHERE prefix = ${prefix}`.pipe(
        (rows) => Effect.zip(keys.first(rows), stored.first(rows)),
        Effect.map(([key, hash]) =>
          Option.isSome(key) && Option.isSome(hash)
            ? Option.some({ apiKey: key.value, hash: hash.value.hash })
            : Option.none()
        )
      )

    /** The key's row when the presented key matches, is not revoked and not expired. */
    const verify = (key: string, now: Date = new Date()): Effect.Effect<Option.Option<ApiKey>, SqlError> =>
      Option.match(prefixOf(key), {
        onNone: () => Effect.succeedNone,
        onSome: (prefix) =>
          findByPrefix(prefix).pipe(
            Effect.map(
              Option.flatMap((found) =>
                sameHash(found.hash, hashKey(key)) && found.apiKey.isActive(now)
                  ? Option.some(found.apiKey)
                  : Option.none()
              )
            )
          )
      })

    const revoke = (teamId: TeamId, id: ApiKeyId): Effect.Effect<boolean, SqlError> =>
      sql`UPDATE api_keys SET revoked_at = now() WHERE id = ${id} AND team_id = ${teamId} AND revoked_at IS NULL RETURNING id`.pipe(
        Effect.map((r) => r.length > 0),
        ChangeEpoch.bumping(ChangeEpoch.auth)
      )

    /** Revokes every active key of a user in a team (they left it); answers the ids revoked. */
    const revokeAllOf = (teamId: TeamId, userId: UserId): Effect.Effect<ReadonlyArray<string>, SqlError> =>
      sql<{ id: string }>`UPDATE api_keys SET revoked_at = now()
          WHERE team_id = ${teamId} AND user_id = ${userId} AND revoked_at IS NULL RETURNING id`.pipe(
        Effect.map((r) => r.map((x) => x.id)),
        ChangeEpoch.bumping(ChangeEpoch.auth)
      )

    /** Global: called by authentication on each successful use. */
    const touchLastUsed = (id: ApiKeyId): Effect.Effect<void, SqlError> =>
      Effect.asVoid(sql`UPDATE api_keys SET last_used_at = now() WHERE id = ${id}`)

    const listByTeam = (teamId: TeamId): Effect.Effect<ReadonlyArray<ApiKey>, SqlError> =>
      keys.all(sql`SELECT * FROM api_keys WHERE team_id = ${teamId} ORDER BY created_at, id`)

    const findById = (teamId: TeamId, id: ApiKeyId): Effect.Effect<Option.Option<ApiKey>, SqlError> =>
      keys.first(sql`SELECT * FROM api_keys WHERE id = ${id} AND team_id = ${teamId}`)

    return {
      create,
      issue,
      findByPrefix,
      verify,
      revoke,
      revokeAllOf,
      touchLastUsed,
      listByTeam,
      findById
    } as const
  })
}) {}

/**
 * Who is calling. Every RPC and every upload presents `authorization: Bearer kz_<prefix>_<secret>`;
 * the key must exist, match its stored hash, be neither revoked nor expired, and its user must still
 * belong to the key's team. Any failure is the same `Unauthorized` (no hint which part was wrong).
 *
 * First start: with no users at all, `bootstrap` creates an admin, the team "default", an owner
 * membership and a key, logs the key once and writes `<dataDir>/credentials.json` (mode 0600).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Credentials from "@kyozo/api/Credentials"
import type { ApiKeyId } from "@kyozo/api/domain/Ids"
import { Authentication, type Principal, type RateLimited, Unauthorized } from "@kyozo/api/KyozoRpc"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { ApiKeyRepo } from "@kyozo/core/store/ApiKeyRepo"
import * as ChangeEpoch from "@kyozo/core/store/ChangeEpoch"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { UserRepo } from "@kyozo/core/store/UserRepo"
import { Effect, Layer, Option, Schema } from "effect"

import { PrincipalCache } from "./PrincipalCache.js"
import { RateLimiter } from "./RateLimit.js"

const unauthorized = (detail: string) => new Unauthorized({ message: detail })

/** The token of an `authorization` header value; none for a missing header, another scheme or an empty token. */
export const bearerToken = (header: string | undefined): Option.Option<string> => {
  if (header === undefined) return Option.none()
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header.trim())
  return match ? Option.some(match[1]!) : Option.none()
}

export type Authenticate = (
  authorization: string | undefined
) => Effect.Effect<Principal, Unauthorized | RateLimited>

/**
 * Verifies an `authorization` header value and takes a token from the key's rate-limit bucket;
 * shared by the RPC middleware and the HTTP routes. A verified key is remembered by the
 * PrincipalCache only until anything that can end it changes, so a revoked key fails at once.
 */
export const makeAuthenticator = Effect.gen(function* () {
  const keys = yield* ApiKeyRepo
  const teams = yield* TeamRepo
  const limiter = yield* RateLimiter
  const cache = yield* PrincipalCache
  // last_used_at is bookkeeping: written at most once a minute per key, not on every request.
  const touched = new Map<string, number>()
  const TOUCH_EVERY_MS = 60_000

  const verify = (token: string) =>
    Effect.gen(function* () {
      // Read before the queries: a change landing while they run leaves the entry stale.
      const epoch = ChangeEpoch.auth.current()
      const key = yield* keys.verify(token)
      if (Option.isNone(key)) return yield* unauthorized("Invalid, revoked or expired API key.")
      const role = yield* teams.roleOf(key.value.teamId, key.value.userId)
      if (Option.isNone(role)) return yield* unauthorized("Invalid, revoked or expired API key.")
      const principal: Principal = {
        userId: key.value.userId,
        teamId: key.value.teamId,
        role: role.value,
        keyId: key.value.id
      }
      cache.set(token, principal, epoch, key.value.expiresAt)
      return principal
    })

  // Bookkeeping only: a failed update must not fail the request.
  const touchDue = (keyId: ApiKeyId, now: number) => now - (touched.get(keyId) ?? 0) >= TOUCH_EVERY_MS
  const touch = (keyId: ApiKeyId, now: number) => {
    if (touched.size > 10_000) touched.clear()
    touched.set(keyId, now)
    return keys.touchLastUsed(keyId).pipe(Effect.ignore)
  }

  const authenticate: Authenticate = (authorization) =>
    Effect.gen(function* () {
      const token = bearerToken(authorization)
      if (Option.isNone(token))
        return yield* unauthorized("Missing bearer token: send `authorization: Bearer kz_…`.")
      const cached = cache.get(token.value)
      const principal = Option.isSome(cached) ? cached.value : yield* verify(token.value)
      yield* limiter.take(principal.keyId)
      const now = Date.now()
      if (touchDue(principal.keyId, now)) yield* touch(principal.keyId, now)
      return principal
    }).pipe(
      // A database outage is not the caller's fault: a defect (500), not a 401.
      Effect.catchTag("SqlError", (e) => Effect.die(e))
    )

  /**
   * The same checks as `authenticate` for a key verified recently (the PrincipalCache), without
   * waiting on the database, around an answer that may need nothing else either: `answer` runs
   * with the caller, and only when it has an answer is a rate-limit token taken (its bookkeeping
   * write, when due, goes on in the background). None when the full path must run: a key not
   * cached, a missing token, no answer in memory (the full path answers refusals itself, and takes
   * its token then). Never suspends when `answer` does not, so a hot route can run it synchronously.
   */
  const whenCached = <A, R>(
    authorization: string | undefined,
    answer: (principal: Principal) => Effect.Effect<Option.Option<A>, never, R>
  ): Effect.Effect<Option.Option<A>, RateLimited, R> => {
    const token = bearerToken(authorization)
    if (Option.isNone(token)) return Effect.succeedNone
    const cached = cache.get(token.value)
    if (Option.isNone(cached)) return Effect.succeedNone
    const principal = cached.value
    return Effect.flatMap(answer(principal), (answered): Effect.Effect<Option.Option<A>, RateLimited> =>
      Option.isNone(answered)
        ? Effect.succeedNone
        : Effect.flatMap(limiter.take(principal.keyId), () => {
            const now = Date.now()
            return touchDue(principal.keyId, now)
              ? Effect.as(Effect.forkDaemon(touch(principal.keyId, now)), answered)
              : Effect.succeed(answered)
          })
    )
  }

  return { authenticate, whenCached } as const
})

/** `Authenticator.authenticate`: what the front doors call. */
export const makeAuthenticate: Effect.Effect<
  Authenticate,
  never,
  ApiKeyRepo | TeamRepo | RateLimiter | PrincipalCache
> = Effect.map(makeAuthenticator, (a) => a.authenticate)

/** The RPC middleware: headers arrive lower-cased. */
export const AuthLive = Layer.effect(
  Authentication,
  Effect.map(
    makeAuthenticate,
    (authenticate) =>
      ({ headers }) =>
        authenticate(headers["authorization"])
  )
)

export const BOOTSTRAP_EMAIL = "admin@kyozo.local"
export const BOOTSTRAP_TEAM = "default"

/** The URL clients on this machine use: a wildcard bind is reachable on loopback. */
export const localUrl = (host: string, port: number): string => {
  const h = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host
  return `http://${h.includes(":") ? `[${h}]` : h}:${port}`
}

const Count = Schema.Struct({ n: Schema.NumberFromString })

/** Creates the first admin and key when the database has no users; otherwise does nothing. */
export const bootstrap = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const config = yield* KyozoConfig
  const users = yield* UserRepo
  const teams = yield* TeamRepo
  const keys = yield* ApiKeyRepo
  const rows = yield* sql`SELECT count(*)::text AS n FROM users`
  const { n } = yield* Schema.decodeUnknown(Count)(rows[0])
  if (n > 0) return
  // One short transaction: a crash half-way must not leave a user without a key (the next start
  // would see a user and never print a key).
  const issued = yield* Effect.gen(function* () {
    const team = yield* teams.create({ name: BOOTSTRAP_TEAM, ...config.defaultQuotas })
    // The first user runs the instance: it creates teams and sets their quotas.
    const user = yield* users.create({ email: BOOTSTRAP_EMAIL, name: "Administrator", instanceAdmin: true })
    yield* teams.addMember(team.id, user.id, "owner")
    const { key } = yield* keys.issue({ teamId: team.id, userId: user.id, name: "bootstrap" })
    return { key, teamId: team.id }
  }).pipe(sql.withTransaction)
  const url = localUrl(config.host, config.port)
  const file = yield* Credentials.write(config.dataDir, { url, token: issued.key, teamId: issued.teamId })
  yield* Effect.logInfo(
    `First start: created instance admin ${BOOTSTRAP_EMAIL} (owner of team "${BOOTSTRAP_TEAM}"). ` +
      `API key (shown once): ${issued.key} — also written to ${file} (mode 0600).`
  )
}).pipe(Effect.withSpan("Auth.bootstrap"))

/** Runs the bootstrap when the server starts. */
export const BootstrapLive = Layer.effectDiscard(bootstrap)

/**
 * Counters that move whenever a kind of row changes, so that in-process caches can tell at once
 * that what they hold may be stale: `auth` (who may call: a key revoked or deleted, a member
 * removed or given another role, a user changed) and `services` (any row of a service). Writes
 * made by this process move them right after the statement; writes made by other processes on the
 * same PostgreSQL arrive through NOTIFY on the epoch's channel (sent by triggers, migration 0007)
 * and `follow` moves them.
 *
 * Process-wide on purpose: a move only ever costs a cache miss, so sharing one between several
 * runtimes in one process (tests) is safe.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { Duration, Effect, Schedule, type Scope, Stream } from "effect"

import { Database } from "./Database.js"

export interface ChangeEpoch {
  /** The NOTIFY channel the database triggers send on. */
  readonly channel: string
  /** The current value; an entry cached under an older value is stale. */
  readonly current: () => number
  /** Marks everything cached under the current value stale. */
  readonly bump: () => void
}

const make = (channel: string): ChangeEpoch => {
  let value = 0
  return {
    channel,
    current: () => value,
    bump: () => {
      value++
    }
  }
}

/** Who may call: keys, memberships, users. */
export const auth: ChangeEpoch = make("kyozo_auth")

/** The rows of services (container_service_instances). */
export const services: ChangeEpoch = make("kyozo_services")

/** Moves the epoch after `effect`, whatever its outcome: for writes that can change what it covers. */
export const bumping =
  (epoch: ChangeEpoch) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.ensuring(effect, Effect.sync(epoch.bump))

/**
 * Follows other processes' writes for the life of the scope: on PostgreSQL, LISTENs on the
 * epoch's channel and moves it on every notification, reconnecting after a second when the
 * connection drops. Each (re)subscription moves it first: what changed while not listening is
 * unknown. PGlite is single-process (its lock file), so there is nothing to follow.
 */
export const follow = (
  epoch: ChangeEpoch
): Effect.Effect<void, never, Database | PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function* () {
    const database = yield* Database
    if (database.kind !== "postgres") return
    const pg = yield* PgClient.PgClient
    yield* Effect.sync(epoch.bump).pipe(
      Effect.zipRight(pg.listen(epoch.channel).pipe(Stream.runForEach(() => Effect.sync(epoch.bump)))),
      Effect.catchAllCause((cause) =>
        Effect.logWarning(`${epoch.channel} listener stopped; reconnecting`, cause)
      ),
      Effect.repeat(Schedule.spaced(Duration.seconds(1))),
      Effect.forkScoped
    )
  })

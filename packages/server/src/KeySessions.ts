/**
 * Open streams per API key: an SSE `/v1/events` stream or an RPC stream lives longer than the
 * request that authenticated it, so a key that stops being valid must end them. One loop checks the
 * keys of all open streams in one query every `KYOZO_STREAM_RECHECK_MS` (default 500 ms): a key
 * revoked (by anyone, even another process), expired, or whose user left the team ends its streams
 * within a second. Revocation through this server also ends them at once (`end`).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { ApiKeyId } from "@kyozo/api/domain/Ids"
import { currentKyozoConfig } from "@kyozo/core/KyozoConfig"
import { Deferred, Duration, Effect, Schedule, Schema, Stream } from "effect"

const Row = Schema.Struct({ id: Schema.String })

export class KeySessions extends Effect.Service<KeySessions>()("@kyozo/server/KeySessions", {
  scoped: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const every = (yield* currentKyozoConfig).streamRecheckMs
    const open = new Map<string, Set<Deferred.Deferred<void>>>()

    /** Ends every open stream of the key now. */
    const end = (keyId: ApiKeyId | string) =>
      Effect.sync(() => {
        const set = open.get(keyId)
        open.delete(keyId)
        if (set) for (const d of set) Deferred.unsafeDone(d, Effect.void)
      })

    const recheck = Effect.gen(function* () {
      const ids = [...open.keys()]
      if (ids.length === 0) return
      const rows = yield* sql`
        SELECT k.id FROM api_keys k
        JOIN memberships m ON m.team_id = k.team_id AND m.user_id = k.user_id
        WHERE k.id IN ${sql.in(ids)} AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())`
      const valid = new Set((yield* Schema.decodeUnknown(Schema.Array(Row))(rows)).map((r) => r.id))
      for (const id of ids) if (!valid.has(id)) yield* end(id)
    })
    yield* recheck.pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("open-stream key check failed", cause)),
      Effect.repeat(Schedule.spaced(Duration.millis(Math.max(50, every)))),
      Effect.forkScoped
    )

    /** The stream, ended when the key stops being valid. */
    const guard =
      (keyId: ApiKeyId) =>
      <A, E, R>(stream: Stream.Stream<A, E, R>): Stream.Stream<A, E, R> =>
        Stream.unwrapScoped(
          Effect.gen(function* () {
            const ended = yield* Deferred.make<void>()
            yield* Effect.acquireRelease(
              Effect.sync(() => {
                const set = open.get(keyId) ?? new Set()
                set.add(ended)
                open.set(keyId, set)
              }),
              () =>
                Effect.sync(() => {
                  const set = open.get(keyId)
                  set?.delete(ended)
                  if (set?.size === 0) open.delete(keyId)
                })
            )
            return stream.pipe(Stream.interruptWhen(Deferred.await(ended)))
          })
        )

    /** How many streams are open (for tests and metrics). */
    const size = Effect.sync(() => [...open.values()].reduce((n, s) => n + s.size, 0))

    return { guard, end, size } as const
  })
}) {}

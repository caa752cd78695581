/**
 * `GET /v1/events`: the caller's team's events as Server-Sent Events, from the append-only
 * `container_deployment_events` table. Each event's id is its row id, so a client that reconnects
 * with `Last-Event-ID` (or `?after=<id>`) gets exactly the events after it.
 *
 * Gap-free: the wake-up subscription (`DeploymentEventRepo.notifications`) is taken BEFORE the first
 * read, and every wake-up re-reads the table after the cursor; ids only grow, so nothing is missed
 * and nothing repeats. A fallback poll also catches rows written by another process.
 * Breaker state changes (global, they name no team) arrive as `event: breaker` without an id;
 * a `: heartbeat` comment every `KYOZO_SSE_HEARTBEAT_MS` (default 15 s) keeps proxies from closing the line.
 */
import * as Sse from "@effect/experimental/Sse"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type { DeploymentEvent } from "@kyozo/api/domain/DeploymentEvent"
import type { TeamId } from "@kyozo/api/domain/Ids"
import { toEventView } from "@kyozo/api/KyozoRpc"
import { currentKyozoConfig } from "@kyozo/core/KyozoConfig"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { ContainerManager } from "@kyozo/core/supervision/ContainerManager"
import { Chunk, Deferred, Duration, Effect, Layer, Option, Queue, Stream } from "effect"

import { makeAuthenticate } from "./Auth.js"
import { KeySessions } from "./KeySessions.js"
import { tooManyRequests } from "./RateLimit.js"
import { errorResponse } from "./UploadRoutes.js"

export interface EventsSettings {
  readonly heartbeat: Duration.DurationInput
  /** How long a reader waits for a wake-up before looking at the table anyway. */
  readonly fallbackPoll: Duration.DurationInput
  readonly pageSize: number
}

const PAGE = 100

/**
 * The cursor of a request: `Last-Event-ID` wins over `?after=`; absent means from the start;
 * `?after=latest` means only events from now on (a live view that fetches history on demand).
 */
export const cursorOf = (
  lastEventId: string | undefined,
  after: string | undefined
): Option.Option<number | "latest"> => {
  const raw = lastEventId ?? after
  if (raw === undefined || raw.trim() === "") return Option.some(0)
  if (lastEventId === undefined && raw.trim() === "latest") return Option.some("latest")
  return /^\d{1,15}$/.test(raw.trim()) ? Option.some(Number(raw.trim())) : Option.none()
}

export const make = (settings: EventsSettings) =>
  Effect.gen(function* () {
    const authenticate = yield* makeAuthenticate
    const events = yield* DeploymentEventRepo
    const manager = yield* ContainerManager
    const sessions = yield* KeySessions
    // Closing the routes (server shutdown) ends every stream at once: an endless response would
    // otherwise hold the HTTP server's close until its grace runs out. Clients resume by Last-Event-ID.
    const stopping = yield* Deferred.make<void>()
    yield* Effect.addFinalizer(() => Deferred.succeed(stopping, undefined))

    /** The team's events after `after`, then live ones, forever. */
    const teamEvents = (teamId: TeamId, after: number): Stream.Stream<DeploymentEvent> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          // Subscribe first, read second: an event appended between the two still wakes us.
          const wake = yield* events.notifications
          const awaitWake = Effect.gen(function* () {
            while ((yield* Queue.take(wake)) !== teamId) {
              /* another team's event */
            }
            // Coalesce a burst of notices into one read.
            yield* Queue.takeAll(wake)
          }).pipe(Effect.timeoutOption(settings.fallbackPoll))
          return Stream.paginateChunkEffect(after, (cursor) =>
            Effect.gen(function* () {
              let rows = yield* events.listSince(teamId, cursor, settings.pageSize)
              while (rows.length === 0) {
                yield* awaitWake
                rows = yield* events.listSince(teamId, cursor, settings.pageSize)
              }
              const last = rows[rows.length - 1]!.id
              return [Chunk.fromIterable(rows), Option.some(last)] as const
            }).pipe(Effect.orDie)
          )
        })
      )

    const breakerChanges: Stream.Stream<string> = Stream.unwrapScoped(
      Effect.map(manager.subscribe, (sub) =>
        Stream.fromQueue(sub).pipe(
          Stream.filterMap((e) => (e._tag === "BreakerChanged" ? Option.some(e.change) : Option.none())),
          Stream.map((change) =>
            Sse.encoder.write({
              _tag: "Event",
              event: "breaker",
              id: undefined,
              data: JSON.stringify(change)
            })
          )
        )
      )
    )

    const heartbeats: Stream.Stream<string> = Stream.tick(settings.heartbeat).pipe(
      Stream.drop(1),
      Stream.as(": heartbeat\n\n")
    )

    return HttpLayerRouter.add("GET", "/v1/events", (request: HttpServerRequest.HttpServerRequest) =>
      Effect.gen(function* () {
        const principal = yield* authenticate(request.headers["authorization"])
        const url = new URL(request.url, "http://kyozo.local")
        const cursor = cursorOf(request.headers["last-event-id"], url.searchParams.get("after") ?? undefined)
        if (Option.isNone(cursor)) {
          return errorResponse(
            400,
            "InvalidCursor",
            "Invalid event cursor",
            "Last-Event-ID and ?after= must be a non-negative integer event id (or ?after=latest)."
          )
        }
        // Read before the stream subscribes: an event appended in between is still after it.
        const from =
          cursor.value === "latest" ? yield* events.lastId(principal.teamId).pipe(Effect.orDie) : cursor.value
        // From `latest`, the cursor goes first as a bare `id:` (it sets the client's Last-Event-ID
        // and dispatches nothing), so a reconnect before any event still misses none.
        const body = Stream.make(
          cursor.value === "latest" ? `: connected\nid: ${from}\n\n` : ": connected\n\n"
        ).pipe(
          Stream.concat(
            Stream.mergeAll(
              [
                teamEvents(principal.teamId, from).pipe(
                  Stream.map((e) =>
                    Sse.encoder.write({
                      _tag: "Event",
                      event: e.type,
                      id: String(e.id),
                      data: JSON.stringify(toEventView(e))
                    })
                  )
                ),
                breakerChanges,
                heartbeats
              ],
              { concurrency: "unbounded" }
            )
          ),
          // Revoking the key, its expiry or the member's removal ends the stream.
          sessions.guard(principal.keyId),
          Stream.interruptWhen(Deferred.await(stopping)),
          Stream.encodeText
        )
        return HttpServerResponse.stream(body, {
          contentType: "text/event-stream",
          headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
        })
      }).pipe(
        Effect.catchTags({
          Unauthorized: (e) => Effect.succeed(errorResponse(401, "Unauthorized", "Unauthorized", e.message)),
          RateLimited: (e) => Effect.succeed(tooManyRequests(e))
        })
      )
    )
  })

/**
 * Heartbeat from `KYOZO_SSE_HEARTBEAT_MS` (default 15 000), fallback poll from `KYOZO_SSE_POLL_MS`
 * (default 2 000: events appended by another process are seen at least that often).
 */
export const layer = Layer.unwrapScoped(
  Effect.gen(function* () {
    const { sseHeartbeatMs: heartbeatMs, ssePollMs: pollMs } = yield* currentKyozoConfig
    return yield* make({
      heartbeat: Duration.millis(Math.max(10, heartbeatMs)),
      fallbackPoll: Duration.millis(Math.max(50, pollMs)),
      pageSize: PAGE
    })
  })
)

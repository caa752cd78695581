/**
 * The append-only event log. Ids come from a bigserial and serve as the SSE Last-Event-ID, so a
 * client resumes with `listSince(team, lastId)`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { DeploymentEvent } from "@kyozo/api/domain/DeploymentEvent"
import type { DeploymentId, ServiceId, TeamId } from "@kyozo/api/domain/Ids"
import { Effect } from "effect"

import { DeploymentEventBus } from "./DeploymentEventBus.js"
import { clampLimit, jsonb, rowDecoder } from "./SqlRows.js"

export interface AppendEvent {
  readonly teamId: TeamId
  readonly serviceId?: ServiceId | null
  readonly deploymentId?: DeploymentId | null
  readonly type: string
  readonly message?: string
  readonly data?: Readonly<Record<string, unknown>>
}

export class DeploymentEventRepo extends Effect.Service<DeploymentEventRepo>()(
  "@kyozo/core/DeploymentEventRepo",
  {
    effect: Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const rows = rowDecoder(DeploymentEvent)
      const bus = yield* DeploymentEventBus

      /** Appends an event and returns it (its id is the new event id); wakes live readers (SSE). */
      const appendEvent = (event: AppendEvent): Effect.Effect<DeploymentEvent, SqlError> =>
        rows
          .single(
            sql`INSERT INTO container_deployment_events (team_id, service_id, deployment_id, type, message, data)
            VALUES (${event.teamId}, ${event.serviceId ?? null}, ${event.deploymentId ?? null}, ${event.type},
                    ${event.message ?? ""}, ${jsonb(event.data ?? {})}::jsonb)
            RETURNING *`
          )
          .pipe(Effect.tap(() => bus.publish(event.teamId)))

      /** Appends an event and returns its id. */
      const append = (event: AppendEvent): Effect.Effect<number, SqlError> =>
        Effect.map(appendEvent(event), (e) => e.id)

      /**
       * Appends several events of one team in ONE statement, ids in the given order (a step that
       * ends with two events pays one round trip); wakes live readers once.
       */
      const appendAll = (
        teamId: TeamId,
        events: ReadonlyArray<Omit<AppendEvent, "teamId">>
      ): Effect.Effect<void, SqlError> => {
        if (events.length === 0) return Effect.void
        const json = jsonb(
          events.map((e, i) => ({
            n: i,
            service_id: e.serviceId ?? null,
            deployment_id: e.deploymentId ?? null,
            type: e.type,
            message: e.message ?? "",
            data: e.data ?? {}
          }))
        )
        return sql`INSERT INTO container_deployment_events (team_id, service_id, deployment_id, type, message, data)
          SELECT ${teamId}, service_id, deployment_id, type, message, data
          FROM jsonb_to_recordset(${json}::jsonb) AS x(n integer, service_id text, deployment_id text,
            type text, message text, data jsonb)
          ORDER BY n`.pipe(Effect.zipRight(bus.publish(teamId)), Effect.asVoid)
      }

      /** The team's events with id > afterId, oldest first: the SSE resume query. */
      const listSince = (
        teamId: TeamId,
        afterId: number,
        limit?: number
      ): Effect.Effect<ReadonlyArray<DeploymentEvent>, SqlError> =>
        rows.all(
          sql`SELECT * FROM container_deployment_events WHERE team_id = ${teamId} AND id > ${afterId}
            ORDER BY id LIMIT ${clampLimit(limit, 100)}`
        )

      /** One service's events with id > afterId (default: from the start), oldest first. */
      const listByService = (
        teamId: TeamId,
        serviceId: ServiceId,
        options: { readonly afterId?: number; readonly limit?: number } = {}
      ): Effect.Effect<ReadonlyArray<DeploymentEvent>, SqlError> =>
        rows.all(
          sql`SELECT * FROM container_deployment_events
            WHERE team_id = ${teamId} AND service_id = ${serviceId} AND id > ${options.afterId ?? 0}
            ORDER BY id LIMIT ${clampLimit(options.limit, 100)}`
        )

      /** The service's most recent events, newest first (for "kyozo events svc" without a cursor). */
      const latestByService = (
        teamId: TeamId,
        serviceId: ServiceId,
        limit?: number
      ): Effect.Effect<ReadonlyArray<DeploymentEvent>, SqlError> =>
        rows.all(
          sql`SELECT * FROM container_deployment_events WHERE team_id = ${teamId} AND service_id = ${serviceId}
            ORDER BY id DESC LIMIT ${clampLimit(limit, 100)}`
        )

      /** The team's highest event id (0 when none): where a new live subscriber starts. */
      const lastId = (teamId: TeamId): Effect.Effect<number, SqlError> =>
        sql<{
          id: string | null
        }>`SELECT max(id)::text AS id FROM container_deployment_events WHERE team_id = ${teamId}`.pipe(
          Effect.map((r) => Number(r[0]?.id ?? 0))
        )

      /** Wake-ups for new events (team ids), from the moment of subscribing: read rows after your cursor. */
      const notifications = bus.subscribe

      return {
        append,
        appendAll,
        appendEvent,
        listSince,
        listByService,
        latestByService,
        lastId,
        notifications
      } as const
    }),
    dependencies: [DeploymentEventBus.Default]
  }
) {}

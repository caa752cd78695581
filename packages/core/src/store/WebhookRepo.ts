/**
 * Webhooks and their delivery log. The outbox is container_deployment_events itself: each webhook
 * keeps a cursor (the last event id handled), so deliveries survive restarts without a copy of
 * every event per webhook.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { DeploymentEvent } from "@kyozo/api/domain/DeploymentEvent"
import type { TeamId } from "@kyozo/api/domain/Ids"
import { Effect, type Option } from "effect"

import {
  type DeliveryOutcome,
  makeSecret,
  makeWebhookId,
  Webhook,
  WebhookDelivery,
  type WebhookId
} from "../Webhook.js"
import { clampLimit, jsonb, rowDecoder } from "./SqlRows.js"

export interface CreateWebhook {
  readonly teamId: TeamId
  readonly url: string
  /** Generated when absent. */
  readonly secret?: string
  readonly eventTypes?: ReadonlyArray<string>
  /** Deliver events after this id; default: the team's newest event (no replay of history). */
  readonly afterEventId?: number
}

export interface NewDelivery {
  readonly webhookId: WebhookId
  readonly eventId: number
  readonly attempt: number
  readonly outcome: DeliveryOutcome
  readonly responseStatus: number | null
  readonly error?: string
  readonly durationMs: number | null
  readonly attemptedAt: Date
}

export class WebhookRepo extends Effect.Service<WebhookRepo>()("@kyozo/core/WebhookRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const hooks = rowDecoder(Webhook)
    const deliveries = rowDecoder(WebhookDelivery)
    const events = rowDecoder(DeploymentEvent)

    const create = (input: CreateWebhook): Effect.Effect<Webhook, SqlError> =>
      hooks.single(
        sql`INSERT INTO webhooks (id, team_id, url, secret, event_types, cursor_event_id)
            VALUES (${makeWebhookId()}, ${input.teamId}, ${input.url}, ${input.secret ?? makeSecret()},
                    ${jsonb(input.eventTypes ?? [])}::jsonb,
                    ${
                      input.afterEventId === undefined
                        ? sql`(SELECT coalesce(max(id), 0) FROM container_deployment_events WHERE team_id = ${input.teamId})`
                        : sql`${input.afterEventId}`
                    })
            RETURNING *`
      )

    const findById = (teamId: TeamId, id: WebhookId): Effect.Effect<Option.Option<Webhook>, SqlError> =>
      hooks.first(sql`SELECT * FROM webhooks WHERE id = ${id} AND team_id = ${teamId}`)

    const listByTeam = (teamId: TeamId): Effect.Effect<ReadonlyArray<Webhook>, SqlError> =>
      hooks.all(sql`SELECT * FROM webhooks WHERE team_id = ${teamId} ORDER BY created_at, id`)

    const setEnabled = (teamId: TeamId, id: WebhookId, enabled: boolean): Effect.Effect<boolean, SqlError> =>
      sql`UPDATE webhooks SET enabled = ${enabled}, attempts = 0, next_attempt_at = NULL
          WHERE id = ${id} AND team_id = ${teamId} RETURNING id`.pipe(Effect.map((r) => r.length > 0))

    const remove = (teamId: TeamId, id: WebhookId): Effect.Effect<boolean, SqlError> =>
      sql`DELETE FROM webhooks WHERE id = ${id} AND team_id = ${teamId} RETURNING id`.pipe(
        Effect.map((r) => r.length > 0)
      )

    /** Global (the dispatcher): enabled webhooks with events after their cursor and no backoff pending. */
    const listDue = (now: Date): Effect.Effect<ReadonlyArray<Webhook>, SqlError> =>
      hooks.all(
        sql`SELECT w.* FROM webhooks w
            WHERE w.enabled AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= ${now})
              AND EXISTS (SELECT 1 FROM container_deployment_events e
                          WHERE e.team_id = w.team_id AND e.id > w.cursor_event_id)
            ORDER BY w.id`
      )

    /** The webhook's next events after its cursor, oldest first. */
    const pending = (
      webhook: Webhook,
      limit?: number
    ): Effect.Effect<ReadonlyArray<DeploymentEvent>, SqlError> =>
      events.all(
        sql`SELECT * FROM container_deployment_events
            WHERE team_id = ${webhook.teamId} AND id > ${webhook.cursorEventId}
            ORDER BY id LIMIT ${clampLimit(limit, 50)}`
      )

    /** Moves the cursor past `eventId` and clears the retry state (never backwards). */
    const advance = (id: WebhookId, eventId: number): Effect.Effect<void, SqlError> =>
      Effect.asVoid(
        sql`UPDATE webhooks SET cursor_event_id = greatest(cursor_event_id, ${eventId}), attempts = 0,
            next_attempt_at = NULL WHERE id = ${id}`
      )

    /** Records a failed attempt of the event after the cursor and when to try again. */
    const postpone = (id: WebhookId, attempts: number, nextAttemptAt: Date): Effect.Effect<void, SqlError> =>
      Effect.asVoid(
        sql`UPDATE webhooks SET attempts = ${attempts}, next_attempt_at = ${nextAttemptAt} WHERE id = ${id}`
      )

    const logDelivery = (d: NewDelivery): Effect.Effect<void, SqlError> =>
      Effect.asVoid(
        sql`INSERT INTO webhook_deliveries ${sql.insert({
          webhook_id: d.webhookId,
          event_id: d.eventId,
          attempt: d.attempt,
          outcome: d.outcome,
          response_status: d.responseStatus,
          error: d.error ?? "",
          duration_ms: d.durationMs === null ? null : Math.round(d.durationMs),
          attempted_at: d.attemptedAt
        })}`
      )

    /** The delivery log of one webhook, newest first (for the API). */
    const listDeliveries = (
      teamId: TeamId,
      id: WebhookId,
      limit?: number
    ): Effect.Effect<ReadonlyArray<WebhookDelivery>, SqlError> =>
      deliveries.all(
        sql`SELECT d.* FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
            WHERE d.webhook_id = ${id} AND w.team_id = ${teamId}
            ORDER BY d.id DESC LIMIT ${clampLimit(limit, 50)}`
      )

    return {
      create,
      findById,
      listByTeam,
      setEnabled,
      remove,
      listDue,
      pending,
      advance,
      postpone,
      logDelivery,
      listDeliveries
    } as const
  })
}) {}

/**
 * Webhooks: a team's URL, secret and event filter, and how deliveries are signed. A receiver
 * checks `X-Kyozo-Signature: v1=<hex>` = HMAC-SHA256(secret, `${X-Kyozo-Timestamp}.${body}`) and
 * rejects old timestamps, so a captured delivery cannot be replayed later.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"

import { BigIntColumn, randomToken, TeamId } from "@kyozo/api/domain/Ids"
import { Schema } from "effect"

export const WebhookId = Schema.String.pipe(Schema.brand("WebhookId"))
export type WebhookId = typeof WebhookId.Type
export const makeWebhookId = (): WebhookId => WebhookId.make(`whk_${randomToken()}`)

/** A new random secret (hex, 256 bits). */
export const makeSecret = (): string => randomBytes(32).toString("hex")

export class Webhook extends Schema.Class<Webhook>("Webhook")({
  id: WebhookId,
  teamId: TeamId,
  url: Schema.String,
  /** Redacted: a webhook printed in a log or an API answer never shows it. */
  secret: Schema.Redacted(Schema.String),
  eventTypes: Schema.Array(Schema.String),
  enabled: Schema.Boolean,
  /** Outbox cursor: the last event id handled. */
  cursorEventId: BigIntColumn,
  attempts: Schema.Int,
  nextAttemptAt: Schema.NullOr(Schema.DateFromSelf),
  createdAt: Schema.DateFromSelf
}) {}

export const DeliveryOutcome = Schema.Literal("delivered", "failed", "abandoned")
export type DeliveryOutcome = typeof DeliveryOutcome.Type

/** One attempt of one event to one webhook (the delivery log). */
export class WebhookDelivery extends Schema.Class<WebhookDelivery>("WebhookDelivery")({
  id: BigIntColumn,
  webhookId: WebhookId,
  eventId: BigIntColumn,
  attempt: Schema.Int,
  outcome: DeliveryOutcome,
  responseStatus: Schema.NullOr(Schema.Int),
  error: Schema.String,
  durationMs: Schema.NullOr(Schema.Int),
  attemptedAt: Schema.DateFromSelf
}) {}

/** Whether an event type passes the filter: exact types or "prefix.*"; an empty filter passes all. */
export const matchesFilter = (patterns: ReadonlyArray<string>, type: string): boolean =>
  patterns.length === 0 ||
  patterns.some((p) => p === "*" || p === type || (p.endsWith(".*") && type.startsWith(p.slice(0, -1))))

/** `v1=<hex>`: HMAC-SHA256 over `${timestamp}.${body}` (timestamp in epoch seconds). */
export const sign = (secret: string, timestamp: number, body: string): string =>
  `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`

export const Headers = {
  signature: "x-kyozo-signature",
  timestamp: "x-kyozo-timestamp",
  event: "x-kyozo-event",
  delivery: "x-kyozo-delivery"
} as const

/** The headers of one delivery. The delivery id is stable across retries so receivers can dedupe. */
export const deliveryHeaders = (options: {
  readonly secret: string
  readonly timestamp: number
  readonly body: string
  readonly eventType: string
  readonly deliveryId: string
}): Record<string, string> => ({
  "content-type": "application/json",
  [Headers.signature]: sign(options.secret, options.timestamp, options.body),
  [Headers.timestamp]: String(options.timestamp),
  [Headers.event]: options.eventType,
  [Headers.delivery]: options.deliveryId
})

/** A receiver's check: constant-time comparison, and a timestamp within `toleranceSeconds` of `now`. */
export const verify = (options: {
  readonly secret: string
  readonly timestamp: number
  readonly body: string
  readonly signature: string
  readonly nowSeconds: number
  readonly toleranceSeconds?: number
}): boolean => {
  if (Math.abs(options.nowSeconds - options.timestamp) > (options.toleranceSeconds ?? 300)) return false
  const expected = Buffer.from(sign(options.secret, options.timestamp, options.body))
  const given = Buffer.from(options.signature)
  return expected.length === given.length && timingSafeEqual(expected, given)
}

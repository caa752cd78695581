/**
 * Delivers container_deployment_events to team webhooks. Each webhook drains its own outbox
 * cursor in its own fiber: events in order, each POST with a deadline, a failure postpones that
 * webhook alone (exponential backoff, stored in the row so it survives restarts), and the poll
 * loop never waits for a delivery — a slow or failing endpoint never slows the others.
 * At-least-once: the cursor moves after the endpoint answered; the delivery id header lets a
 * receiver drop the rare duplicate after a crash between the two.
 */
import * as http from "node:http"
import * as https from "node:https"

import type { DeploymentEvent } from "@kyozo/api/domain/DeploymentEvent"
import { TargetRefused } from "@kyozo/api/domain/TargetUrl"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { checkTarget, guardedLookup } from "@kyozo/core/OutboundTarget"
import { WebhookRepo } from "@kyozo/core/store/WebhookRepo"
import { deliveryHeaders, matchesFilter, type Webhook } from "@kyozo/core/Webhook"
import { Clock, Context, Duration, Effect, FiberSet, Layer, Option, Redacted, Schedule } from "effect"

export interface WebhookSettingsShape {
  readonly pollInterval: Duration.Duration
  /** Deadline of one POST. */
  readonly timeout: Duration.Duration
  /** Webhooks delivering at once. */
  readonly concurrency: number
  /** Events one drain takes from the outbox before yielding its slot. */
  readonly batch: number
  readonly backoffBase: Duration.Duration
  readonly backoffMax: Duration.Duration
  /** After this many failed attempts the event is abandoned (logged) and the cursor moves on. */
  readonly maxAttempts: number
  /** Loopback and private targets allowed (`KYOZO_WEBHOOK_ALLOW_PRIVATE=1`); metadata never. */
  readonly allowPrivate: boolean
}

export class WebhookSettings extends Context.Reference<WebhookSettings>()("@kyozo/workers/WebhookSettings", {
  defaultValue: (): WebhookSettingsShape => ({
    pollInterval: Duration.seconds(1),
    timeout: Duration.seconds(5),
    concurrency: 8,
    batch: 50,
    backoffBase: Duration.seconds(5),
    backoffMax: Duration.minutes(10),
    maxAttempts: 10,
    // KyozoConfig.webhookAllowPrivate (KYOZO_WEBHOOK_ALLOW_PRIVATE) allows them as well.
    allowPrivate: false
  })
}) {}

/** Delay after the `attempts`-th consecutive failure: base · 2^(attempts-1), capped. */
export const retryDelay = (attempts: number, settings: WebhookSettingsShape): Duration.Duration =>
  Duration.millis(
    Math.min(
      Duration.toMillis(settings.backoffMax),
      Duration.toMillis(settings.backoffBase) * 2 ** Math.min(Math.max(0, attempts - 1), 30)
    )
  )

/** The JSON body of an event delivery. */
export const payload = (event: DeploymentEvent): string =>
  JSON.stringify({
    id: event.id,
    type: event.type,
    teamId: event.teamId,
    serviceId: event.serviceId,
    deploymentId: event.deploymentId,
    message: event.message,
    data: event.data,
    createdAt: event.createdAt.toISOString()
  })

interface Sent {
  readonly status: number | null
  readonly error: string
  readonly durationMs: number
}

/**
 * One POST through node's http(s) client: the target is checked again here (DNS can change after
 * the webhook was stored), and the socket connects to the very address the guarded lookup checked.
 * Redirects are not followed.
 */
const post = (
  url: string,
  headers: Record<string, string>,
  body: string,
  timeout: Duration.Duration,
  allowPrivate: boolean
) =>
  Effect.async<Sent>((resume, signal) => {
    const started = performance.now()
    const done = (status: number | null, error: string) =>
      resume(Effect.succeed({ status, error, durationMs: performance.now() - started }))
    const target = checkTarget(url, allowPrivate)
    if (target instanceof TargetRefused) return done(null, `target refused: ${target.message}`)
    const client = target.protocol === "https:" ? https : http
    const req = client.request(
      target,
      {
        method: "POST",
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        lookup: guardedLookup(allowPrivate),
        signal: AbortSignal.any([signal, AbortSignal.timeout(Duration.toMillis(timeout))])
      },
      (res) => {
        res.resume()
        const status = res.statusCode ?? 0
        done(status, status >= 200 && status < 300 ? "" : `answered ${status}`)
      }
    )
    req.on("error", (e: Error & { code?: string }) => {
      if (signal.aborted) return
      done(
        null,
        e.name === "AbortError" || e.name === "TimeoutError"
          ? `no answer in ${Duration.format(timeout)}`
          : e.code === "ETARGETREFUSED"
            ? `target refused: ${e.message}`
            : e.message
      )
    })
    req.end(body)
  })

export class WebhookDispatcher extends Effect.Service<WebhookDispatcher>()(
  "@kyozo/workers/WebhookDispatcher",
  {
    effect: Effect.gen(function* () {
      const repo = yield* WebhookRepo
      const config = yield* Effect.serviceOption(KyozoConfig)
      const allowPrivate = (settings: WebhookSettingsShape) =>
        settings.allowPrivate || Option.exists(config, (c) => c.webhookAllowPrivate)

      /** Delivers the webhook's pending events in order until one fails or the batch is done. */
      const drain = (webhook: Webhook) =>
        Effect.gen(function* () {
          const settings = yield* WebhookSettings
          const events = yield* repo.pending(webhook, settings.batch)
          let delivered = 0
          // Failed attempts so far belong to the first event sent (the one the last drain stopped at).
          let priorAttempts = webhook.attempts
          for (const event of events) {
            if (!matchesFilter(webhook.eventTypes, event.type)) {
              yield* repo.advance(webhook.id, event.id)
              continue
            }
            const nowMs = yield* Clock.currentTimeMillis
            const body = payload(event)
            const headers = deliveryHeaders({
              secret: Redacted.value(webhook.secret),
              timestamp: Math.floor(nowMs / 1000),
              body,
              eventType: event.type,
              deliveryId: `${webhook.id}.${event.id}`
            })
            // Sending and recording go together: a shutdown waits (at most the POST deadline) rather
            // than leaving a delivered event behind the cursor.
            const ok = yield* Effect.uninterruptible(
              Effect.gen(function* () {
                const sent = yield* post(webhook.url, headers, body, settings.timeout, allowPrivate(settings))
                const attempt = priorAttempts + 1
                priorAttempts = 0
                const attemptedAt = new Date(nowMs)
                if (sent.status !== null && sent.status >= 200 && sent.status < 300) {
                  yield* repo.logDelivery({
                    webhookId: webhook.id,
                    eventId: event.id,
                    attempt,
                    outcome: "delivered",
                    responseStatus: sent.status,
                    durationMs: sent.durationMs,
                    attemptedAt
                  })
                  yield* repo.advance(webhook.id, event.id)
                  return true
                }
                const abandoned = attempt >= settings.maxAttempts
                yield* repo.logDelivery({
                  webhookId: webhook.id,
                  eventId: event.id,
                  attempt,
                  outcome: abandoned ? "abandoned" : "failed",
                  responseStatus: sent.status,
                  error: sent.error,
                  durationMs: sent.durationMs,
                  attemptedAt
                })
                if (abandoned) {
                  yield* repo.advance(webhook.id, event.id)
                  return true
                }
                yield* repo.postpone(
                  webhook.id,
                  attempt,
                  new Date(nowMs + Duration.toMillis(retryDelay(attempt, settings)))
                )
                return false
              })
            )
            if (!ok) return delivered
            delivered++
          }
          return delivered
        })

      /**
       * The poll loop, forked in the caller's scope: every interval, each due webhook that is not
       * already draining gets a fiber (at most `concurrency` deliver at once).
       */
      const start = Effect.gen(function* () {
        const settings = yield* WebhookSettings
        const fibers = yield* FiberSet.make()
        const slots = yield* Effect.makeSemaphore(settings.concurrency)
        const inFlight = new Set<string>()
        const tick = Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const due = yield* repo.listDue(new Date(now))
          for (const webhook of due) {
            if (inFlight.has(webhook.id)) continue
            inFlight.add(webhook.id)
            yield* FiberSet.run(
              fibers,
              slots
                .withPermits(1)(drain(webhook))
                .pipe(
                  Effect.catchAllCause((cause) =>
                    Effect.logWarning(`webhook ${webhook.id} delivery failed`, cause)
                  ),
                  Effect.ensuring(Effect.sync(() => inFlight.delete(webhook.id)))
                )
            )
          }
        })
        yield* tick.pipe(
          Effect.catchAllCause((cause) => Effect.logWarning("webhook poll failed", cause)),
          Effect.repeat(Schedule.spaced(settings.pollInterval)),
          Effect.forkScoped
        )
      })

      return { drain, start } as const
    }),
    dependencies: [WebhookRepo.Default]
  }
) {
  /** Runs the dispatcher for the life of the layer. */
  static readonly layer = Layer.scopedDiscard(Effect.flatMap(WebhookDispatcher, (d) => d.start)).pipe(
    Layer.provide(WebhookDispatcher.Default)
  )
}

/**
 * Team webhooks, the rules every front door calls: every member reads them and their delivery
 * log; owners and admins create and delete them (they hold the secret, shown once at creation).
 * Where a webhook may point is checked on its URL here, and again on the resolved address at each
 * delivery (WebhookDispatcher). Another team's webhook is WebhookNotFound, like an unknown id, and
 * existence is checked before the caller's role so nothing is confirmed about it.
 */
import { TargetRefused } from "@kyozo/api/domain/TargetUrl"
import { CurrentPrincipal, type Forbidden } from "@kyozo/api/KyozoRpc"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { checkTarget } from "@kyozo/core/OutboundTarget"
import { WebhookRepo } from "@kyozo/core/store/WebhookRepo"
import { type Webhook, type WebhookDelivery, WebhookId } from "@kyozo/core/Webhook"
import { Data, Effect, Option, Redacted } from "effect"

import { requireRole } from "../Policy.js"
import { repository } from "./Storage.js"

export class WebhookNotFound extends Data.TaggedError("WebhookNotFound")<{ readonly webhookId: string }> {
  override get message() {
    return "No such webhook in your team: list them with GET /v1/webhooks."
  }
}

export interface NewWebhook {
  readonly url: string
  /** Generated when absent. */
  readonly secret?: string | undefined
  readonly eventTypes?: ReadonlyArray<string> | undefined
}

export class Webhooks extends Effect.Service<Webhooks>()("@kyozo/server/application/Webhooks", {
  effect: Effect.gen(function* () {
    const webhooks = yield* repository(WebhookRepo)
    const config = yield* KyozoConfig

    /** The team's webhooks (without secrets). */
    const list: Effect.Effect<ReadonlyArray<Webhook>, never, CurrentPrincipal> = Effect.flatMap(
      CurrentPrincipal,
      (p) => webhooks.listByTeam(p.teamId)
    )

    /** A webhook of the caller's team. */
    const get = (webhookId: string): Effect.Effect<Webhook, WebhookNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const p = yield* CurrentPrincipal
        const found = yield* webhooks.findById(p.teamId, WebhookId.make(webhookId))
        if (Option.isNone(found)) return yield* new WebhookNotFound({ webhookId })
        return found.value
      })

    /** A new webhook (admins and owners) and its secret, which later reads never carry. */
    const create = (
      input: NewWebhook
    ): Effect.Effect<
      { readonly webhook: Webhook; readonly secret: string },
      Forbidden | TargetRefused,
      CurrentPrincipal
    > =>
      Effect.gen(function* () {
        const p = yield* requireRole("manage webhooks", "admin")
        const target = checkTarget(input.url, config.webhookAllowPrivate)
        if (target instanceof TargetRefused) return yield* target
        const created = yield* webhooks.create({
          teamId: p.teamId,
          url: target.href,
          ...(input.secret === undefined ? {} : { secret: input.secret }),
          ...(input.eventTypes === undefined ? {} : { eventTypes: input.eventTypes })
        })
        return { webhook: created, secret: Redacted.value(created.secret) }
      })

    /** Deletes a webhook (admins and owners). */
    const remove = (webhookId: string): Effect.Effect<void, Forbidden | WebhookNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        // Existence first, so another team's id is not found whatever the caller's role.
        const hook = yield* get(webhookId)
        const p = yield* requireRole("manage webhooks", "admin")
        const removed = yield* webhooks.remove(p.teamId, hook.id)
        if (!removed) return yield* new WebhookNotFound({ webhookId })
      })

    /** The webhook's delivery log, newest first. */
    const deliveries = (
      webhookId: string,
      options: { readonly limit?: number | undefined } = {}
    ): Effect.Effect<ReadonlyArray<WebhookDelivery>, WebhookNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const hook = yield* get(webhookId)
        return yield* webhooks.listDeliveries(hook.teamId, hook.id, options.limit ?? 50)
      })

    return { list, get, create, remove, deliveries } as const
  }),
  dependencies: [WebhookRepo.Default]
}) {}

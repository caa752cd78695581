/** REST `webhooks` group over the Webhooks application service. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { Webhooks } from "../application/Webhooks.js"
import { deliveryDoc, listDoc, webhookDoc } from "./Documents.js"
import { webhookCreateError, webhookError } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "webhooks", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Webhooks
    return handlers
      .handle("listWebhooks", () =>
        Effect.flatMap(app.list, (rows) => listDoc(rows.map((w) => webhookDoc(w))))
      )
      .handle("createWebhook", ({ payload }) =>
        app.create(payload.data.attributes).pipe(
          Effect.mapError(webhookCreateError),
          // The secret is shown here once; later reads never carry it.
          Effect.map(({ webhook, secret }) => ({ data: webhookDoc(webhook, secret) }))
        )
      )
      .handle("getWebhook", ({ path }) =>
        app.get(path.webhookId).pipe(
          Effect.mapError(webhookError),
          Effect.map((w) => ({ data: webhookDoc(w) }))
        )
      )
      .handle("deleteWebhook", ({ path }) => app.remove(path.webhookId).pipe(Effect.mapError(webhookError)))
      .handle("listWebhookDeliveries", ({ path, urlParams }) =>
        app.deliveries(path.webhookId, { limit: urlParams["page[size]"] ?? 50 }).pipe(
          Effect.mapError(webhookError),
          Effect.flatMap((rows) => listDoc(rows.map(deliveryDoc)))
        )
      )
  })
)

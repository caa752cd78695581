/** REST `health` group (a service's health history) over the Insights application service. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { Insights } from "../application/Insights.js"
import { healthCheckDoc, listDoc } from "./Documents.js"
import { notFound } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "health", (handlers) =>
  Effect.map(Insights, (app) =>
    handlers.handle("healthHistory", ({ path, urlParams }) =>
      app.healthHistory(path.serviceId, { limit: urlParams["page[size]"] ?? 50 }).pipe(
        Effect.mapError(() => notFound("service")),
        Effect.flatMap((rows) => listDoc(rows.map(healthCheckDoc)))
      )
    )
  )
)

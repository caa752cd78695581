/** REST `recommendations` group (resource limits from usage) over the Insights application service. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { Insights } from "../application/Insights.js"
import { recommendationDoc } from "./Documents.js"
import { notFound } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "recommendations", (handlers) =>
  Effect.map(Insights, (app) =>
    handlers.handle("serviceRecommendations", ({ path, urlParams }) =>
      app.recommendations(path.serviceId, urlParams.window ?? "week").pipe(
        Effect.mapError(() => notFound("service")),
        Effect.map((r) => ({ data: recommendationDoc(r) }))
      )
    )
  )
)

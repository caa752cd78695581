/** REST `metrics` group (a service's samples over a window) over the Insights application service. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { Insights } from "../application/Insights.js"
import { listDoc, metricSampleDoc } from "./Documents.js"
import { notFound } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "metrics", (handlers) =>
  Effect.map(Insights, (app) =>
    handlers.handle("serviceMetrics", ({ path, urlParams }) =>
      app.metrics(path.serviceId, urlParams.window ?? "hour").pipe(
        Effect.mapError(() => notFound("service")),
        Effect.flatMap((rows) => listDoc(rows.map(metricSampleDoc)))
      )
    )
  )
)

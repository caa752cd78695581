/**
 * `GET /metrics`: Prometheus text. No auth here, like /healthz: scrapers sit on the admin's
 * network; the lead decides the binding when wiring it into Application.ts.
 */
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import * as PrometheusText from "@kyozo/core/PrometheusText"
import { Effect } from "effect"

export const metrics = HttpLayerRouter.add(
  "GET",
  "/metrics",
  PrometheusText.renderMetrics.pipe(
    Effect.map((body) => HttpServerResponse.text(body, { contentType: PrometheusText.ContentType })),
    Effect.catchAllCause((cause) =>
      Effect.as(
        Effect.logWarning("/metrics failed", cause),
        HttpServerResponse.text("# metrics unavailable\n", {
          status: 503,
          contentType: PrometheusText.ContentType
        })
      )
    )
  )
)

export const layer = metrics

/**
 * `GET /metrics`: Prometheus text. It names every team's services, so it needs
 * `Authorization: Bearer <token>` with either the scrape token `KYOZO_METRICS_TOKEN` (compared in
 * constant time) or an API key of an instance admin; anything else is a 401.
 */
import { createHash, timingSafeEqual } from "node:crypto"

import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { currentKyozoConfig } from "@kyozo/core/KyozoConfig"
import * as PrometheusText from "@kyozo/core/PrometheusText"
import { UserRepo } from "@kyozo/core/store/UserRepo"
import { Effect, Layer, Option, Redacted } from "effect"

import { bearerToken, makeAuthenticate } from "./Auth.js"
import * as RequestCounts from "./RequestCounts.js"
import { errorResponse } from "./UploadRoutes.js"

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest()

const unauthorized = () =>
  errorResponse(
    401,
    "Unauthorized",
    "Unauthorized",
    "Send `Authorization: Bearer <token>` with the scrape token (KYOZO_METRICS_TOKEN) or an instance admin's API key."
  ).pipe(HttpServerResponse.setHeader("www-authenticate", 'Bearer realm="kyozo-metrics"'))

const render = PrometheusText.renderMetrics.pipe(
  Effect.map((body) =>
    HttpServerResponse.text(body + PrometheusText.render([RequestCounts.family()]), {
      contentType: PrometheusText.ContentType
    })
  ),
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

export const layer = Layer.unwrapEffect(
  Effect.gen(function* () {
    const authenticate = yield* makeAuthenticate
    const users = yield* UserRepo
    const configured = Option.fromNullable((yield* currentKyozoConfig).metricsToken)
    const scrape = Option.filter(
      Option.map(configured, (t) => Redacted.value(t).trim()),
      (t) => t !== ""
    ).pipe(Option.map(digest))

    const allowed = (authorization: string | undefined) =>
      Effect.gen(function* () {
        const token = bearerToken(authorization)
        if (Option.isNone(token)) return false
        if (Option.isSome(scrape) && timingSafeEqual(scrape.value, digest(token.value))) return true
        const principal = yield* authenticate(authorization).pipe(Effect.option)
        if (Option.isNone(principal)) return false
        return yield* users.isInstanceAdmin(principal.value.userId).pipe(Effect.orDie)
      })

    return HttpLayerRouter.add("GET", "/metrics", (request: HttpServerRequest.HttpServerRequest) =>
      Effect.flatMap(allowed(request.headers["authorization"]), (ok) =>
        ok ? render : Effect.succeed(unauthorized())
      )
    )
  })
)

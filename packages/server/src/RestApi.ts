/**
 * The REST API as one routes layer: `KyozoHttpApi` under /v1 with its handlers and bearer
 * middleware (provided one after the other), `/openapi.json` generated from it, `/docs` to read it,
 * and the JSON:API boundary (405/413/415/400) in front of it.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect, Layer } from "effect"

import * as HttpApiHandlers from "./HttpApiHandlers.js"
import * as RestBoundary from "./RestBoundary.js"

/**
 * `/docs`, the Swagger UI page. Its module inlines swagger-ui (2 MB of source, ~10 MB of resident
 * memory once loaded), so it is imported at the first request rather than at start: an idle server
 * never holds it. The page is then built once, on a router of its own, and served from there.
 */
const docs = Layer.unwrapEffect(
  Effect.map(
    Effect.cached(
      Effect.promise(() => import("@effect/platform/HttpApiSwagger")).pipe(
        Effect.flatMap((Swagger) =>
          Effect.gen(function* () {
            const router = yield* HttpLayerRouter.make
            yield* Layer.build(
              Swagger.layerHttpLayerRouter({ api: KyozoHttpApi, path: "/docs" }).pipe(
                Layer.provide(Layer.succeed(HttpLayerRouter.HttpRouter, router))
              )
            )
            return router.asHttpEffect()
          }).pipe(Effect.scoped)
        )
      )
    ),
    (page) => HttpLayerRouter.add("GET", "/docs", Effect.flatten(page))
  )
)

export const layer = Layer.mergeAll(
  HttpLayerRouter.addHttpApi(KyozoHttpApi, { openapiPath: "/openapi.json" }).pipe(
    Layer.provide(HttpApiHandlers.layer),
    Layer.provide(HttpApiHandlers.AuthorizationLive)
  ),
  docs,
  RestBoundary.layer
)

/**
 * The REST API as one routes layer: `KyozoHttpApi` under /v1 with its handlers and bearer
 * middleware (provided one after the other), `/openapi.json` generated from it, `/docs` to read it,
 * and the JSON:API boundary (405/413/415/400) in front of it.
 */
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Layer } from "effect"

import * as HttpApiHandlers from "./HttpApiHandlers.js"
import * as RestBoundary from "./RestBoundary.js"

export const layer = Layer.mergeAll(
  HttpLayerRouter.addHttpApi(KyozoHttpApi, { openapiPath: "/openapi.json" }).pipe(
    Layer.provide(HttpApiHandlers.layer),
    Layer.provide(HttpApiHandlers.AuthorizationLive)
  ),
  HttpApiSwagger.layerHttpLayerRouter({ api: KyozoHttpApi, path: "/docs" }),
  RestBoundary.layer
)

/**
 * The supervision tree as layers, built bottom-up: configuration → database (migrated) → engine
 * (Docker or mock, behind the breaker) → durable engine → workers → ContainerManager and its
 * schedules → HTTP. Closing the scope stops them in reverse order, as OTP stops children right to left.
 */
import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { ContainerManager } from "@kyozo/core/ContainerManager"
import * as ContainerManagerLayer from "@kyozo/core/ContainerManager"
import * as Database from "@kyozo/core/Database"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import * as RuntimeSelection from "@kyozo/core/RuntimeSelection"
import * as DurableEngine from "@kyozo/workers/DurableEngine"
import * as Workers from "@kyozo/workers/Workers"
import { Effect, Layer } from "effect"
import { createServer } from "node:http"
import * as StatusRoutes from "./StatusRoutes.js"

/** Everything but HTTP: what the server, the REPL and the CLI's local mode share. */
export const CoreLive = ContainerManagerLayer.layer.pipe(
  Layer.provideMerge(Workers.layer),
  Layer.provideMerge(DurableEngine.layerFromDatabase()),
  Layer.provideMerge(RuntimeSelection.layer),
  Layer.provideMerge(Database.layer),
  Layer.provideMerge(KyozoConfig.Default)
)

export const HttpLive = Layer.unwrapEffect(
  Effect.map(KyozoConfig, (config) =>
    HttpLayerRouter.serve(StatusRoutes.layer, { disableLogger: true }).pipe(
      Layer.provide(NodeHttpServer.layer(createServer, { host: config.host, port: config.port }))
    )
  )
)

export const ServerLive = HttpLive.pipe(Layer.provide(CoreLive))

export { ContainerManager }

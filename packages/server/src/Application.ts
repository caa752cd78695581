/**
 * The supervision tree as layers, built bottom-up: configuration → database (migrated) → engine
 * (Docker or mock, behind the breaker) → durable engine → workers → ContainerManager and its
 * schedules → HTTP. Closing the scope stops them in reverse order, as OTP stops children right to left.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import { KyozoRpc } from "@kyozo/api/KyozoRpc"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import * as EdgeSelection from "@kyozo/core/edge/EdgeSelection"
import * as RuntimeSelection from "@kyozo/core/engine/RuntimeSelection"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { ApiKeyRepo } from "@kyozo/core/store/ApiKeyRepo"
import * as Database from "@kyozo/core/store/Database"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { ServiceDomainRepo } from "@kyozo/core/store/ServiceDomainRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { TopologyRepo } from "@kyozo/core/store/TopologyRepo"
import { UserRepo } from "@kyozo/core/store/UserRepo"
import * as ContainerManagerLayer from "@kyozo/core/supervision/ContainerManager"
import * as DeployerLive from "@kyozo/workers/deploy/DeployerLive"
import * as DurableEngine from "@kyozo/workers/deploy/DurableEngine"
import * as EdgeRoutes from "@kyozo/workers/deploy/EdgeRoutes"
import * as Autoscaler from "@kyozo/workers/maintenance/Autoscaler"
import * as Reconciler from "@kyozo/workers/maintenance/Reconciler"
import { WebhookDispatcher } from "@kyozo/workers/notify/WebhookDispatcher"
import * as Workers from "@kyozo/workers/Workers"
import { Effect, identity, Layer, Option } from "effect"

import { Services } from "./application/Services.js"
import { UploadPolicy } from "./application/UploadPolicy.js"
import * as Auth from "./Auth.js"
import * as DashboardRoutes from "./DashboardRoutes.js"
import * as EventsRoutes from "./EventsRoutes.js"
import * as GracefulServer from "./GracefulServer.js"
import * as GraphqlRoutes from "./graphql/GraphqlRoutes.js"
import * as HotRoutes from "./http/HotRoutes.js"
import { KeySessions } from "./KeySessions.js"
import * as MetricsRoutes from "./MetricsRoutes.js"
import { PrincipalCache } from "./PrincipalCache.js"
import * as RateLimit from "./RateLimit.js"
import * as RestApi from "./RestApi.js"
import * as RpcHandlers from "./RpcHandlers.js"
import * as Sessions from "./Sessions.js"
import * as StatusRoutes from "./StatusRoutes.js"
import * as Tracing from "./Tracing.js"
import * as UploadRoutes from "./UploadRoutes.js"

/** Repositories of the API (authentication, who-am-I) and of the deployer. */
const ReposLive = Layer.mergeAll(
  ApiKeyRepo.Default,
  TeamRepo.Default,
  UserRepo.Default,
  ServiceRepo.Default,
  DeploymentRepo.Default,
  DeploymentEventRepo.Default,
  TopologyRepo.Default,
  ServiceDomainRepo.Default
)

/**
 * On the mock runtime containers are simulated and nothing listens on their published ports, so
 * the health gate's network probe is replaced by "the simulated container answers".
 */
const DeployerLayer = Layer.unwrapEffect(
  Effect.map(RuntimeSelection.RuntimeInfo, (info) =>
    DeployerLive.layerAll(info.mode === "mock" ? { settings: { probe: () => Effect.succeed(true) } } : {})
  )
)

/** Everything but HTTP: what the server, the REPL and the CLI's local mode share. */
export const CoreLive = Layer.mergeAll(
  DeployerLayer,
  RateLimit.layer,
  PrincipalCache.Default,
  Auth.BootstrapLive,
  // After a crash: proxies re-routed, unfinished deploys resumed or compensated (reconcile, not remember).
  Reconciler.layer(),
  WebhookDispatcher.layer,
  KeySessions.Default,
  // Routes follow containers: engine events, the engine coming back, a periodic pass.
  EdgeRoutes.layer(),
  UploadPolicy.Default,
  // Replica counts follow utilisation targets (issue 10); the Deployer layer is the one above (memoized).
  Autoscaler.layer.pipe(Layer.provide(DeployerLayer))
).pipe(
  Layer.provideMerge(Layer.mergeAll(ImageBuilder.Default, EdgeSelection.layer)),
  Layer.provideMerge(ContainerManagerLayer.layer),
  Layer.provideMerge(Workers.layer),
  Layer.provideMerge(DurableEngine.layerFromDatabase()),
  Layer.provideMerge(RuntimeSelection.layer),
  Layer.provideMerge(ReposLive),
  Layer.provideMerge(Database.layer),
  Layer.provideMerge(KyozoConfig.Default)
)

/** The typed RPC API at /rpc: handlers, then the auth middleware, provided one after the other. */
export const RpcLive = RpcServer.layerHttpRouter({ group: KyozoRpc, path: "/rpc", protocol: "http" }).pipe(
  Layer.provide(RpcHandlers.layer),
  Layer.provide(Auth.AuthLive),
  Layer.provide(RpcSerialization.layerNdjson)
)

export const RoutesLive = Layer.mergeAll(
  StatusRoutes.layer,
  MetricsRoutes.layer,
  RpcLive,
  UploadRoutes.layer,
  EventsRoutes.layer,
  RestApi.layer,
  Sessions.layer,
  DashboardRoutes.layer,
  GraphqlRoutes.layer
)

export const HttpLive = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* KyozoConfig
    // How long requests in flight may finish after SIGTERM (GracefulServer).
    const graceMs = config.shutdownGraceMs
    // Cached answers of hot reads skip the HTTP stack (http/HotRoutes), unless spans are exported.
    const tracing = Option.isSome(Tracing.tracesUrl(Option.fromNullable(config.otelEndpoint)))
    const hot = tracing ? undefined : yield* HotRoutes.make
    return HttpLayerRouter.serve(RoutesLive, { disableLogger: true }).pipe(
      // Without an exporter a request's span goes nowhere: not creating it saves every request's work.
      tracing ? identity : HttpMiddleware.withTracerDisabledWhen(() => true),
      Layer.provide(
        NodeHttpServer.layer(GracefulServer.make({ graceMs, ...(hot ? { hot } : {}) }), {
          host: config.host,
          port: config.port
        })
      )
    )
  })
).pipe(Layer.provide(Services.Default))

// Tracing sits under everything, so the workers' spans and the HTTP requests' spans are exported alike.
export const ServerLive = HttpLive.pipe(Layer.provide(CoreLive), Layer.provide(Tracing.layer))

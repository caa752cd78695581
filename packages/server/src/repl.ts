/**
 * `pnpm repl`: a Node REPL with the application's layers built once, like `iex -S mix`.
 *
 *   await run(ContainerManager.circuitBreakerStatus)
 *   await run(ContainerManager.listContainers)
 *   await run(ContainerManager.runPass("health"))
 *
 * The application services are bound too, run as a key's holder (the same rules as every front
 * door: the key's team, role and grants):
 *
 *   await runAs(ownerToken, Effect.flatMap(Services, (s) => s.views))
 */
import * as repl from "node:repl"

import * as Credentials from "@kyozo/api/Credentials"
import { CurrentPrincipal } from "@kyozo/api/KyozoRpc"
import * as ContainerRuntime from "@kyozo/core/engine/ContainerRuntime"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import * as Core from "@kyozo/core/supervision/ContainerManager"
import { Effect, Layer, ManagedRuntime, Option } from "effect"

import { CoreLive } from "./Application.js"
import { Alerts } from "./application/Alerts.js"
import { ApiKeys } from "./application/ApiKeys.js"
import * as ApplicationLive from "./application/ApplicationLive.js"
import { Deployments } from "./application/Deployments.js"
import { Detections } from "./application/Detections.js"
import { Insights } from "./application/Insights.js"
import { Members } from "./application/Members.js"
import { Permissions } from "./application/Permissions.js"
import { RuntimeStatus } from "./application/RuntimeStatus.js"
import { Services } from "./application/Services.js"
import { Teams } from "./application/Teams.js"
import { Webhooks } from "./application/Webhooks.js"
import { makeAuthenticate } from "./Auth.js"

const runtime = ManagedRuntime.make(ApplicationLive.layer.pipe(Layer.provideMerge(CoreLive)))
type Context = ManagedRuntime.ManagedRuntime.Context<typeof runtime>
const run = <A, E>(effect: Effect.Effect<A, E, Context>) => runtime.runPromise(effect)

/** Runs `effect` as the holder of `token` (an API key), authenticated like a request. */
const runAs = <A, E>(token: string, effect: Effect.Effect<A, E, Context | CurrentPrincipal>) =>
  run(
    Effect.gen(function* () {
      const authenticate = yield* makeAuthenticate
      const principal = yield* authenticate(`Bearer ${token}`)
      return yield* Effect.provideService(effect, CurrentPrincipal, principal)
    })
  )

await runtime.runPromise(Effect.void)
const manager = await run(Core.ContainerManager)
const config = await run(KyozoConfig)
// The bootstrap owner's key, when this data dir holds it (the server writes it on first start).
const ownerToken = await run(
  Credentials.read(config.dataDir).pipe(
    Effect.map(Option.match({ onNone: () => undefined, onSome: (c) => c.token })),
    Effect.orElseSucceed(() => undefined)
  )
)
console.log(`Kyozo REPL — runtime: ${manager.runtimeMode} (${manager.runtimeReason})`)
console.log(
  "Bound: run, runAs, ownerToken, Effect, ContainerManager, ContainerRuntime, manager, and the application services" +
    " (Teams, Members, ApiKeys, Services, Deployments, Detections, Webhooks, Alerts, Permissions, Insights, RuntimeStatus)." +
    " Try: await run(ContainerManager.circuitBreakerStatus)"
)

const server = repl.start({ prompt: "kyozo> " })
Object.assign(server.context, {
  run,
  runAs,
  ownerToken,
  Effect,
  ContainerManager: Core.ContainerManager,
  ContainerRuntime: ContainerRuntime.ContainerRuntime,
  manager,
  Teams,
  Members,
  ApiKeys,
  Services,
  Deployments,
  Detections,
  Webhooks,
  Alerts,
  Permissions,
  Insights,
  RuntimeStatus
})
server.on("exit", () => {
  void runtime.dispose().then(() => process.exit(0))
})

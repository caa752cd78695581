/**
 * `pnpm repl`: a Node REPL with the application's layers built once, like `iex -S mix`.
 *
 *   await run(ContainerManager.circuitBreakerStatus)
 *   await run(ContainerManager.listContainers)
 *   await run(ContainerManager.runPass("health"))
 */
import * as Core from "@kyozo/core/ContainerManager"
import * as ContainerRuntime from "@kyozo/core/ContainerRuntime"
import { Effect, ManagedRuntime } from "effect"
import * as repl from "node:repl"
import { CoreLive } from "./Application.js"

const runtime = ManagedRuntime.make(CoreLive)
const run = <A, E>(effect: Effect.Effect<A, E, ManagedRuntime.ManagedRuntime.Context<typeof runtime>>) =>
  runtime.runPromise(effect)

await runtime.runPromise(Effect.void)
const manager = await run(Core.ContainerManager)
console.log(`Kyozo REPL — runtime: ${manager.runtimeMode} (${manager.runtimeReason})`)
console.log(
  "Bound: run, Effect, ContainerManager, ContainerRuntime, manager. Try: await run(ContainerManager.circuitBreakerStatus)"
)

const server = repl.start({ prompt: "kyozo> " })
Object.assign(server.context, {
  run,
  Effect,
  ContainerManager: Core.ContainerManager,
  ContainerRuntime: ContainerRuntime.ContainerRuntime,
  manager
})
server.on("exit", () => {
  void runtime.dispose().then(() => process.exit(0))
})

/** `pnpm start`: Kyozo's server on its configured (or embedded default) database and engine. */
import { NodeRuntime } from "@effect/platform-node"
import { Layer } from "effect"
import { ServerLive } from "./Application.js"

NodeRuntime.runMain(Layer.launch(ServerLive))

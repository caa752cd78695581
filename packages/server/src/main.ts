/** `pnpm start`: Kyozo's server on its configured (or embedded default) database and engine. */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Layer } from "effect"

import { ServerLive } from "./Application.js"

NodeRuntime.runMain(Layer.launch(ServerLive))

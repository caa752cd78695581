/** `kyozo server`: runs the Kyozo server in this process (same as `pnpm start`). */
import * as Command from "@effect/cli/Command"
import { Effect, Layer } from "effect"

export const serverCommand = Command.make("server", {}, () =>
  // Imported on use: the server's layers (database, cluster, Docker) would slow every other command.
  Effect.flatMap(
    Effect.promise(() => import("@kyozo/server/Application")),
    (app) => Layer.launch(app.ServerLive)
  )
).pipe(Command.withDescription("Run the Kyozo server in this process"))

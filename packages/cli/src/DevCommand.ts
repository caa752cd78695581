/** `kyozo dev <folder> [--name N] [--json]`: deploy, then redeploy as the folder changes (DevLoop.ts). */
import * as Command from "@effect/cli/Command"
import { Effect, Option } from "effect"

import { ClientLive } from "./Connection.js"
import { folder, name } from "./DeployCommand.js"
import { resolveFolder } from "./Folder.js"
import { json } from "./Output.js"

export const devCommand = Command.make("dev", { folder, name, json }, (args) =>
  Effect.flatMap(
    Effect.promise(() => import("./DevLoop.js")),
    (dev) =>
      dev.devLoop(resolveFolder(args.folder), { name: Option.getOrUndefined(args.name), json: args.json })
  ).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Deploy a folder, then redeploy what changes as you save (Ctrl-C stops)"))

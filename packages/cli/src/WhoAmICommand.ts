/** `kyozo whoami [--json]`: which user, team and role the configured key stands for. */
import * as Command from "@effect/cli/Command"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Console, Effect } from "effect"

import { ClientLive, Connection } from "./Connection.js"
import { json, printJson } from "./Output.js"

export const whoamiCommand = Command.make("whoami", { json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const { url } = yield* Connection
    const me = yield* client.WhoAmI()
    yield* args.json
      ? printJson({ ...me, url })
      : Console.log(
          `${me.email} — ${me.role} of team ${me.teamName} (${me.teamId})${me.instanceAdmin ? ", instance admin" : ""} at ${url}`
        )
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Show who the configured API key belongs to"))

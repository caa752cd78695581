/** `kyozo ps [--json]`: the team's services. `--json` prints a JSON array of ServiceView. */
import * as Command from "@effect/cli/Command"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Console, Effect } from "effect"
import { ClientLive } from "./Connection.js"
import { json, printJson, serviceTable } from "./Output.js"

export const psCommand = Command.make("ps", { json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const services = yield* client.ListServices()
    yield* args.json ? printJson(services) : Console.log(serviceTable(services))
    if (!args.json && services.some((s) => s.edge === "inprocess"))
      yield* Console.log(
        "edge: in-process fallback (no Caddy): these URLs stop answering while Kyozo is down."
      )
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("List the services of your team"))

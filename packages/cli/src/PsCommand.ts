/**
 * `kyozo ps [--json]`: the team's services, with the server's runtime (mock services are
 * simulated). `--json` prints a JSON array of ServiceView, each with `runtime` added.
 */
import * as Command from "@effect/cli/Command"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Console, Effect } from "effect"

import { ClientLive, Connection } from "./Connection.js"
import { json, printJson, serviceTable } from "./Output.js"

export const psCommand = Command.make("ps", { json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const { runtime } = yield* Connection
    const services = yield* client.ListServices()
    yield* args.json
      ? printJson(services.map((s) => ({ ...s, runtime: runtime ?? null })))
      : Console.log(serviceTable(services, runtime))
    if (!args.json && services.some((s) => s.edge === "inprocess"))
      yield* Console.log(
        "edge: in-process fallback (no Caddy): these URLs stop answering while Kyozo is down."
      )
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("List the services of your team"))

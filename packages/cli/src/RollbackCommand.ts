/** `kyozo rollback <service> [--to DEPLOYMENT|IMAGE] [--json]`: back to the previous (or a given) version. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Console, Effect, Option } from "effect"

import { ClientLive } from "./Connection.js"
import { json, printJson } from "./Output.js"
import { service } from "./ServiceCommand.js"

const to = Options.text("to").pipe(
  Options.withDescription("a deployment id or image of this service (default: the previous one)"),
  Options.optional
)

export const rollbackCommand = Command.make("rollback", { service, to, json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const summary = yield* client.Rollback({ service: args.service, to: Option.getOrUndefined(args.to) })
    yield* args.json
      ? printJson(summary)
      : Console.log(
          `rolled back ${summary.serviceName} to ${summary.image ?? "?"} (${summary.deploymentId})${summary.url ? `: ${summary.url}` : ""}`
        )
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Roll a service back"))

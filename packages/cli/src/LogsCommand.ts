/** `kyozo logs <service> [-f] [--tail N] [--json]`: a service's output; NDJSON with --json. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Console, Effect, Stream } from "effect"

import { ClientLive } from "./Connection.js"
import { json, logLine, printNdjson } from "./Output.js"
import { service } from "./ServiceCommand.js"

const follow = Options.boolean("follow").pipe(
  Options.withAlias("f"),
  Options.withDescription("keep following")
)
const tail = Options.integer("tail").pipe(
  Options.withDescription("lines from the end"),
  Options.withDefault(100)
)

export const logsCommand = Command.make("logs", { service, follow, tail, json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    yield* client
      .Logs({ service: args.service, follow: args.follow, tail: args.tail })
      .pipe(Stream.runForEach((l) => (args.json ? printNdjson(l) : Console.log(logLine(l)))))
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Show a service's logs"))

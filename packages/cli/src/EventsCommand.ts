/** `kyozo events [-f] [--after ID] [--service S] [--json]`: the team's deployment events; NDJSON with --json. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Console, Effect, Option, Stream } from "effect"

import { ClientLive } from "./Connection.js"
import { eventLine, json, printNdjson } from "./Output.js"

const follow = Options.boolean("follow").pipe(
  Options.withAlias("f"),
  Options.withDescription("keep following")
)
const after = Options.integer("after").pipe(
  Options.withDescription("only events after this id"),
  Options.optional
)
const service = Options.text("service").pipe(Options.withDescription("only this service"), Options.optional)

export const eventsCommand = Command.make("events", { follow, after, service, json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    yield* client
      .Events({
        follow: args.follow,
        afterId: Option.getOrUndefined(args.after),
        service: Option.getOrUndefined(args.service)
      })
      .pipe(Stream.runForEach((e) => (args.json ? printNdjson(e) : Console.log(eventLine(e)))))
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Show deployment events"))

/** `kyozo scale <service> <n> [--json]`: runs n replicas of the service behind its URL (quotas count them). */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Console, Effect } from "effect"
import { ClientLive } from "./Connection.js"
import { json, printJson, serviceLine } from "./Output.js"

const service = Args.text({ name: "service" }).pipe(Args.withDescription("service name or id"))
const replicas = Args.integer({ name: "replicas" }).pipe(Args.withDescription("number of replicas, 1 to 20"))

export const scaleCommand = Command.make("scale", { service, replicas, json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const view = yield* client.ScaleService({ service: args.service, replicas: args.replicas })
    yield* args.json
      ? printJson(view)
      : Console.log(`${serviceLine(view)}  ×${view.replicas ?? args.replicas}`)
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Set how many replicas of a service run behind its URL"))

/** `kyozo stop|start|restart|rm <service> [--json]`: operate one service, by name or id. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Console, Effect } from "effect"
import { ClientLive } from "./Connection.js"
import { json, printJson, serviceLine } from "./Output.js"

export const service = Args.text({ name: "service" }).pipe(Args.withDescription("service name or id"))

const operation = (
  name: "stop" | "start" | "restart",
  description: string,
  call: (client: KyozoClient["Type"], service: string) => ReturnType<KyozoClient["Type"]["StopService"]>
) =>
  Command.make(name, { service, json }, (args) =>
    Effect.gen(function* () {
      const client = yield* KyozoClient
      const view = yield* call(client, args.service)
      yield* args.json ? printJson(view) : Console.log(serviceLine(view))
    }).pipe(Effect.provide(ClientLive))
  ).pipe(Command.withDescription(description))

export const stopCommand = operation("stop", "Stop a service (it stays stopped)", (c, s) =>
  c.StopService({ service: s })
)
export const startCommand = operation("start", "Start a stopped service", (c, s) =>
  c.StartService({ service: s })
)
export const restartCommand = operation("restart", "Restart a service", (c, s) =>
  c.RestartService({ service: s })
)

export const rmCommand = Command.make("rm", { service, json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    yield* client.RemoveService({ service: args.service })
    yield* args.json ? printJson({ removed: args.service }) : Console.log(`removed ${args.service}`)
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Remove a service and its containers"))

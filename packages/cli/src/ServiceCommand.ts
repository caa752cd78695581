/** `kyozo stop|start|restart|rm <service> [--json]`: operate one service, by name or id. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
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

const volumes = Options.boolean("volumes").pipe(
  Options.withDescription("also remove the service's data volumes (kept by default)")
)

export const rmCommand = Command.make("rm", { service, json, volumes }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const result = yield* client.RemoveService({ service: args.service, volumes: args.volumes })
    if (args.json) return yield* printJson({ removed: args.service, volumes: result })
    yield* Console.log(`removed ${args.service}`)
    if (result.removed.length > 0) yield* Console.log(`removed volumes: ${result.removed.join(", ")}`)
    if (result.kept.length > 0)
      yield* Console.log(
        `kept volumes: ${result.kept.join(", ")}${args.volumes ? " (still in use)" : " (kyozo rm --volumes removes them)"}`
      )
  }).pipe(Effect.provide(ClientLive))
).pipe(
  Command.withDescription("Remove a service and its containers (its data volumes stay unless --volumes)")
)

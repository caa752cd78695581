/**
 * `kyozo scale <service> [n] [--min a --max b --cpu p | --memory p] [--window s] [--off] [--json]`:
 * runs n replicas of the service behind its URL (quotas count them), or lets the autoscaler move
 * the count between min and max on a utilisation target (HPA-like; `--off` fixes it again).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Console, Effect, Option } from "effect"

import { ClientLive } from "./Connection.js"
import { json, printJson, serviceLine } from "./Output.js"

const service = Args.text({ name: "service" }).pipe(Args.withDescription("service name or id"))
const replicas = Args.integer({ name: "replicas" }).pipe(
  Args.withDescription("number of replicas, 1 to 20 (omit with --min/--max)"),
  Args.optional
)
const int = (name: string, description: string) =>
  Options.integer(name).pipe(Options.withDescription(description), Options.optional)
const min = int("min", "autoscale: fewest replicas")
const max = int("max", "autoscale: most replicas")
const cpu = int("cpu", "autoscale: target CPU use per replica, in % of its CPU limit")
const memory = int("memory", "autoscale: target memory use per replica, in % of its memory limit")
const window = int("window", "autoscale: scale-in stabilisation window in seconds (default 300)")
const off = Options.boolean("off").pipe(
  Options.withDescription("turn autoscaling off (keeps the current count)")
)

/** A usage error (exit 2) prints itself: main.ts leaves those to the command. */
const usage = (text: string) =>
  Effect.zipRight(
    Effect.sync(() => process.stderr.write(`kyozo scale: ${text}\n`)),
    Effect.fail(ValidationError.invalidValue(HelpDoc.p(text)))
  )

export const scaleCommand = Command.make(
  "scale",
  { service, replicas, min, max, cpu, memory, window, off, json },
  (args) =>
    Effect.gen(function* () {
      const client = yield* KyozoClient
      const autoscaling = [args.min, args.max, args.cpu, args.memory, args.window].some(Option.isSome)
      if (autoscaling || args.off) {
        if (Option.isSome(args.replicas))
          return yield* usage("give either a replica count or --min/--max, not both")
        let autoscale = null as null | {
          minReplicas: number
          maxReplicas: number
          targetCpuPercent?: number
          targetMemoryPercent?: number
          stabilizationSeconds?: number
        }
        if (!args.off) {
          if (Option.isNone(args.min) || Option.isNone(args.max))
            return yield* usage("autoscaling needs --min and --max")
          if (Option.isNone(args.cpu) && Option.isNone(args.memory))
            return yield* usage("autoscaling needs a target: --cpu or --memory (percent of the limit)")
          autoscale = {
            minReplicas: args.min.value,
            maxReplicas: args.max.value,
            ...Option.match(args.cpu, { onNone: () => ({}), onSome: (v) => ({ targetCpuPercent: v }) }),
            ...Option.match(args.memory, { onNone: () => ({}), onSome: (v) => ({ targetMemoryPercent: v }) }),
            ...Option.match(args.window, { onNone: () => ({}), onSome: (v) => ({ stabilizationSeconds: v }) })
          }
        }
        const updated = yield* client.UpdateService({ service: args.service, autoscale })
        const view = updated.service
        if (args.json) return yield* printJson({ ...view, autoscale })
        return yield* Console.log(
          autoscale === null
            ? `${serviceLine(view)}  ×${view.replicas ?? "?"} (autoscaling off)`
            : `${serviceLine(view)}  ×${view.replicas ?? "?"} (autoscaling ${autoscale.minReplicas}–${autoscale.maxReplicas}` +
                `${autoscale.targetCpuPercent === undefined ? "" : `, CPU ${autoscale.targetCpuPercent} %`}` +
                `${autoscale.targetMemoryPercent === undefined ? "" : `, memory ${autoscale.targetMemoryPercent} %`})`
        )
      }
      if (Option.isNone(args.replicas))
        return yield* usage("give a replica count, or --min/--max with --cpu/--memory")
      const view = yield* client.ScaleService({ service: args.service, replicas: args.replicas.value })
      yield* args.json
        ? printJson(view)
        : Console.log(`${serviceLine(view)}  ×${view.replicas ?? args.replicas.value}`)
    }).pipe(Effect.provide(ClientLive))
).pipe(
  Command.withDescription(
    "Set how many replicas of a service run behind its URL, or autoscale them (--min --max --cpu|--memory)"
  )
)

/**
 * `kyozo env set KEY=VALUE… <service>`, `kyozo env unset KEY… <service>`, `kyozo env ls <service>`:
 * a service's env. A change rolls out to what runs (its current image, behind the health gate);
 * `--wait` follows that rollout to its end. `ls` shows names only: values may be secrets.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import type { ServiceUpdateView } from "@kyozo/api/KyozoRpc"
import { Console, Data, Effect, Stream } from "effect"

import { ClientLive } from "./Connection.js"
import { json, printJson, serviceLine } from "./Output.js"
import { service } from "./ServiceCommand.js"

/** The rollout of new settings did not pass the health gate: the previous containers keep serving. */
export class RolloutFailed extends Data.TaggedError("RolloutFailed")<{
  readonly service: string
  readonly deploymentId: string
  readonly reason: string
}> {
  override get message() {
    return `The new settings of ${this.service} did not roll out (${this.deploymentId}): ${this.reason}. The previous containers keep serving; see \`kyozo logs ${this.service}\` and \`kyozo events --service ${this.service}\`.`
  }
}

const wait = Options.boolean("wait").pipe(
  Options.withDescription("wait until the new settings serve (or the rollout failed)")
)

const KEY = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/

const usage = (text: string) => Effect.fail(ValidationError.invalidArgument(HelpDoc.p(text)))

/** `KEY… SERVICE`: the last word is the service (variadic arguments cannot come before a fixed one). */
const splitLast = (words: ReadonlyArray<string>) => ({
  items: words.slice(0, -1),
  service: words[words.length - 1]!
})

/** Follows the service's events until the deployment ends. */
const awaitRollout = (serviceName: string, deploymentId: string) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const end = yield* client.Events({ service: serviceName, follow: true }).pipe(
      Stream.filter(
        (e) =>
          e.deploymentId === deploymentId &&
          (e.type === "deploy.succeeded" || e.type === "deploy.unchanged" || e.type === "deploy.failed")
      ),
      Stream.take(1),
      Stream.runHead
    )
    if (end._tag === "Some" && end.value.type === "deploy.failed")
      return yield* new RolloutFailed({ service: serviceName, deploymentId, reason: end.value.message })
  })

const report = (view: ServiceUpdateView, args: { readonly json: boolean; readonly wait: boolean }) =>
  Effect.gen(function* () {
    const rollout = view.rolloutDeploymentId
    if (rollout !== null && args.wait) yield* awaitRollout(view.service.name, rollout)
    if (args.json) return yield* printJson(view)
    yield* Console.log(serviceLine(view.service))
    yield* Console.log(
      rollout === null
        ? "nothing to roll out: the settings are saved for the next deploy or start"
        : args.wait
          ? `rolled out (${rollout})`
          : `rolling out (${rollout}): follow with \`kyozo events --service ${view.service.name}\``
    )
  })

const pairs = Args.text({ name: "KEY=VALUE… SERVICE" }).pipe(Args.atLeast(2))
const keys = Args.text({ name: "KEY… SERVICE" }).pipe(Args.atLeast(2))

const setCommand = Command.make("set", { words: pairs, json, wait }, (args) =>
  Effect.gen(function* () {
    const { items, service } = splitLast(args.words)
    const envSet: Record<string, string> = {}
    for (const item of items) {
      const eq = item.indexOf("=")
      const key = eq < 0 ? item : item.slice(0, eq)
      if (eq < 0 || !KEY.test(key))
        return yield* usage(
          `${item}: expected KEY=VALUE with KEY of letters, digits and _ (not first a digit)`
        )
      envSet[key] = item.slice(eq + 1)
    }
    const client = yield* KyozoClient
    yield* report(yield* client.UpdateService({ service, envSet }), args)
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Set env variables of a service and roll them out"))

const unsetCommand = Command.make("unset", { words: keys, json, wait }, (args) =>
  Effect.gen(function* () {
    const { items, service } = splitLast(args.words)
    for (const key of items) if (!KEY.test(key)) return yield* usage(`${key}: not an env variable name`)
    const client = yield* KyozoClient
    yield* report(yield* client.UpdateService({ service, envUnset: items }), args)
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Remove env variables of a service and roll that out"))

const lsCommand = Command.make("ls", { service, json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const names = yield* client.ServiceEnvKeys({ service: args.service })
    yield* args.json ? printJson(names) : Effect.forEach(names, (n) => Console.log(n), { discard: true })
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("List the names of a service's env variables (never their values)"))

export const envCommand = Command.make("env").pipe(
  Command.withDescription("A service's env variables: set, unset, ls"),
  Command.withSubcommands([setCommand, unsetCommand, lsCommand])
)

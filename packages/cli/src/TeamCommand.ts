/**
 * `kyozo team quota [<team id>] [--services N] [--cpu-millis N] [--memory-mb N] [--json]`: an
 * instance admin changes a team's quotas (the caller's own team when no id is given); without
 * options it shows them unchanged.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Console, Effect, Option } from "effect"

import { ClientLive } from "./Connection.js"
import { json, printJson } from "./Output.js"

const teamId = Args.text({ name: "team" }).pipe(
  Args.withDescription("the team's id (default: your own team)"),
  Args.optional
)
const services = Options.integer("services").pipe(
  Options.withDescription("at most this many services"),
  Options.optional
)
const cpuMillis = Options.integer("cpu-millis").pipe(
  Options.withDescription("at most this many millicores in all"),
  Options.optional
)
const memoryMb = Options.integer("memory-mb").pipe(
  Options.withDescription("at most this many megabytes of memory in all"),
  Options.optional
)

const quotaCommand = Command.make("quota", { teamId, services, cpuMillis, memoryMb, json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const id = Option.isSome(args.teamId) ? args.teamId.value : (yield* client.WhoAmI()).teamId
    const team = yield* client.SetTeamQuotas({
      teamId: id,
      ...Option.match(args.services, { onNone: () => ({}), onSome: (n) => ({ quotaServices: n }) }),
      ...Option.match(args.cpuMillis, { onNone: () => ({}), onSome: (n) => ({ quotaCpuMillis: n }) }),
      ...Option.match(args.memoryMb, { onNone: () => ({}), onSome: (n) => ({ quotaMemoryMb: n }) })
    })
    yield* args.json
      ? printJson(team)
      : Console.log(
          `team ${team.name} (${team.id}): ${team.quotaServices} services, ${team.quotaCpuMillis} millicores, ${team.quotaMemoryMb} MB`
        )
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Show or change a team's quotas (instance admins)"))

export const teamCommand = Command.make("team").pipe(
  Command.withDescription("Teams"),
  Command.withSubcommands([quotaCommand])
)

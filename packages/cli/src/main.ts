/**
 * The `kyozo` command line. Exit codes: 0 success, 1 the command failed (missing folder, bad
 * configuration, no server, a typed error from the server), 2 usage errors. Commands that talk to
 * a server find it through `KYOZO_URL`/`KYOZO_TOKEN` or `<KYOZO_DATA_DIR>/credentials.json`.
 */
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Cause, Effect, Exit, Option } from "effect"

import { deployCommand } from "./DeployCommand.js"
import { detectCommand } from "./DetectCommand.js"
import { devCommand } from "./DevCommand.js"
import { domainsCommand } from "./DomainsCommand.js"
import { edgeCommand } from "./EdgeCommand.js"
import { envCommand } from "./EnvCommand.js"
import { describeError } from "./Errors.js"
import { eventsCommand } from "./EventsCommand.js"
import { initCommand } from "./InitCommand.js"
import { loginCommand, serversCommand, useCommand } from "./LoginCommand.js"
import { logsCommand } from "./LogsCommand.js"
import { psCommand } from "./PsCommand.js"
import { rollbackCommand } from "./RollbackCommand.js"
import { scaleCommand } from "./ScaleCommand.js"
import { serverCommand } from "./ServerCommand.js"
import { restartCommand, rmCommand, startCommand, stopCommand } from "./ServiceCommand.js"
import { teamCommand } from "./TeamCommand.js"
import { whoamiCommand } from "./WhoAmICommand.js"

const kyozo = Command.make("kyozo").pipe(
  Command.withDescription("Kyozo: folder as a service"),
  Command.withSubcommands([
    detectCommand,
    deployCommand,
    psCommand,
    logsCommand,
    stopCommand,
    startCommand,
    restartCommand,
    rmCommand,
    rollbackCommand,
    eventsCommand,
    whoamiCommand,
    serverCommand,
    teamCommand,
    devCommand,
    initCommand,
    loginCommand,
    serversCommand,
    useCommand,
    edgeCommand,
    scaleCommand,
    envCommand,
    domainsCommand
  ])
)

const cli = Command.run(kyozo, { name: "kyozo", version: "0.1.0" })

Effect.runPromiseExit(cli(process.argv).pipe(Effect.provide(NodeContext.layer))).then((exit) => {
  if (Exit.isSuccess(exit)) return
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) {
    // @effect/cli has already printed what was wrong with the arguments.
    process.exitCode = 2
    return
  }
  const err = Option.isSome(failure) ? failure.value : Cause.squash(exit.cause)
  const { headline, detail } = describeError(err)
  process.stderr.write(`kyozo: ${headline}\n${detail.map((d) => `  ${d}\n`).join("")}`)
  process.exitCode = 1
})

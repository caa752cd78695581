/**
 * The `kyozo` command line. Exit codes: 0 success, 1 the command failed (missing folder, bad
 * configuration), 2 usage errors.
 */
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Cause, Effect, Exit, Option } from "effect"
import { detectCommand } from "./DetectCommand.js"

const kyozo = Command.make("kyozo").pipe(
  Command.withDescription("Kyozo: folder as a service"),
  Command.withSubcommands([detectCommand])
)

const cli = Command.run(kyozo, { name: "kyozo", version: "0.1.0" })

const messageOf = (e: unknown): string =>
  typeof e === "object" &&
  e !== null &&
  "message" in e &&
  typeof (e as { message: unknown }).message === "string"
    ? (e as { message: string }).message
    : String(e)

Effect.runPromiseExit(cli(process.argv).pipe(Effect.provide(NodeContext.layer))).then((exit) => {
  if (Exit.isSuccess(exit)) return
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) {
    // @effect/cli has already printed what was wrong with the arguments.
    process.exitCode = 2
    return
  }
  const err = Option.isSome(failure) ? failure.value : Cause.squash(exit.cause)
  process.stderr.write(`kyozo: ${messageOf(err)}\n`)
  process.exitCode = 1
})

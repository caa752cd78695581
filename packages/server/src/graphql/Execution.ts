/**
 * How a GraphQL resolver runs an application call: as an Effect, with the request's principal
 * provided, on the server's runtime. Typed failures become GraphQL errors with a stable
 * `extensions.code` (and texts that never echo an id or a name); a defect is logged with its
 * cause and reaches the client only as yoga's masked "Unexpected error.".
 */
import { CurrentPrincipal, type Principal } from "@kyozo/api/KyozoRpc"
import { Cause, Effect, Exit, Option, Runtime } from "effect"
import { GraphQLError } from "graphql"

/** Runs an application effect for the current request; rejects with a GraphQLError on a typed failure. */
export type Run<R> = <A, E>(effect: Effect.Effect<A, E, R | CurrentPrincipal>) => Promise<A>

/** The typed failure's tag, when it has one. */
const tagOf = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "_tag" in e && typeof e._tag === "string" ? e._tag : undefined

const messageOf = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "message" in e && typeof e.message === "string" && e.message !== ""
    ? e.message
    : undefined

/** A typed domain failure as a GraphQL error; unknown ids are named by kind only. */
export const toGraphQLError = (e: unknown): GraphQLError => {
  const tag = tagOf(e) ?? "Error"
  if (tag.endsWith("NotFound")) {
    const what = tag
      .slice(0, -"NotFound".length)
      .replace(/([a-z])([A-Z])/g, "$1 $2")
      .toLowerCase()
    return new GraphQLError(`No such ${what || "object"} in your team.`, {
      extensions: { code: "NOT_FOUND" }
    })
  }
  switch (tag) {
    case "Forbidden":
      return new GraphQLError(messageOf(e) ?? "Forbidden.", { extensions: { code: "FORBIDDEN" } })
    case "InvalidCursor":
      return new GraphQLError("`after` is not a cursor of this list: pass an id the list returned.", {
        extensions: { code: "BAD_USER_INPUT", argumentName: "after" }
      })
    default:
      return new GraphQLError(messageOf(e) ?? tag, { extensions: { code: tag } })
  }
}

/** A bad argument: the client's mistake, said plainly. */
export const badInput = (argumentName: string, message: string): GraphQLError =>
  new GraphQLError(message, { extensions: { code: "BAD_USER_INPUT", argumentName } })

/** A runner for one request of `principal`. */
export const makeRun =
  <R>(runtime: Runtime.Runtime<R>, principal: Principal): Run<R> =>
  (effect) =>
    Runtime.runPromiseExit(runtime)(Effect.provideService(effect, CurrentPrincipal, principal)).then(
      (exit) => {
        if (Exit.isSuccess(exit)) return exit.value
        const failure = Cause.failureOption(exit.cause)
        if (Option.isSome(failure)) throw toGraphQLError(failure.value)
        // A defect: not the caller's fault, and nothing of it is shown to them (yoga masks it).
        Runtime.runFork(runtime)(Effect.logError("GraphQL resolver failed", exit.cause))
        throw new Error("GraphQL resolver defect")
      }
    )

/** RPC calls in tests through the typed client, as a user's program makes them. */
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Effect, Either } from "effect"

/** One call as `token` on the server at `url`: its outcome, never a thrown error. */
export const rpcAt = <A, E>(
  url: string,
  token: string,
  f: (client: KyozoClient["Type"]) => Effect.Effect<A, E>
): Promise<Either.Either<A, E>> =>
  Effect.runPromise(
    Effect.flatMap(KyozoClient, f).pipe(Effect.either, Effect.provide(KyozoClient.layer({ url, token })))
  )

/** The `_tag` of a failed call, or "ok". */
export const tagOf = (e: Either.Either<unknown, unknown>): string =>
  Either.isLeft(e) ? (e.left as { _tag: string })._tag : "ok"

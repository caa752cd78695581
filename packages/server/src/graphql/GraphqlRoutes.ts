/**
 * `POST /graphql` (and `GET /graphql?query=…`), GraphQL over HTTP served by graphql-http (the
 * reference implementation of the spec) inside the Effect router, so it shares the port, the global
 * middleware (the dashboard's session cookie, with its CSRF check on POST) and the bearer
 * authentication with its rate limit (`Auth.makeAuthenticate`) with every other front door.
 * `GET /graphql/schema.graphql` publishes the schema as SDL text.
 *
 * Limits, checked before anything runs: depth (graphql-armor max-depth), cost (graphql-armor
 * cost-limit), aliases (graphql-armor max-aliases), body size; each refusal is a GraphQL error
 * whose message names the limit. Errors that are not the application's typed failures are masked
 * ("Unexpected error."); Execution logs them with their cause.
 *
 * graphql, graphql-http, the armor rules and the executable schema load on the first GraphQL
 * request (GraphqlHandler), not at start: an idle server that is never asked keeps their memory.
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type { Principal } from "@kyozo/api/KyozoRpc"
import { Effect, Layer, Option } from "effect"

import * as ApplicationLive from "../application/ApplicationLive.js"
import { makeAuthenticate } from "../Auth.js"
import type { AppServices } from "./Resolvers.js"

/** The deepest selection a query may nest (a real query of this schema needs 4 or 5). */
export const MAX_DEPTH = 6
/**
 * graphql-armor's cost: objects 2, scalars 1, ×1.5 per level, × a literal `first` (a default or a
 * variable counts once; the page cap of 100 bounds those). 100 services with 20 fields cost ~3,200.
 */
export const MAX_COST = 5_000
/**
 * Aliases let one document ask for the same list many times (the cost of a cheap list barely
 * grows with each copy, its SQL does): at most this many per operation.
 */
export const MAX_ALIASES = 20
/** The largest request body (a query document and its variables). */
export const MAX_BODY_BYTES = 256 * 1024

/** A GraphQL-shaped error answer for what is refused before GraphQL runs (auth, size). */
const refused = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson({ errors: [{ message, extensions: { code } }] }, { status, headers })

export const layer = Layer.unwrapEffect(
  Effect.gen(function* () {
    const authenticate = yield* makeAuthenticate
    const runtime = yield* Effect.runtime<AppServices>()
    // Loaded once, on first use (a failed import is a defect: the bundle is broken).
    const loaded = yield* Effect.cached(Effect.promise(() => import("./GraphqlHandler.js")))

    const execute = (request: HttpServerRequest.HttpServerRequest) =>
      Effect.gen(function* () {
        const principal: Principal = yield* authenticate(request.headers["authorization"])
        let body: string | undefined
        if (request.method === "POST") {
          const length = Number(request.headers["content-length"] ?? "NaN")
          const read =
            Number.isFinite(length) && length > MAX_BODY_BYTES
              ? Option.none()
              : Option.getRight(
                  yield* request.text.pipe(
                    HttpIncomingMessage.withMaxBodySize(Option.some(MAX_BODY_BYTES)),
                    Effect.either
                  )
                )
          if (Option.isNone(read))
            return refused(413, "PAYLOAD_TOO_LARGE", `The request body exceeds ${MAX_BODY_BYTES} bytes.`)
          body = read.value
        }
        const { handler } = yield* loaded
        const [text, init] = yield* Effect.promise(() =>
          handler({
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: body ?? null,
            raw: request,
            context: { runtime, principal }
          })
        )
        const { "content-type": contentType, ...headers } = init.headers ?? {}
        return HttpServerResponse.text(text ?? "", {
          status: init.status,
          contentType: contentType ?? "application/json; charset=utf-8",
          headers
        })
      }).pipe(
        Effect.catchTags({
          Unauthorized: (e) =>
            Effect.succeed(
              refused(401, "UNAUTHENTICATED", e.message, { "www-authenticate": 'Bearer realm="kyozo"' })
            ),
          RateLimited: (e) =>
            Effect.succeed(
              refused(429, "RATE_LIMITED", e.message, { "retry-after": String(e.retryAfterSeconds) })
            )
        })
      )

    const sdl = Effect.map(loaded, ({ schemaText }) =>
      HttpServerResponse.text(schemaText, { contentType: "application/graphql; charset=utf-8" })
    )

    return Layer.mergeAll(
      HttpLayerRouter.add("POST", "/graphql", execute),
      HttpLayerRouter.add("GET", "/graphql", execute),
      HttpLayerRouter.add("GET", "/graphql/schema.graphql", sdl)
    )
  })
).pipe(Layer.provide(ApplicationLive.layer))

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
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { costLimitRule } from "@escape.tech/graphql-armor-cost-limit"
import { maxAliasesRule } from "@escape.tech/graphql-armor-max-aliases"
import { maxDepthRule } from "@escape.tech/graphql-armor-max-depth"
import type { Principal } from "@kyozo/api/KyozoRpc"
import { Effect, Layer, Option } from "effect"
import { GraphQLError, type ValidationContext } from "graphql"
import { createHandler } from "graphql-http"

import * as ApplicationLive from "../application/ApplicationLive.js"
import { makeAuthenticate } from "../Auth.js"
import { makeRun, type Run } from "./Execution.js"
import * as Loaders from "./Loaders.js"
import type { AppServices, GraphqlContext } from "./Resolvers.js"
import { schema, schemaText } from "./Schema.js"

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

interface RequestContext {
  readonly run: Run<AppServices>
}

/** What a client sees of an error that is not a GraphQL error the resolvers meant to show. */
const masked = (error: GraphQLError): GraphQLError =>
  error.originalError === undefined || error.originalError instanceof GraphQLError
    ? error
    : new GraphQLError("Unexpected error.", {
        ...(error.nodes === undefined ? {} : { nodes: error.nodes }),
        ...(error.path === undefined ? {} : { path: error.path }),
        extensions: { code: "INTERNAL_SERVER_ERROR" }
      })

/**
 * The armor rules throw their refusal unless told otherwise, which graphql-http would answer as a
 * 500: they report it as a validation error instead (and without the misleading "Syntax Error: ").
 */
const report = {
  propagateOnRejection: false,
  onReject: [
    (context: ValidationContext | null, error: GraphQLError) =>
      context?.reportError(
        new GraphQLError(error.message.replace(/^Syntax Error: /, ""), {
          extensions: { code: "QUERY_LIMIT_EXCEEDED" }
        })
      )
  ]
}

const handler = createHandler<unknown, RequestContext, GraphqlContext>({
  schema,
  validationRules: (_req, _args, specified) => [
    ...specified,
    maxDepthRule({ n: MAX_DEPTH, ...report }),
    costLimitRule({ maxCost: MAX_COST, ...report }),
    maxAliasesRule({ n: MAX_ALIASES, ...report })
  ],
  // One loader set per request: batching within it, no cache across requests or callers.
  context: (req) => ({ run: req.context.run, loaders: Loaders.make(req.context.run) }),
  formatError: (error) => (error instanceof GraphQLError ? masked(error) : error)
})

/** A GraphQL-shaped error answer for what is refused before GraphQL runs (auth, size). */
const refused = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson({ errors: [{ message, extensions: { code } }] }, { status, headers })

export const layer = Layer.unwrapEffect(
  Effect.gen(function* () {
    const authenticate = yield* makeAuthenticate
    const runtime = yield* Effect.runtime<AppServices>()

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
        const [text, init] = yield* Effect.promise(() =>
          handler({
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: body ?? null,
            raw: request,
            context: { run: makeRun(runtime, principal) }
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

    const sdl = HttpServerResponse.text(schemaText, { contentType: "application/graphql; charset=utf-8" })

    return Layer.mergeAll(
      HttpLayerRouter.add("POST", "/graphql", execute),
      HttpLayerRouter.add("GET", "/graphql", execute),
      HttpLayerRouter.add("GET", "/graphql/schema.graphql", Effect.succeed(sdl))
    )
  })
).pipe(Layer.provide(ApplicationLive.layer))

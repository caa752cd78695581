/**
 * `POST /graphql` (and `GET /graphql?query=…`, GraphQL over HTTP) served by graphql-yoga inside
 * the Effect router, so it shares the port, the global middleware (the dashboard's session cookie,
 * with its CSRF check on POST) and the bearer authentication with its rate limit
 * (`Auth.makeAuthenticate`) with every other front door. `GET /graphql/schema.graphql` publishes
 * the schema as SDL text.
 *
 * Limits, checked before anything runs: depth (graphql-armor max-depth), cost (graphql-armor
 * cost-limit), body size; each refusal is a GraphQL error with a message that says which limit.
 */
import { HttpIncomingMessage, HttpLayerRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { Principal } from "@kyozo/api/KyozoRpc"
import { costLimitPlugin } from "@escape.tech/graphql-armor-cost-limit"
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth"
import { Effect, Layer, Option } from "effect"
import { printSchema } from "graphql"
import { createSchema, createYoga } from "graphql-yoga"
import { Deployments } from "../application/Deployments.js"
import { Insights } from "../application/Insights.js"
import { Members } from "../application/Members.js"
import { Services } from "../application/Services.js"
import { Webhooks } from "../application/Webhooks.js"
import { makeAuthenticate } from "../Auth.js"
import { makeRun, type Run } from "./Execution.js"
import * as Loaders from "./Loaders.js"
import { type AppServices, type GraphqlContext, resolvers } from "./Resolvers.js"
import { typeDefs } from "./TypeDefs.js"

/** The deepest selection a query may nest (a real query of this schema needs 4 or 5). */
export const MAX_DEPTH = 6
/** graphql-armor's static cost (objects 2, scalars 1, ×1.5 per level): ~20 fields of 20 aliases. */
export const MAX_COST = 1_000
/** The largest request body (a query document and its variables). */
export const MAX_BODY_BYTES = 256 * 1024

interface ServerContext {
  readonly run: Run<AppServices>
}

export const schema = createSchema<GraphqlContext>({ typeDefs, resolvers })

/** The published SDL (printed from the executable schema, descriptions included). */
export const schemaText = printSchema(schema)

const makeYoga = () =>
  createYoga<ServerContext, Omit<GraphqlContext, "run">>({
    schema,
    graphqlEndpoint: "/graphql",
    landingPage: false,
    graphiql: false,
    // Resolver defects are logged by Execution.makeRun with their cause; yoga only masks them.
    logging: false,
    maskedErrors: true,
    plugins: [maxDepthPlugin({ n: MAX_DEPTH }), costLimitPlugin({ maxCost: MAX_COST })],
    // One loader set per request: batching within it, no cache across requests or callers.
    context: ({ run }) => ({ loaders: Loaders.make(run) })
  })

/** A GraphQL-shaped error answer for what is refused before GraphQL runs (auth, size). */
const refused = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson({ errors: [{ message, extensions: { code } }] }, { status, headers })

export const layer = Layer.unwrapEffect(
  Effect.gen(function* () {
    const authenticate = yield* makeAuthenticate
    const runtime = yield* Effect.runtime<AppServices>()
    const yoga = makeYoga()

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
        const headers = new Headers()
        for (const [k, v] of Object.entries(request.headers)) if (typeof v === "string") headers.set(k, v)
        const web = new Request(new URL(request.url, "http://kyozo.local"), {
          method: request.method,
          headers,
          ...(body === undefined ? {} : { body })
        })
        const response = yield* Effect.promise(() => yoga.fetch(web, { run: makeRun(runtime, principal) }))
        const text = yield* Effect.promise(() => response.text())
        return HttpServerResponse.text(text, {
          status: response.status,
          contentType: response.headers.get("content-type") ?? "application/json",
          headers: Object.fromEntries(
            [...response.headers.entries()].filter(([k]) => k !== "content-type" && k !== "content-length")
          )
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
).pipe(
  Layer.provide(Layer.mergeAll(Services.Default, Members.Default, Deployments.Default, Insights.Default, Webhooks.Default))
)

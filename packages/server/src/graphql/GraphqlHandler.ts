/**
 * The GraphQL executor behind `/graphql` (GraphqlRoutes loads this module on the first request):
 * graphql-http over the executable schema, the limit rules, per-request loaders, error masking.
 */
import { costLimitRule } from "@escape.tech/graphql-armor-cost-limit"
import { maxAliasesRule } from "@escape.tech/graphql-armor-max-aliases"
import { maxDepthRule } from "@escape.tech/graphql-armor-max-depth"
import type { Principal } from "@kyozo/api/KyozoRpc"
import type { Runtime } from "effect"
import { GraphQLError, type ValidationContext } from "graphql"
import { createHandler } from "graphql-http"

import { makeRun } from "./Execution.js"
import { MAX_ALIASES, MAX_COST, MAX_DEPTH } from "./GraphqlRoutes.js"
import * as Loaders from "./Loaders.js"
import type { AppServices, GraphqlContext } from "./Resolvers.js"

export { schemaText } from "./Schema.js"
import { schema } from "./Schema.js"

interface RequestContext {
  readonly runtime: Runtime.Runtime<AppServices>
  readonly principal: Principal
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

export const handler = createHandler<unknown, RequestContext, GraphqlContext>({
  schema,
  validationRules: (_req, _args, specified) => [
    ...specified,
    maxDepthRule({ n: MAX_DEPTH, ...report }),
    costLimitRule({ maxCost: MAX_COST, ...report }),
    maxAliasesRule({ n: MAX_ALIASES, ...report })
  ],
  // One loader set per request: batching within it, no cache across requests or callers.
  context: (req) => {
    const run = makeRun(req.context.runtime, req.context.principal)
    return { run, loaders: Loaders.make(run) }
  },
  formatError: (error) => (error instanceof GraphQLError ? masked(error) : error)
})

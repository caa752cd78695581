/**
 * The hottest read of the REST API, `GET /v1/services`, answered on the `node:http` request itself
 * when all it needs is in memory: the caller's key verified recently (`Auth` `whenCached`: the
 * PrincipalCache, the rate limiter), the page held by the Services cache and its encoded answer
 * (`serviceListResponse`, the handler's own). Otherwise, or for anything unusual (another method,
 * repeated or undecodable parameters, a NUL byte, tracing on), the request goes on to the HTTP
 * stack as before, which answers every refusal. So the rules stay where they are; what is skipped
 * is the per-request plumbing (router, middleware, fibers, schema of the request) that a cached
 * answer does not need. Revocation still takes effect at once: it moves the auth epoch, and the
 * PrincipalCache no longer answers for the key.
 */
import type * as http from "node:http"

import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { PageParams } from "@kyozo/api/KyozoHttpApi"
import { CurrentPrincipal } from "@kyozo/api/KyozoRpc"
import { Effect, Exit, Option, Runtime, Schema } from "effect"

import { Services } from "../application/Services.js"
import { makeAuthenticator } from "../Auth.js"
import * as RequestCounts from "../RequestCounts.js"
import { DEFAULT_PAGE_SIZE, serviceListResponse } from "./ServicesHandlers.js"

/** Answers the request and returns true, or returns false and leaves it untouched. */
export type HotRoute = (req: http.IncomingMessage, res: http.ServerResponse) => boolean

const decodeParams = Schema.decodeUnknownOption(PageParams)

/** Decoded queries by their text (clients repeat a few; the table starts afresh when full). */
const decodedQueries = new Map<string, Option.Option<typeof PageParams.Type>>()
const MAX_QUERIES = 1_000

const paramsOf = (query: string): Option.Option<typeof PageParams.Type> => {
  let params = decodedQueries.get(query)
  if (params === undefined) {
    const record = queryOf(query)
    params = record === undefined ? Option.none() : decodeParams(record)
    if (query.length <= 256) {
      if (decodedQueries.size >= MAX_QUERIES) decodedQueries.clear()
      decodedQueries.set(query, params)
    }
  }
  return params
}

/** The `node:http` headers of an encoded answer (answers are kept, so are their headers). */
const nodeHeaders = new WeakMap<HttpServerResponse.HttpServerResponse, http.OutgoingHttpHeaders>()
const headersOf = (
  response: HttpServerResponse.HttpServerResponse,
  body: Uint8Array,
  contentType: string
): http.OutgoingHttpHeaders => {
  let headers = nodeHeaders.get(response)
  if (headers === undefined) {
    headers = { ...response.headers, "content-type": contentType, "content-length": body.length }
    nodeHeaders.set(response, headers)
  }
  return headers
}

/** The query as a record of single values; none when a name repeats or a value holds NUL. */
const queryOf = (query: string): Record<string, string> | undefined => {
  const record: Record<string, string> = {}
  for (const [name, value] of new URLSearchParams(query)) {
    if (name in record || name.includes("\0") || value.includes("\0")) return undefined
    record[name] = value
  }
  return record
}

export const make = Effect.gen(function* () {
  const app = yield* Services
  const { whenCached } = yield* makeAuthenticator
  const run = Runtime.runSyncExit(yield* Effect.runtime<never>())

  return ((req, res) => {
    if (req.method !== "GET") return false
    const url = req.url ?? ""
    const q = url.indexOf("?")
    if ((q === -1 ? url : url.slice(0, q)) !== "/v1/services") return false
    const params = paramsOf(q === -1 ? "" : url.slice(q + 1))
    if (Option.isNone(params)) return false
    const size = params.value["page[size]"] ?? DEFAULT_PAGE_SIZE
    const answer = (principal: typeof CurrentPrincipal.Service) =>
      app.cachedForCaller({ limit: size, after: params.value["page[after]"] }).pipe(
        Effect.flatMap(
          Option.match({
            onNone: () => Effect.succeedNone,
            onSome: (page) => Effect.asSome(serviceListResponse(app, page, size, url))
          })
        ),
        Effect.provideService(CurrentPrincipal, principal)
      )
    const exit = run(whenCached(req.headers.authorization, answer))
    // A refusal (rate limit) or anything not in memory: the HTTP stack answers.
    if (Exit.isFailure(exit) || Option.isNone(exit.value)) return false
    const response = exit.value.value
    if (response.body._tag !== "Uint8Array") return false
    res.writeHead(response.status, headersOf(response, response.body.body, response.body.contentType))
    res.end(response.body.body)
    RequestCounts.count("GET", "/v1/services", response.status)
    return true
  }) satisfies HotRoute
})

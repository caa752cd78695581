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
    const query = queryOf(q === -1 ? "" : url.slice(q + 1))
    const params = query === undefined ? Option.none() : decodeParams(query)
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
    res.writeHead(response.status, {
      ...response.headers,
      "content-type": response.body.contentType,
      "content-length": response.body.body.length
    })
    res.end(response.body.body)
    RequestCounts.count("GET", "/v1/services", response.status)
    return true
  }) satisfies HotRoute
})

/**
 * The edge of the REST API: what must be answered before (or instead of) a handler, in JSON:API.
 *
 * - a known path with the wrong method → 405 with `Allow` (the router alone answers 404);
 * - a body that is not JSON (`application/json` or `application/vnd.api+json`) → 415;
 * - a body over `KYOZO_API_MAX_BODY_BYTES` (default 1 MiB) → 413;
 * - malformed JSON → 400 (HttpApi would turn the parse failure into a defect, i.e. a 500);
 * - HttpApi's schema decode failures → 400 JSON:API errors with `source.pointer` (body) or
 *   `source.parameter` (path and query);
 * - a 429 gets its `Retry-After` header.
 *
 * - an unknown path under `/v1` → 404 JSON:API document;
 * - a NUL byte in a path segment, query parameter or any string of the body → 400 pointing at it
 *   (PostgreSQL refuses NUL; the schema boundary answers first);
 * - a body of only whitespace → 400 (it is not JSON);
 * - a defect anywhere → logged with its cause, answered as a JSON:API 500 under /v1;
 * - every answer is counted by route and status for /metrics;
 * - RPC (`/rpc`): headers inside the NDJSON messages are dropped, so only the HTTP request's own
 *   `authorization` counts (a message cannot carry another key past the one the request presents).
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { type ErrorObject, JSON_API, KyozoHttpApi, routesOf } from "@kyozo/api/KyozoHttpApi"
import { currentKyozoConfig } from "@kyozo/core/KyozoConfig"
import { Cause, Effect, Option } from "effect"

import * as RequestCounts from "./RequestCounts.js"

interface CompiledRoute {
  readonly method: string
  readonly path: string
  readonly pattern: RegExp
  /** The name of each `:param` segment by index. */
  readonly params: ReadonlyArray<string | undefined>
}

const compile = (path: string): RegExp =>
  new RegExp(
    "^" +
      path
        .split("/")
        .map((seg) => (seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
        .join("/") +
      "/?$"
  )

const routes: ReadonlyArray<CompiledRoute> = routesOf(KyozoHttpApi).map((r) => ({
  method: r.method,
  path: r.path,
  pattern: compile(r.path),
  params: r.path.split("/").map((seg) => (seg.startsWith(":") ? seg.slice(1) : undefined))
}))

/**
 * The routes a path matches, remembered per path (most requests repeat a few paths; paths with ids
 * fill the table, which then starts afresh; long paths are not kept): the patterns are not tried
 * on every request.
 */
const matchCache = new Map<string, ReadonlyArray<CompiledRoute>>()
const MAX_MATCHED_PATHS = 2_000
const matchingRoutes = (pathname: string): ReadonlyArray<CompiledRoute> => {
  let matching = matchCache.get(pathname)
  if (matching === undefined) {
    matching = routes.filter((r) => r.pattern.test(pathname))
    if (pathname.length <= 256) {
      if (matchCache.size >= MAX_MATCHED_PATHS) matchCache.clear()
      matchCache.set(pathname, matching)
    }
  }
  return matching
}

/** The JSON pointer of the first string (key or value) holding a NUL byte, if any. */
const nulPointer = (value: unknown, path: ReadonlyArray<PropertyKey> = []): string | undefined => {
  if (typeof value === "string") return value.includes("\0") ? pointerOf(path) : undefined
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = nulPointer(value[i], [...path, i])
      if (p !== undefined) return p
    }
    return undefined
  }
  if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k.includes("\0")) return pointerOf([...path, k])
      const p = nulPointer(v, [...path, k])
      if (p !== undefined) return p
    }
  }
  return undefined
}

const nulError = (source: ErrorObject["source"]) =>
  errorDoc(400, [
    { code: "nul_byte", title: "Invalid request", detail: "NUL bytes are not allowed in requests.", source }
  ])

/** Where a NUL byte sits in the path or query of a request, if anywhere. */
const nulInUrl = (url: string, route: CompiledRoute | undefined): ErrorObject["source"] | undefined => {
  // Decoding can only yield NUL from `%00` (or a raw NUL): most requests need no decoding at all.
  if (!url.includes("%00") && !url.includes("\0")) return undefined
  const [pathname, query] = [url.split("?")[0]!, url.includes("?") ? url.slice(url.indexOf("?") + 1) : ""]
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s.replace(/\+/g, " "))
    } catch {
      return s
    }
  }
  const segments = pathname.split("/")
  for (let i = 0; i < segments.length; i++)
    if (decode(segments[i]!).includes("\0")) return { parameter: route?.params[i] ?? `path segment ${i}` }
  for (const pair of query.split("&")) {
    if (pair === "") continue
    const [k, v = ""] = pair.split("=")
    if (decode(k!).includes("\0") || decode(v).includes("\0"))
      return { parameter: decode(k!).replace(/\0/g, "") }
  }
  return undefined
}

/** NDJSON RPC messages without the headers they carry (only the HTTP request's headers count). */
const withoutMessageHeaders = (text: string): string =>
  text
    .split("\n")
    .map((line) => {
      if (line.trim() === "") return line
      try {
        const message = JSON.parse(line) as { _tag?: string; headers?: unknown }
        if (
          message &&
          message._tag === "Request" &&
          Array.isArray(message.headers) &&
          message.headers.length > 0
        )
          return JSON.stringify({ ...message, headers: [] })
        return line
      } catch {
        return line
      }
    })
    .join("\n")

const defectResponse = (pathname: string) =>
  pathname.startsWith("/v1/") || pathname === "/v1"
    ? errorDoc(500, [
        {
          code: "internal_error",
          title: "Internal error",
          detail: "The server failed to answer; the cause is in its log. Try again, or report it."
        }
      ])
    : HttpServerResponse.unsafeJson(
        {
          errors: [
            { status: "500", code: "internal_error", title: "Internal error", detail: "See the server log." }
          ]
        },
        { status: 500 }
      )

const errorDoc = (status: number, errors: ReadonlyArray<Omit<ErrorObject, "status">>) =>
  HttpServerResponse.unsafeJson(
    { errors: errors.map((e) => ({ status: String(status), ...e })) },
    { status, contentType: JSON_API }
  )

const JSON_TYPES = ["application/json", "application/vnd.api+json"]

/** RFC 6901: `~` and `/` inside a token are escaped. */
const pointerOf = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((k) => "/" + String(k).replace(/~/g, "~0").replace(/\//g, "~1")).join("")

interface DecodeIssue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

/** HttpApi's `HttpApiDecodeError` body as JSON:API errors (body fields point, parameters name). */
const decodeErrors = (issues: ReadonlyArray<DecodeIssue>) =>
  errorDoc(
    400,
    (issues.length === 0 ? [{ path: [], message: "The request does not match the schema." }] : issues)
      .slice(0, 20)
      .map((issue) => ({
        code: "invalid",
        title: "Invalid request",
        // Schema messages may quote the rejected value: cap them so a huge string is not echoed back.
        detail: issue.message.length > 500 ? `${issue.message.slice(0, 500)}…` : issue.message,
        source:
          issue.path[0] === "data" || issue.path.length === 0
            ? { pointer: pointerOf(issue.path) }
            : { parameter: String(issue.path[0]) }
      }))
  )

const readJsonBody = (response: HttpServerResponse.HttpServerResponse): unknown => {
  if (response.body._tag !== "Uint8Array") return undefined
  try {
    return JSON.parse(new TextDecoder().decode(response.body.body))
  } catch {
    return undefined
  }
}

/** The same request (same cached body) with `content-type: application/json`. */
const withJsonContentType = (
  request: HttpServerRequest.HttpServerRequest
): HttpServerRequest.HttpServerRequest => {
  const headers = { ...request.headers, "content-type": "application/json" }
  return new Proxy(request, {
    get: (target, prop) => (prop === "headers" ? headers : Reflect.get(target, prop, target))
  })
}

export const layer = HttpLayerRouter.middleware(
  Effect.gen(function* () {
    const maxBytes = (yield* currentKyozoConfig).apiMaxBodyBytes
    const api = <E, R>(httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const pathname = request.url.split("?")[0]!
        if (pathname === "/rpc" && request.method === "POST") {
          // Only the HTTP request's own headers authenticate: drop headers inside the messages.
          const text = yield* request.text.pipe(
            HttpIncomingMessage.withMaxBodySize(Option.some(maxBytes * 16))
          )
          const cleaned = withoutMessageHeaders(text)
          const replaced = new Proxy(request, {
            get: (target, prop) =>
              prop === "text" ? Effect.succeed(cleaned) : Reflect.get(target, prop, target)
          })
          return yield* Effect.provideService(httpEffect, HttpServerRequest.HttpServerRequest, replaced)
        }
        const matching = matchingRoutes(pathname)
        if (matching.length === 0) {
          if (pathname === "/v1" || pathname.startsWith("/v1/")) {
            // Known non-HttpApi routes under /v1 (events, uploads) answer themselves.
            const response = yield* httpEffect
            if (response.status !== 404) return response
            return errorDoc(404, [
              { code: "not_found", title: "Not found", detail: `No route ${request.method} ${pathname}.` }
            ])
          }
          return yield* httpEffect
        }
        const route = matching.find((r) => r.method === request.method) ?? matching[0]
        const nul = nulInUrl(request.url, route)
        if (nul !== undefined) return nulError(nul)
        const allowed = [...new Set(matching.map((r) => r.method))]
        if (!allowed.includes(request.method))
          return errorDoc(405, [
            {
              code: "method_not_allowed",
              title: "Method not allowed",
              detail: `${request.method} is not allowed here; allowed: ${allowed.join(", ")}.`
            }
          ]).pipe(HttpServerResponse.setHeader("allow", allowed.join(", ")))

        // HttpApi reads only `application/json` bodies as JSON (anything else as bytes, from a stream
        // already read here): a JSON:API body is shown to it as plain JSON, same cached text.
        let asJson: HttpServerRequest.HttpServerRequest | undefined
        if (request.method === "POST" || request.method === "PATCH" || request.method === "PUT") {
          const length = Number(request.headers["content-length"] ?? "NaN")
          if (Number.isFinite(length) && length > maxBytes)
            return errorDoc(413, [
              { code: "too_large", title: "Payload too large", detail: `The body exceeds ${maxBytes} bytes.` }
            ])
          const contentType = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
          const hasBody =
            (Number.isFinite(length) && length > 0) || request.headers["transfer-encoding"] !== undefined
          if (hasBody && !JSON_TYPES.includes(contentType))
            return errorDoc(415, [
              {
                code: "unsupported_media_type",
                title: "Unsupported media type",
                detail: `Send the body as ${JSON_API} or application/json.`
              }
            ])
          // Read (and cache, for the handler) the body under the size cap.
          const text = yield* request.text.pipe(
            HttpIncomingMessage.withMaxBodySize(Option.some(maxBytes)),
            Effect.either
          )
          if (text._tag === "Left")
            return errorDoc(413, [
              { code: "too_large", title: "Payload too large", detail: `The body exceeds ${maxBytes} bytes.` }
            ])
          if (contentType === JSON_API) asJson = withJsonContentType(request)
          if (text.right !== "" && text.right.trim() === "")
            return errorDoc(400, [
              {
                code: "malformed_json",
                title: "Malformed JSON",
                detail: "The body holds only whitespace: send a JSON:API document.",
                source: { pointer: "" }
              }
            ])
          if (text.right.trim() !== "") {
            try {
              const pointer = nulPointer(JSON.parse(text.right))
              if (pointer !== undefined) return nulError({ pointer })
            } catch {
              return errorDoc(400, [
                {
                  code: "malformed_json",
                  title: "Malformed JSON",
                  detail: "The body is not valid JSON.",
                  source: { pointer: "" }
                }
              ])
            }
          }
        }

        const response = yield* asJson
          ? Effect.provideService(httpEffect, HttpServerRequest.HttpServerRequest, asJson)
          : httpEffect
        if (response.status === 400) {
          const body = readJsonBody(response) as
            { _tag?: string; issues?: ReadonlyArray<DecodeIssue> } | undefined
          if (body?._tag === "HttpApiDecodeError") return decodeErrors(body.issues ?? [])
        }
        if (response.status === 429) {
          const body = readJsonBody(response) as { errors?: ReadonlyArray<ErrorObject> } | undefined
          const seconds = body?.errors?.[0]?.meta?.["retryAfterSeconds"]
          if (typeof seconds === "number")
            return HttpServerResponse.setHeader(
              response,
              "retry-after",
              String(Math.max(1, Math.ceil(seconds)))
            )
        }
        return response
      })
    return (httpEffect) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const pathname = request.url.split("?")[0]!
        const response = yield* api(httpEffect).pipe(
          Effect.catchAllCause((cause) => {
            if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
            if (!Cause.isDie(cause)) {
              // Typed failures the platform answers itself (RouteNotFound → 404): under /v1 as JSON:API.
              const failure = Cause.failureOption(cause)
              const tag = Option.isSome(failure) ? (failure.value as { _tag?: string })?._tag : undefined
              if (tag === "RouteNotFound" && (pathname === "/v1" || pathname.startsWith("/v1/")))
                return Effect.succeed(
                  errorDoc(404, [
                    {
                      code: "not_found",
                      title: "Not found",
                      detail: `No route ${request.method} ${pathname}.`
                    }
                  ])
                )
              return Effect.failCause(cause)
            }
            return Effect.as(
              Effect.logError(`${request.method} ${pathname} answered 500`, cause),
              defectResponse(pathname)
            )
          })
        )
        if (response.status >= 500 && response.status !== 503)
          yield* Effect.logError(`${request.method} ${pathname} answered ${response.status}`)
        const route = matchingRoutes(pathname).find((r) => r.method === request.method)
        RequestCounts.count(
          request.method,
          route
            ? `/v1${route.path.replace(/^\/v1/, "")}`
            : pathname.startsWith("/v1/")
              ? "/v1/*"
              : pathname.split("/").slice(0, 2).join("/") || "/",
          response.status
        )
        return response
      })
  }),
  { global: true }
)

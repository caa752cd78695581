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
 * Only paths of `KyozoHttpApi` are touched; uploads, events, RPC and the rest pass through.
 */
import { HttpIncomingMessage, HttpLayerRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { type ErrorObject, JSON_API, KyozoHttpApi, routesOf } from "@kyozo/api/KyozoHttpApi"
import { Config, Effect, Option } from "effect"

interface CompiledRoute {
  readonly method: string
  readonly pattern: RegExp
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
  pattern: compile(r.path)
}))

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
    const maxBytes = yield* Config.integer("KYOZO_API_MAX_BODY_BYTES").pipe(Config.withDefault(1024 * 1024))
    return (httpEffect) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const pathname = request.url.split("?")[0]!
        const matching = routes.filter((r) => r.pattern.test(pathname))
        if (matching.length === 0) return yield* httpEffect
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
          if (text.right.trim() !== "") {
            try {
              JSON.parse(text.right)
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
  }),
  { global: true }
)

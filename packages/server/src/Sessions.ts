/**
 * Dashboard sessions: an API key exchanged for an HttpOnly, SameSite=Strict cookie.
 *
 * The cookie holds a random session token. Its row keeps the token's sha256 and the API key sealed
 * (AES-256-GCM) under a key derived from the token, so neither the database nor the browser's
 * script ever holds a usable key on its own. A request that carries the cookie and no
 * `authorization` header is handed on with `authorization: Bearer <the unsealed key>`: the existing
 * bearer authentication (Auth.ts) then decides, so role, team, rate limit, revocation and expiry are
 * exactly the key's, and a revoked key ends its sessions at once. State-changing requests made with
 * the cookie must carry the session's CSRF token in `x-csrf-token` (derived from the token, so it
 * needs no storage); a missing or wrong one is a 403 before any handler runs.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from "node:crypto"

import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { randomToken } from "@kyozo/api/domain/Ids"
import { JSON_API } from "@kyozo/api/KyozoHttpApi"
import type { Principal } from "@kyozo/api/KyozoRpc"
import { CSRF_HEADER, SESSION_COOKIE, SessionDocument, SignIn } from "@kyozo/api/KyozoSession"
import { currentKyozoConfig } from "@kyozo/core/KyozoConfig"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { UserRepo } from "@kyozo/core/store/UserRepo"
import { Duration, Effect, Layer, Option, Schema } from "effect"

import { makeAuthenticate } from "./Auth.js"

const sha256 = (label: string, token: string): Buffer =>
  createHash("sha256").update(label, "utf8").update(token, "utf8").digest()

/** What the row stores in place of the token. */
export const tokenHash = (token: string): string => sha256("kyozo-session:", token).toString("hex")

/** The CSRF token of a session: derived from its token, so a forger without the cookie cannot know it. */
export const csrfTokenOf = (token: string): string => sha256("kyozo-csrf:", token).toString("base64url")

/** `iv.tag.ciphertext` (base64url) of the API key under a key derived from the session token. */
export const seal = (apiKey: string, token: string): string => {
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", sha256("kyozo-seal:", token), iv)
  const body = Buffer.concat([cipher.update(apiKey, "utf8"), cipher.final()])
  return [iv, cipher.getAuthTag(), body].map((b) => b.toString("base64url")).join(".")
}

export const unseal = (sealed: string, token: string): Option.Option<string> => {
  try {
    const [iv, tag, body] = sealed.split(".").map((p) => Buffer.from(p, "base64url"))
    if (!iv || !tag || !body) return Option.none()
    const decipher = createDecipheriv("aes-256-gcm", sha256("kyozo-seal:", token), iv)
    decipher.setAuthTag(tag)
    return Option.some(Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8"))
  } catch {
    return Option.none()
  }
}

const sameText = (a: string, b: string): boolean => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

const SessionRow = Schema.Struct({
  id: Schema.String,
  sealed_key: Schema.String,
  expires_at: Schema.Union(Schema.DateFromSelf, Schema.DateFromString)
})

export interface OpenSession {
  readonly id: string
  readonly apiKey: string
  readonly expiresAt: Date
}

export class SessionStore extends Effect.Service<SessionStore>()("@kyozo/server/SessionStore", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const decodeRows = Schema.decodeUnknown(Schema.Array(SessionRow))

    const create = (input: {
      readonly apiKey: string
      readonly keyId: string
      readonly ttl: Duration.Duration
    }): Effect.Effect<{ readonly id: string; readonly token: string; readonly expiresAt: Date }, SqlError> =>
      Effect.gen(function* () {
        const token = `kzs_${randomBytes(32).toString("base64url")}`
        const id = `ses_${randomToken()}`
        const expiresAt = new Date(Date.now() + Duration.toMillis(input.ttl))
        // Expired rows are useless; sign-ins are rare, so they are cleared here rather than by a loop.
        yield* sql`DELETE FROM dashboard_sessions WHERE expires_at < now()`
        yield* sql`INSERT INTO dashboard_sessions (id, token_hash, api_key_id, sealed_key, expires_at)
                   VALUES (${id}, ${tokenHash(token)}, ${input.keyId}, ${seal(input.apiKey, token)}, ${expiresAt})`
        return { id, token, expiresAt }
      })

    /** The session of a cookie value: none when unknown, expired or not unsealable. */
    const open = (token: string): Effect.Effect<Option.Option<OpenSession>, SqlError> =>
      Effect.gen(function* () {
        if (!token.startsWith("kzs_") || token.length > 100) return Option.none()
        const rows = yield* sql`SELECT id, sealed_key, expires_at FROM dashboard_sessions
                                WHERE token_hash = ${tokenHash(token)} AND expires_at > now()`
        const [row] = yield* Effect.orDie(decodeRows(rows))
        if (row === undefined) return Option.none()
        return Option.map(unseal(row.sealed_key, token), (apiKey) => ({
          id: row.id,
          apiKey,
          expiresAt: row.expires_at
        }))
      })

    const remove = (token: string): Effect.Effect<void, SqlError> =>
      Effect.asVoid(sql`DELETE FROM dashboard_sessions WHERE token_hash = ${tokenHash(token)}`)

    return { create, open, remove } as const
  })
}) {}

const errorDoc = (status: number, code: string, title: string, detail: string) =>
  HttpServerResponse.unsafeJson(
    { errors: [{ status: String(status), code, title, detail }] },
    { status, contentType: JSON_API }
  )

const signedOut = (detail: string) => errorDoc(401, "unauthorized", "Not signed in", detail)

/** Secure cookies when the browser reached us over HTTPS (directly or through a TLS-terminating proxy). */
const overHttps = (request: HttpServerRequest.HttpServerRequest): boolean =>
  (request.headers["x-forwarded-proto"] ?? "").split(",")[0]!.trim().toLowerCase() === "https" ||
  request.url.startsWith("https:")

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"])

/** Paths the cookie may authenticate: the API, its event stream and uploads (not /v1/session itself). */
const cookiePath = (pathname: string): boolean =>
  (pathname.startsWith("/v1/") || pathname === "/rpc" || pathname === "/graphql") &&
  pathname !== "/v1/session"

const withAuthorization = (
  request: HttpServerRequest.HttpServerRequest,
  authorization: string
): HttpServerRequest.HttpServerRequest => {
  const headers = { ...request.headers, authorization }
  return new Proxy(request, {
    get: (target, prop) => (prop === "headers" ? headers : Reflect.get(target, prop, target))
  })
}

/** Turns a session cookie into the key's bearer header, after the CSRF check on writes. */
export const cookieAuthMiddleware = HttpLayerRouter.middleware(
  Effect.gen(function* () {
    const store = yield* SessionStore
    return (httpEffect) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const token = request.cookies[SESSION_COOKIE]
        const pathname = request.url.split("?")[0]!
        if (token === undefined || request.headers["authorization"] !== undefined || !cookiePath(pathname))
          return yield* httpEffect
        if (!SAFE_METHODS.has(request.method)) {
          const presented = request.headers[CSRF_HEADER] ?? ""
          if (!sameText(presented, csrfTokenOf(token)))
            return errorDoc(
              403,
              "csrf_failed",
              "Missing or wrong CSRF token",
              `Requests signed in with the session cookie that change state must send the session's token in \`${CSRF_HEADER}\` (GET /v1/session returns it).`
            )
        }
        const session = yield* store.open(token).pipe(Effect.orDie)
        if (Option.isNone(session)) return signedOut("The session has ended or expired: sign in again.")
        return yield* Effect.provideService(
          httpEffect,
          HttpServerRequest.HttpServerRequest,
          withAuthorization(request, `Bearer ${session.value.apiKey}`)
        )
      })
  }),
  { global: true }
)

const sessionRoutes = Layer.unwrapEffect(
  Effect.gen(function* () {
    const store = yield* SessionStore
    const authenticate = yield* makeAuthenticate
    const teams = yield* TeamRepo
    const users = yield* UserRepo
    const ttl = (yield* currentKyozoConfig).sessionTtl
    const encode = Schema.encodeSync(SessionDocument)

    const document = (principal: Principal, token: string, sessionId: string, expiresAt: Date) =>
      Effect.gen(function* () {
        const team = yield* teams.findById(principal.teamId)
        const user = yield* users.findById(principal.userId)
        return encode({
          data: {
            type: "sessions",
            id: sessionId,
            attributes: {
              userId: principal.userId,
              email: Option.match(user, { onNone: () => "", onSome: (u) => u.email }),
              teamId: principal.teamId,
              teamName: Option.match(team, { onNone: () => "", onSome: (t) => t.name }),
              role: principal.role,
              keyId: principal.keyId,
              csrfToken: csrfTokenOf(token),
              expiresAt: expiresAt.toISOString()
            }
          }
        })
      })

    const authFailures = {
      Unauthorized: () => Effect.succeed(signedOut("Invalid, revoked or expired API key.")),
      RateLimited: (e: { readonly message: string }) =>
        Effect.succeed(errorDoc(429, "rate_limited", "Too many requests", e.message))
    }

    const signIn = HttpLayerRouter.add("POST", "/v1/session", (request) =>
      Effect.gen(function* () {
        const contentType = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
        // JSON only: an HTML form on another site cannot send it without a preflight.
        if (contentType !== "application/json" && contentType !== JSON_API)
          return errorDoc(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            `Send { "data": { "type": "sessions", "attributes": { "apiKey": "kz_…" } } } as ${JSON_API}.`
          )
        const body = yield* request.json.pipe(
          HttpIncomingMessage.withMaxBodySize(Option.some(16 * 1024)),
          Effect.flatMap(Schema.decodeUnknown(SignIn)),
          Effect.option
        )
        if (Option.isNone(body))
          return errorDoc(
            400,
            "invalid",
            "Invalid sign-in request",
            'Send { "data": { "type": "sessions", "attributes": { "apiKey": "kz_…" } } }.'
          )
        const apiKey = body.value.data.attributes.apiKey.trim()
        const principal = yield* authenticate(`Bearer ${apiKey}`)
        const session = yield* store.create({ apiKey, keyId: principal.keyId, ttl }).pipe(Effect.orDie)
        const doc = yield* document(principal, session.token, session.id, session.expiresAt).pipe(
          Effect.orDie
        )
        return HttpServerResponse.unsafeJson(doc, { status: 201, contentType: JSON_API }).pipe(
          HttpServerResponse.unsafeSetCookie(SESSION_COOKIE, session.token, {
            httpOnly: true,
            sameSite: "strict",
            secure: overHttps(request),
            path: "/",
            expires: session.expiresAt
          }),
          HttpServerResponse.setHeader("cache-control", "no-store")
        )
      }).pipe(Effect.catchTags(authFailures))
    )

    const whoAmI = HttpLayerRouter.add("GET", "/v1/session", (request) =>
      Effect.gen(function* () {
        // Nobody signed in is an answer, not an error: `{ data: null }` (a page load must not log a 401).
        const nobody = HttpServerResponse.unsafeJson(
          { data: null },
          { contentType: JSON_API, headers: { "cache-control": "no-store" } }
        )
        const token = request.cookies[SESSION_COOKIE]
        if (token === undefined) return nobody
        const session = yield* store.open(token).pipe(Effect.orDie)
        if (Option.isNone(session)) return nobody
        const principal = yield* authenticate(`Bearer ${session.value.apiKey}`).pipe(Effect.option)
        if (Option.isNone(principal)) return nobody
        const doc = yield* document(principal.value, token, session.value.id, session.value.expiresAt).pipe(
          Effect.orDie
        )
        return HttpServerResponse.unsafeJson(doc, { contentType: JSON_API }).pipe(
          HttpServerResponse.setHeader("cache-control", "no-store")
        )
      })
    )

    const signOut = HttpLayerRouter.add("DELETE", "/v1/session", (request) =>
      Effect.gen(function* () {
        const token = request.cookies[SESSION_COOKIE]
        if (token !== undefined) {
          if (!sameText(request.headers[CSRF_HEADER] ?? "", csrfTokenOf(token)))
            return errorDoc(
              403,
              "csrf_failed",
              "Missing or wrong CSRF token",
              `Send the session's token in \`${CSRF_HEADER}\`.`
            )
          yield* store.remove(token).pipe(Effect.orDie)
        }
        return HttpServerResponse.empty({ status: 204 }).pipe(
          HttpServerResponse.unsafeSetCookie(SESSION_COOKIE, "", {
            httpOnly: true,
            sameSite: "strict",
            secure: overHttps(request),
            path: "/",
            maxAge: Duration.zero
          })
        )
      })
    )

    return Layer.mergeAll(signIn, whoAmI, signOut)
  })
)

/** Sign-in routes and the cookie middleware, with their store. */
export const layer = Layer.mergeAll(sessionRoutes, cookieAuthMiddleware).pipe(
  Layer.provide(SessionStore.Default)
)

/**
 * The dashboard's sign-in contract, beside the REST API: `POST /v1/session` exchanges an API key for
 * an HttpOnly session cookie, `GET /v1/session` says who the cookie is (`data: null`: nobody), `DELETE /v1/session` signs
 * out. Requests that carry the cookie and change state must also carry the CSRF token of the
 * session in `x-csrf-token`; requests with an `authorization` header ignore the cookie.
 */
import { Schema } from "effect"

import { Role } from "./domain/Membership.js"

export const SESSION_COOKIE = "kyozo_session"
export const CSRF_HEADER = "x-csrf-token"

/** The sign-in body: `{ data: { type: "sessions", attributes: { apiKey } } }`. */
export const SignIn = Schema.Struct({
  data: Schema.Struct({
    type: Schema.Literal("sessions"),
    attributes: Schema.Struct({ apiKey: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(512)) })
  })
})
export type SignIn = typeof SignIn.Type

export const SessionResource = Schema.Struct({
  type: Schema.Literal("sessions"),
  id: Schema.String,
  attributes: Schema.Struct({
    userId: Schema.String,
    email: Schema.String,
    teamId: Schema.String,
    teamName: Schema.String,
    role: Role,
    keyId: Schema.String,
    /** Send it back in `x-csrf-token` on every POST, PATCH, PUT and DELETE. */
    csrfToken: Schema.String,
    expiresAt: Schema.String
  })
})
export const SessionDocument = Schema.Struct({ data: SessionResource })
/** `GET /v1/session`: the session, or `data: null` when nobody is signed in. */
export const CurrentSessionDocument = Schema.Struct({ data: Schema.NullOr(SessionResource) })
export type CurrentSessionDocument = typeof CurrentSessionDocument.Type
export type SessionDocument = typeof SessionDocument.Type

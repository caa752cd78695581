/**
 * The bearer middleware of the REST API: the same verification as RPC and uploads
 * (`Auth.makeAuthenticate`). HttpApiSecurity.bearer hands an empty token when the header is
 * missing, so an empty token is rejected here before any lookup.
 */
import { apiError, Authorization, TooManyRequests, Unauthenticated } from "@kyozo/api/KyozoHttpApi"
import { Effect, Layer, Redacted } from "effect"

import { makeAuthenticate } from "../Auth.js"

export const layer = Layer.effect(
  Authorization,
  Effect.map(makeAuthenticate, (authenticate) =>
    Authorization.of({
      bearer: (token) => {
        const value = Redacted.value(token)
        if (value.trim() === "")
          return Effect.fail(
            apiError(
              Unauthenticated,
              401,
              "unauthorized",
              "Unauthorized",
              "Missing bearer token: send `authorization: Bearer kz_…`."
            )
          )
        return authenticate(`Bearer ${value}`).pipe(
          Effect.mapError((e): Unauthenticated | TooManyRequests =>
            e._tag === "RateLimited"
              ? new TooManyRequests({
                  errors: [
                    {
                      status: "429",
                      code: "rate_limited",
                      title: "Too many requests",
                      detail: e.message,
                      meta: { retryAfterSeconds: e.retryAfterSeconds }
                    }
                  ]
                })
              : apiError(Unauthenticated, 401, "unauthorized", "Unauthorized", e.message)
          )
        )
      }
    })
  )
)

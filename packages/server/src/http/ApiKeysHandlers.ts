/** REST `apiKeys` group over the ApiKeys application service: decode, call, encode. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { ApiKeys } from "../application/ApiKeys.js"
import { apiKeyDoc, listDoc } from "./Documents.js"
import { apiKeyError } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "apiKeys", (handlers) =>
  Effect.gen(function* () {
    const app = yield* ApiKeys
    return handlers
      .handle("listApiKeys", () => Effect.flatMap(app.list, (ks) => listDoc(ks.map((k) => apiKeyDoc(k)))))
      .handle("issueApiKey", ({ payload }) =>
        app.issue(payload.data.attributes).pipe(
          Effect.mapError(apiKeyError),
          Effect.map((issued) => ({ data: apiKeyDoc(issued.apiKey, issued.key) }))
        )
      )
      .handle("revokeApiKey", ({ path }) => app.revoke(path.keyId).pipe(Effect.mapError(apiKeyError)))
  })
)

/** REST `domains` group (custom domains of a service) over the Domains application service. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { Domains } from "../application/Domains.js"
import { domainDoc, listDoc } from "./Documents.js"
import { domainError } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "domains", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Domains
    return handlers
      .handle("listDomains", ({ path }) =>
        app.list(path.serviceId).pipe(
          Effect.mapError(domainError),
          Effect.flatMap((rows) => listDoc(rows.map(domainDoc)))
        )
      )
      .handle("addDomain", ({ path, payload }) =>
        app.add(path.serviceId, payload.data.attributes.hostname).pipe(
          Effect.mapError(domainError),
          Effect.map(({ domain }) => ({ data: domainDoc(domain) }))
        )
      )
      .handle("removeDomain", ({ path }) =>
        app.remove(path.serviceId, path.hostname).pipe(Effect.mapError(domainError))
      )
  })
)

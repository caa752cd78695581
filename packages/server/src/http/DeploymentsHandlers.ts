/** REST `deployments` group over the Deployments and Services application services. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect, Stream } from "effect"

import { Deployments } from "../application/Deployments.js"
import { Services } from "../application/Services.js"
import { deploymentDoc, listDoc, logLineDoc } from "./Documents.js"
import { deployError, deploymentError, policyError } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "deployments", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Deployments
    const services = yield* Services
    return handlers
      .handle("listDeployments", ({ urlParams }) => {
        const limit = urlParams["page[size]"] ?? 50
        const filter = urlParams["filter[service]"]
        return (
          filter === undefined
            ? app.list({ limit })
            : app.listByService(filter, { limit }).pipe(Effect.mapError((e) => policyError(e)))
        ).pipe(Effect.flatMap((rows) => listDoc(rows.map(deploymentDoc))))
      })
      .handle("getDeployment", ({ path }) =>
        app.get(path.deploymentId).pipe(
          Effect.mapError(deploymentError),
          Effect.map((d) => ({ data: deploymentDoc(d) }))
        )
      )
      .handle("startDeployment", ({ path }) =>
        app.redeploy(path.serviceId).pipe(
          Effect.mapError(deploymentError),
          Effect.flatMap((ds) => listDoc(ds.map(deploymentDoc)))
        )
      )
      .handle("serviceLogs", ({ path, urlParams }) =>
        services.logs(path.serviceId, { follow: false, tail: urlParams.tail ?? 100 }).pipe(
          Stream.runCollect,
          Effect.mapError(deployError),
          Effect.flatMap((lines) => listDoc([...lines].map(logLineDoc)))
        )
      )
      .handle("rollback", ({ path, payload }) =>
        app.rollback(path.serviceId, payload.data.attributes.to).pipe(
          Effect.mapError(deploymentError),
          Effect.map(({ deployment }) => ({ data: deploymentDoc(deployment) }))
        )
      )
  })
)

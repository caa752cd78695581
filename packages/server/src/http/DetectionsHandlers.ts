/** REST `detections` group over the Detections application service. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { Detections } from "../application/Detections.js"
import { detectionDoc, listDoc } from "./Documents.js"
import { detectionError } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "detections", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Detections
    return handlers
      .handle("listDetections", ({ urlParams }) =>
        app.list({ service: urlParams["filter[service]"], limit: urlParams["page[size]"] ?? 50 }).pipe(
          Effect.mapError(detectionError),
          Effect.flatMap((rows) => listDoc(rows.map(detectionDoc)))
        )
      )
      .handle("getDetection", ({ path }) =>
        app.get(path.detectionId).pipe(
          Effect.mapError(detectionError),
          Effect.map((d) => ({ data: detectionDoc(d) }))
        )
      )
  })
)

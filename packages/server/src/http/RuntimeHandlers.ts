/** REST `runtime` group over the RuntimeStatus application service. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { RuntimeStatus } from "../application/RuntimeStatus.js"
import { runtimeStatusDoc } from "./Documents.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "runtime", (handlers) =>
  Effect.map(RuntimeStatus, (app) =>
    handlers.handle("runtimeStatus", () => Effect.map(app.status, (s) => ({ data: runtimeStatusDoc(s) })))
  )
)

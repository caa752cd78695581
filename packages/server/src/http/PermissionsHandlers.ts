/** REST `permissions` group (per-service grants) over the Permissions application service. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { Permissions } from "../application/Permissions.js"
import { listDoc, permissionDoc } from "./Documents.js"
import { permissionError } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "permissions", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Permissions
    return handlers
      .handle("listPermissions", ({ path }) =>
        app.list(path.serviceId).pipe(
          Effect.mapError(permissionError),
          Effect.flatMap((rows) => listDoc(rows.map(permissionDoc)))
        )
      )
      .handle("grantPermission", ({ path, payload }) =>
        app.grant(path.serviceId, payload.data.attributes).pipe(
          Effect.mapError(permissionError),
          Effect.map((granted) => ({ data: permissionDoc(granted) }))
        )
      )
      .handle("revokePermission", ({ path }) =>
        app.revoke(path.serviceId, path.permissionId).pipe(Effect.mapError(permissionError))
      )
  })
)

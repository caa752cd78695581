/** REST `teams` group over the Teams application service: decode, call, encode. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { Teams } from "../application/Teams.js"
import { apiKeyDoc, teamDoc } from "./Documents.js"
import { teamError } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "teams", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Teams
    return handlers
      .handle("currentTeam", () =>
        app.current.pipe(
          Effect.mapError(teamError),
          Effect.map((t) => ({ data: teamDoc(t) }))
        )
      )
      .handle("getTeam", ({ path }) =>
        app.own(path.teamId).pipe(
          Effect.mapError(teamError),
          Effect.map((t) => ({ data: teamDoc(t) }))
        )
      )
      .handle("createTeam", ({ payload }) =>
        app.create(payload.data.attributes.name).pipe(
          Effect.mapError(teamError),
          // The owner key of the new team is shown once, like every issued key.
          Effect.map((created) => ({
            data: teamDoc(created.team),
            meta: { ownerKey: apiKeyDoc(created.apiKey, created.key) }
          }))
        )
      )
      .handle("updateTeam", ({ path, payload }) =>
        app.setQuotas(path.teamId, payload.data.attributes).pipe(
          Effect.mapError(teamError),
          Effect.map((t) => ({ data: teamDoc(t) }))
        )
      )
  })
)

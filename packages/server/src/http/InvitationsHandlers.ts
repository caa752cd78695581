/** REST `invitations` group (the caller's own invitations) over the Members application service. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { Members } from "../application/Members.js"
import { apiKeyDoc, listDoc, memberDoc, receivedInvitationDoc, teamDoc } from "./Documents.js"
import { notFound } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "invitations", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Members
    return handlers
      .handle("listInvitations", () =>
        app.myInvitations.pipe(
          Effect.flatMap((list) =>
            listDoc(list.map(({ invitation, team }) => receivedInvitationDoc(invitation, team)))
          )
        )
      )
      .handle("acceptInvitation", ({ path }) =>
        app.accept(path.invitationId).pipe(
          Effect.mapError(() => notFound("invitation")),
          Effect.map((joined) => ({
            data: memberDoc(joined.member),
            meta: { team: teamDoc(joined.team), key: apiKeyDoc(joined.apiKey, joined.key) }
          }))
        )
      )
  })
)

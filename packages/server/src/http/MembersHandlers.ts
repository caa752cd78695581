/** REST `members` group over the Members application service: decode, call, encode. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { Members } from "../application/Members.js"
import { listDoc, memberDoc, sentInvitationDoc } from "./Documents.js"
import { memberError } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "members", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Members
    return handlers
      .handle("listMembers", () => Effect.flatMap(app.listForCaller, (ms) => listDoc(ms.map(memberDoc))))
      .handle("addMember", ({ payload }) =>
        app.add(payload.data.attributes).pipe(
          Effect.mapError(memberError),
          Effect.map((sent) => ({ data: sentInvitationDoc(sent, sent.email) }))
        )
      )
      .handle("changeRole", ({ path, payload }) =>
        app.changeRole(path.userId, payload.data.attributes.role).pipe(
          Effect.mapError(memberError),
          Effect.map((m) => ({ data: memberDoc(m) }))
        )
      )
      .handle("removeMember", ({ path }) => app.remove(path.userId).pipe(Effect.mapError(memberError)))
  })
)

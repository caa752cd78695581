/**
 * API keys, one policy for every front door (REST and RPC):
 * - everyone sees their own keys; admins and owners see the team's;
 * - issuing needs admin or above; for another member also rights over that member's role
 *   (an admin cannot mint keys for an owner); the member must be in the caller's team;
 * - anyone may revoke their own key; other people's need admin or above. Another team's key, an
 *   unknown one and an already revoked one are all ApiKeyNotFound.
 * Revocation also ends the key's open streams at once.
 */
import type { ApiKey } from "@kyozo/api/domain/ApiKey"
import { ApiKeyId, UserId } from "@kyozo/api/domain/Ids"
import { roleAtLeast } from "@kyozo/api/domain/Membership"
import { ApiKeyNotFound, CurrentPrincipal, Forbidden, MemberNotFound } from "@kyozo/api/KyozoRpc"
import { ApiKeyRepo } from "@kyozo/core/store/ApiKeyRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { Effect, Option } from "effect"

import { KeySessions } from "../KeySessions.js"
import { canAssignRole, requireRole } from "../Policy.js"
import { repository } from "./Storage.js"

export interface IssueKey {
  readonly name?: string | undefined
  readonly expiresInSeconds?: number | undefined
  readonly userId?: string | undefined
}

export class ApiKeys extends Effect.Service<ApiKeys>()("@kyozo/server/application/ApiKeys", {
  effect: Effect.gen(function* () {
    const keys = yield* repository(ApiKeyRepo)
    const teams = yield* repository(TeamRepo)
    const sessions = yield* KeySessions

    const list: Effect.Effect<ReadonlyArray<ApiKey>, never, CurrentPrincipal> = Effect.gen(function* () {
      const p = yield* CurrentPrincipal
      const all = yield* keys.listByTeam(p.teamId)
      return roleAtLeast(p.role, "admin") ? all : all.filter((k) => k.userId === p.userId)
    })

    const issue = (
      input: IssueKey
    ): Effect.Effect<
      { readonly apiKey: ApiKey; readonly key: string },
      Forbidden | MemberNotFound,
      CurrentPrincipal
    > =>
      Effect.gen(function* () {
        const p = yield* requireRole("issue API keys", "admin")
        const owner = input.userId === undefined ? p.userId : UserId.make(input.userId)
        if (owner !== p.userId) {
          const role = yield* teams.roleOf(p.teamId, owner)
          if (Option.isNone(role)) return yield* new MemberNotFound({ userId: owner })
          if (!canAssignRole(p, role.value))
            return yield* new Forbidden({
              operation: `issue keys for a ${role.value}`,
              role: p.role,
              required: role.value
            })
        }
        const expiresAt =
          input.expiresInSeconds === undefined ? null : new Date(Date.now() + input.expiresInSeconds * 1000)
        return yield* keys.issue({ teamId: p.teamId, userId: owner, name: input.name ?? "", expiresAt })
      })

    const revoke = (keyId: string): Effect.Effect<void, Forbidden | ApiKeyNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const p = yield* CurrentPrincipal
        const key = yield* keys.findById(p.teamId, ApiKeyId.make(keyId))
        if (Option.isNone(key) || key.value.revokedAt !== null) return yield* new ApiKeyNotFound({ keyId })
        if (key.value.userId !== p.userId) yield* requireRole("revoke other people's API keys", "admin")
        const revoked = yield* keys.revoke(p.teamId, key.value.id)
        if (!revoked) return yield* new ApiKeyNotFound({ keyId })
        yield* sessions.end(key.value.id)
      })

    return { list, issue, revoke } as const
  }),
  dependencies: [ApiKeyRepo.Default, TeamRepo.Default]
}) {}

/**
 * Teams, the rules every front door (REST, RPC, CLI) calls. Only instance admins create teams and
 * change quotas; everyone else sees only their own team: another team's id is TeamNotFound, the
 * same as an id that does not exist. New teams get the configured default quotas.
 * Storage errors are defects here, once; failures are the typed domain errors of the contract.
 */
import type { ApiKey } from "@kyozo/api/domain/ApiKey"
import type { TeamId, UserId } from "@kyozo/api/domain/Ids"
import type { Team } from "@kyozo/api/domain/Team"
import {
  CurrentPrincipal,
  InstanceAdminRequired,
  TeamNotFound,
  UserNotFound,
  type WhoAmIView
} from "@kyozo/api/KyozoRpc"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { ApiKeyRepo } from "@kyozo/core/store/ApiKeyRepo"
import { TeamNameTaken, TeamRepo } from "@kyozo/core/store/TeamRepo"
import { UserRepo } from "@kyozo/core/store/UserRepo"
import { Effect, Option } from "effect"

import { repository } from "./Storage.js"

export interface QuotaChange {
  readonly quotaServices?: number | undefined
  readonly quotaCpuMillis?: number | undefined
  readonly quotaMemoryMb?: number | undefined
}

export class Teams extends Effect.Service<Teams>()("@kyozo/server/application/Teams", {
  effect: Effect.gen(function* () {
    const teams = yield* repository(TeamRepo)
    const users = yield* repository(UserRepo)
    const keys = yield* repository(ApiKeyRepo)
    const config = yield* KyozoConfig

    /** Whether the caller is an instance admin. */
    const isInstanceAdmin = Effect.flatMap(CurrentPrincipal, (p) => users.isInstanceAdmin(p.userId))

    const requireInstanceAdmin = (operation: string) =>
      Effect.flatMap(isInstanceAdmin, (yes) =>
        yes ? Effect.void : Effect.fail(new InstanceAdminRequired({ operation }))
      )

    /** A team the caller may see: their own, or any for an instance admin. */
    const visible = (teamId: string): Effect.Effect<Team, TeamNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const p = yield* CurrentPrincipal
        if (teamId !== p.teamId && !(yield* isInstanceAdmin)) return yield* new TeamNotFound({ teamId })
        const found = yield* teams.findById(teamId as TeamId)
        if (Option.isNone(found)) return yield* new TeamNotFound({ teamId })
        return found.value
      })

    /** A team by id, only the caller's own (even for instance admins): any other id is TeamNotFound. */
    const own = (teamId: string): Effect.Effect<Team, TeamNotFound, CurrentPrincipal> =>
      Effect.flatMap(CurrentPrincipal, (p) =>
        teamId === p.teamId ? visible(teamId) : Effect.fail(new TeamNotFound({ teamId }))
      )

    /** The caller's own team. */
    const current = Effect.flatMap(CurrentPrincipal, (p) => visible(p.teamId))

    /** A new team (instance admins only), the caller its owner, with an owner key shown once. */
    const create = (
      name: string
    ): Effect.Effect<
      { readonly team: Team; readonly apiKey: ApiKey; readonly key: string },
      InstanceAdminRequired | TeamNameTaken,
      CurrentPrincipal
    > =>
      Effect.gen(function* () {
        yield* requireInstanceAdmin("create teams")
        const p = yield* CurrentPrincipal
        const team = yield* teams.create({ name, ...config.defaultQuotas })
        yield* teams.addMember(team.id, p.userId, "owner")
        const issued = yield* keys.issue({ teamId: team.id, userId: p.userId, name: "team owner" })
        return { team, ...issued }
      })

    /**
     * Changes a team's quotas. Another team is TeamNotFound for anyone but an instance admin
     * (nothing is confirmed about it); on their own team, non-admins get InstanceAdminRequired.
     */
    const setQuotas = (
      teamId: string,
      change: QuotaChange
    ): Effect.Effect<Team, InstanceAdminRequired | TeamNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        yield* visible(teamId)
        yield* requireInstanceAdmin("change team quotas")
        const updated = yield* teams.setQuotas(teamId as TeamId, {
          ...(change.quotaServices === undefined ? {} : { quotaServices: change.quotaServices }),
          ...(change.quotaCpuMillis === undefined ? {} : { quotaCpuMillis: change.quotaCpuMillis }),
          ...(change.quotaMemoryMb === undefined ? {} : { quotaMemoryMb: change.quotaMemoryMb })
        })
        if (Option.isNone(updated)) return yield* new TeamNotFound({ teamId })
        return updated.value
      })

    /** Instance admins make others instance admins (or take it back; never from themselves). */
    const setInstanceAdmin = (
      userId: string,
      value: boolean
    ): Effect.Effect<void, InstanceAdminRequired | UserNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        yield* requireInstanceAdmin("make instance admins")
        const p = yield* CurrentPrincipal
        if (userId === p.userId && !value)
          return yield* new InstanceAdminRequired({ operation: "demote yourself" })
        const changed = yield* users.setInstanceAdmin(userId as UserId, value)
        if (!changed) return yield* new UserNotFound({ userId })
      })

    /** Who the caller is: their key's principal, with their email, team name and instance-admin flag. */
    const whoAmI: Effect.Effect<WhoAmIView, never, CurrentPrincipal> = Effect.gen(function* () {
      const p = yield* CurrentPrincipal
      const user = yield* users.findById(p.userId)
      const team = yield* teams.findById(p.teamId)
      return {
        ...p,
        email: Option.match(user, { onNone: () => "", onSome: (u) => u.email }),
        teamName: Option.match(team, { onNone: () => "", onSome: (t) => t.name }),
        instanceAdmin: Option.match(user, { onNone: () => false, onSome: (u) => u.instanceAdmin })
      }
    })

    return {
      whoAmI,
      isInstanceAdmin,
      requireInstanceAdmin,
      visible,
      own,
      current,
      create,
      setQuotas,
      setInstanceAdmin
    } as const
  }),
  dependencies: [TeamRepo.Default, UserRepo.Default, ApiKeyRepo.Default]
}) {}

/**
 * Per-service grants, the rules every front door calls: every member reads a service's grants;
 * granting and revoking need `admin` on that service (owners and admins by role, others by an
 * `admin` grant on it). Grants go to members of the team only. A grant only adds to what the
 * member's role implies (Policy). Another team's service is ServiceNotFound before any right is
 * looked at.
 */
import { ServiceNotFound } from "@kyozo/api/domain/Deploy"
import { PermissionId, UserId } from "@kyozo/api/domain/Ids"
import type { Permission, ServicePermission } from "@kyozo/api/domain/ServicePermission"
import type { CurrentPrincipal, Forbidden } from "@kyozo/api/KyozoRpc"
import { PermissionRepo } from "@kyozo/core/store/PermissionRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { Data, Effect, Option } from "effect"

import { Policy } from "../Policy.js"
import { repository } from "./Storage.js"

/** The grantee is not a member of the caller's team. */
export class NotAMember extends Data.TaggedError("NotAMember")<{ readonly userId: string }> {
  override get message() {
    return "Grants go to members of your team: add them first (POST /v1/members)."
  }
}

export class PermissionNotFound extends Data.TaggedError("PermissionNotFound")<{
  readonly permissionId: string
}> {
  override get message() {
    return "No such grant on this service: list them with GET /v1/services/{id}/permissions."
  }
}

export class Permissions extends Effect.Service<Permissions>()("@kyozo/server/application/Permissions", {
  effect: Effect.gen(function* () {
    const permissions = yield* repository(PermissionRepo)
    const teams = yield* repository(TeamRepo)
    const policy = yield* Policy

    /** Everyone's grants on a service of the caller's team. */
    const list = (
      service: string
    ): Effect.Effect<ReadonlyArray<ServicePermission>, ServiceNotFound, CurrentPrincipal> =>
      Effect.flatMap(policy.viewService(service), ({ principal, service: found }) =>
        permissions.listForService(principal.teamId, found.id)
      )

    const grant = (
      service: string,
      input: { readonly userId: string; readonly permission: Permission }
    ): Effect.Effect<ServicePermission, Forbidden | ServiceNotFound | NotAMember, CurrentPrincipal> =>
      Effect.gen(function* () {
        const { principal, service: found } = yield* policy.requireService(
          "grant permissions",
          service,
          "admin"
        )
        const userId = UserId.make(input.userId)
        const member = yield* teams.roleOf(principal.teamId, userId)
        if (Option.isNone(member)) return yield* new NotAMember({ userId: input.userId })
        const granted = yield* permissions.grant({
          teamId: principal.teamId,
          serviceId: found.id,
          userId,
          permission: input.permission,
          grantedBy: principal.userId
        })
        // The service went away between the check and the insert.
        if (Option.isNone(granted)) return yield* new ServiceNotFound({ service })
        return granted.value
      })

    const revoke = (
      service: string,
      permissionId: string
    ): Effect.Effect<void, Forbidden | ServiceNotFound | PermissionNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const { principal, service: found } = yield* policy.requireService(
          "revoke permissions",
          service,
          "admin"
        )
        const rows = yield* permissions.listForService(principal.teamId, found.id)
        const grant = rows.find((r) => r.id === PermissionId.make(permissionId))
        if (grant === undefined) return yield* new PermissionNotFound({ permissionId })
        yield* permissions.revoke(principal.teamId, found.id, grant.userId, grant.permission)
      })

    return { list, grant, revoke } as const
  }),
  dependencies: [PermissionRepo.Default, TeamRepo.Default, Policy.Default]
}) {}

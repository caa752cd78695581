/**
 * Who may do what: the one policy module behind both front doors (REST handlers and RPC handlers).
 *
 * A team role implies a permission on every service of the team (owner/admin → admin,
 * member → manage, viewer → view); per-service grants (service_permissions) only add to it, so a
 * viewer with a `deploy` grant on one service may deploy that one. What each permission allows:
 * view → read; deploy → deploy, roll back, start/stop/restart; manage → change settings, delete;
 * admin → grant and revoke permissions on the service.
 *
 * Object-level checks resolve the service inside the caller's team first: another team's id fails
 * exactly like an id that does not exist, before any role is looked at.
 */
import { ServiceNotFound } from "@kyozo/api/domain/Deploy"
import { ServiceId } from "@kyozo/api/domain/Ids"
import { type Role, roleAtLeast } from "@kyozo/api/domain/Membership"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import { type Permission, permissionAtLeast } from "@kyozo/api/domain/ServicePermission"
import { CurrentPrincipal, Forbidden, type Principal } from "@kyozo/api/KyozoRpc"
import { PermissionRepo } from "@kyozo/core/store/PermissionRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { Effect, Option } from "effect"

/** The permission a team role carries on every service of its team. */
export const impliedPermission = (role: Role): Permission =>
  role === "owner" || role === "admin" ? "admin" : role === "member" ? "manage" : "view"

/** The lowest team role that carries `permission` (what a Forbidden error names). */
export const roleFor = (permission: Permission): Role =>
  permission === "admin" ? "admin" : permission === "view" ? "viewer" : "member"

const highest = (a: Permission, b: Permission): Permission => (permissionAtLeast(a, b) ? a : b)

/** What a permission on a service lets its holder do: what clients show as controls. */
export interface Capabilities {
  /** Redeploy, roll back, stop/start/restart. */
  readonly deploy: boolean
  /** Change settings (limits, env, replicas, autoscale), delete. */
  readonly manage: boolean
  /** Grant and revoke permissions on the service. */
  readonly admin: boolean
}

export const capabilitiesOf = (permission: Permission): Capabilities => ({
  deploy: permissionAtLeast(permission, "deploy"),
  manage: permissionAtLeast(permission, "manage"),
  admin: permissionAtLeast(permission, "admin")
})

/** A team-level check: the caller's role must be at least `required`. */
export const requireRole = (operation: string, required: Role = "member") =>
  Effect.flatMap(CurrentPrincipal, (principal) =>
    roleAtLeast(principal.role, required)
      ? Effect.succeed(principal)
      : Effect.fail(new Forbidden({ operation, role: principal.role, required }))
  )

/** May this principal add or change a member to `role`? Only owners make owners; admins up to admin. */
export const canAssignRole = (principal: Principal, role: Role): boolean =>
  roleAtLeast(principal.role, "admin") && roleAtLeast(principal.role, role)

export class Policy extends Effect.Service<Policy>()("@kyozo/server/Policy", {
  effect: Effect.gen(function* () {
    const services = yield* ServiceRepo
    const permissions = yield* PermissionRepo

    /** A service of the caller's team by id or name; none for another team's or unknown ones. */
    const findService = (principal: Principal, service: string) =>
      Effect.gen(function* () {
        const byId = yield* services.findById(principal.teamId, ServiceId.make(service))
        if (Option.isSome(byId)) return byId
        return yield* services.findByName(principal.teamId, service)
      }).pipe(Effect.orDie)

    /** The caller's effective permission on a service of its team: role, raised by grants. */
    const permissionOn = (principal: Principal, service: ServiceInstance) =>
      permissions.listFor(principal.teamId, principal.userId, service.id).pipe(
        Effect.orDie,
        Effect.map((grants) =>
          grants.reduce((acc, g) => highest(acc, g.permission), impliedPermission(principal.role))
        )
      )

    /**
     * Resolves `service` in the caller's team and checks `required` on it. Unknown or foreign:
     * ServiceNotFound (never Forbidden, which would confirm the id exists).
     */
    const requireService = (operation: string, service: string, required: Permission) =>
      Effect.gen(function* () {
        const principal = yield* CurrentPrincipal
        const found = yield* findService(principal, service)
        if (Option.isNone(found)) return yield* new ServiceNotFound({ service })
        const granted = yield* permissionOn(principal, found.value)
        if (!permissionAtLeast(granted, required))
          return yield* new Forbidden({ operation, role: principal.role, required: roleFor(required) })
        return { principal, service: found.value, permission: granted }
      })

    /**
     * Resolves `service` in the caller's team for reading. Every team role carries `view` on every
     * service of its team (impliedPermission), so reading needs only the service to be the team's:
     * unknown or foreign is ServiceNotFound, and no Forbidden can arise.
     */
    const viewService = (service: string) =>
      Effect.gen(function* () {
        const principal = yield* CurrentPrincipal
        const found = yield* findService(principal, service)
        if (Option.isNone(found)) return yield* new ServiceNotFound({ service })
        return { principal, service: found.value }
      })

    /**
     * A deploy by name: team members and above always; others only when the name is an existing
     * service of theirs on which they hold `deploy`.
     */
    const requireDeploy = (name: string | undefined) =>
      Effect.gen(function* () {
        const principal = yield* CurrentPrincipal
        if (roleAtLeast(principal.role, "member")) return principal
        if (name !== undefined) {
          const found = yield* findService(principal, name)
          if (Option.isSome(found)) {
            const granted = yield* permissionOn(principal, found.value)
            if (permissionAtLeast(granted, "deploy")) return principal
          }
        }
        return yield* new Forbidden({ operation: "deploy", role: principal.role, required: "member" })
      })

    return { findService, permissionOn, requireService, viewService, requireDeploy } as const
  }),
  dependencies: [ServiceRepo.Default, PermissionRepo.Default]
}) {}

/** A per-service grant to a user, on top of the team role. Permissions are ordered: admin > manage > deploy > view. */
import { Schema } from "effect"

import { PermissionId, ServiceId, UserId } from "./Ids.js"

export const Permission = Schema.Literal("view", "deploy", "manage", "admin")
export type Permission = typeof Permission.Type

const rank: Record<Permission, number> = { admin: 3, manage: 2, deploy: 1, view: 0 }

/** True when `granted` includes what `required` needs. */
export const permissionAtLeast = (granted: Permission, required: Permission): boolean =>
  rank[granted] >= rank[required]

export class ServicePermission extends Schema.Class<ServicePermission>("ServicePermission")({
  id: PermissionId,
  serviceId: ServiceId,
  userId: UserId,
  permission: Permission,
  grantedBy: Schema.NullOr(UserId),
  createdAt: Schema.DateFromSelf
}) {}

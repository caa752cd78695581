/** A user's role in a team. Roles are ordered: owner > admin > member > viewer. */
import { Schema } from "effect"

import { TeamId, UserId } from "./Ids.js"

export const Role = Schema.Literal("owner", "admin", "member", "viewer")
export type Role = typeof Role.Type

const rank: Record<Role, number> = { owner: 3, admin: 2, member: 1, viewer: 0 }

/** True when `role` grants at least what `required` grants. */
export const roleAtLeast = (role: Role, required: Role): boolean => rank[role] >= rank[required]

export class Membership extends Schema.Class<Membership>("Membership")({
  teamId: TeamId,
  userId: UserId,
  role: Role,
  createdAt: Schema.DateFromSelf
}) {}

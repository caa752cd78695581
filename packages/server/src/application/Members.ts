/**
 * Members of a team, the rules every front door calls:
 * - admins and owners add, change and remove members, up to their own role (Policy.canAssignRole);
 *   a team keeps at least one owner;
 * - a new email becomes a user and a member at once; a user who already exists (in another team)
 *   joins only by accepting an invitation, unless an instance admin adds them. Until then the
 *   team's member list shows them as `pending` (their e-mail and the invited role, so whoever was
 *   added is listed at once either way); changing a pending one's role re-invites, removing one
 *   withdraws the invitation. Nothing of that user's other teams (the name they gave it, their
 *   teams) is shown to the inviting team;
 * - removing a member revokes every key they hold in the team and ends their open streams, so a
 *   later re-add does not bring an old key back.
 */
import type { ApiKey } from "@kyozo/api/domain/ApiKey"
import { type TeamId, UserId } from "@kyozo/api/domain/Ids"
import type { Role } from "@kyozo/api/domain/Membership"
import type { Team } from "@kyozo/api/domain/Team"
import { CurrentPrincipal, type Forbidden, MemberNotFound } from "@kyozo/api/KyozoRpc"
import { ApiKeyRepo } from "@kyozo/core/store/ApiKeyRepo"
import { type Invitation, InvitationRepo } from "@kyozo/core/store/InvitationRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { UserRepo } from "@kyozo/core/store/UserRepo"
import { Data, Effect, Option } from "effect"

import { KeySessions } from "../KeySessions.js"
import { canAssignRole, requireRole } from "../Policy.js"
import { repository } from "./Storage.js"
import { Teams } from "./Teams.js"

export class AlreadyMember extends Data.TaggedError("AlreadyMember")<{}> {}
export class LastOwner extends Data.TaggedError("LastOwner")<{}> {}
export class InvitationNotFound extends Data.TaggedError("InvitationNotFound")<{ readonly id: string }> {}
export class RoleNotAssignable extends Data.TaggedError("RoleNotAssignable")<{
  readonly role: Role
  readonly callerRole: Role
  readonly action: "make" | "change" | "remove"
}> {}

export interface MemberView {
  /**
   * What clients address it by: the user's id, or for a pending one the invitation's id (a user's
   * id, shared by all their teams, is not the inviting team's to learn before they join).
   */
  readonly id: string
  readonly userId: UserId
  readonly email: string
  readonly name: string
  readonly role: Role
  readonly createdAt: Date
  /** `pending`: invited, not accepted yet (no key can be issued to them in this team). */
  readonly state: "active" | "pending"
}

/**
 * What adding someone by e-mail answers, the same whether the e-mail had an account or not (so the
 * answer reveals nothing about other teams' users): an invitation. A person with no account is a
 * member at once (so an admin can issue their first key); one with an account joins on accepting.
 */
export interface AddOutcome {
  readonly id: string
  readonly email: string
  readonly role: Role
  readonly createdAt: Date
}

export class Members extends Effect.Service<Members>()("@kyozo/server/application/Members", {
  effect: Effect.gen(function* () {
    const teams = yield* repository(TeamRepo)
    const users = yield* repository(UserRepo)
    const keys = yield* repository(ApiKeyRepo)
    const invitations = yield* repository(InvitationRepo)
    const sessions = yield* KeySessions
    const teamsApp = yield* Teams

    const list = (teamId: TeamId): Effect.Effect<ReadonlyArray<MemberView>> =>
      Effect.gen(function* () {
        const members = yield* teams.listMembers(teamId)
        const people = new Map((yield* users.listByTeam(teamId)).map((u) => [u.id, u]))
        return members.map((m) => ({
          id: m.userId,
          userId: m.userId,
          email: people.get(m.userId)?.email ?? "",
          name: people.get(m.userId)?.name ?? "",
          role: m.role,
          createdAt: m.createdAt,
          state: "active" as const
        }))
      })

    /** Those invited who have not accepted yet: the e-mail and role the team gave, nothing of theirs. */
    const pending = (teamId: TeamId): Effect.Effect<ReadonlyArray<MemberView>> =>
      Effect.gen(function* () {
        const out: Array<MemberView> = []
        for (const inv of yield* invitations.listForTeam(teamId)) {
          const user = yield* users.findById(inv.userId)
          if (Option.isNone(user)) continue
          out.push({
            id: inv.id,
            userId: inv.userId,
            email: user.value.email,
            name: "",
            role: inv.role,
            createdAt: inv.createdAt,
            state: "pending"
          })
        }
        return out
      })

    /** The members of the caller's team, then those it invited who have not accepted yet. */
    const listForCaller: Effect.Effect<ReadonlyArray<MemberView>, never, CurrentPrincipal> = Effect.flatMap(
      CurrentPrincipal,
      (p) =>
        Effect.map(Effect.all([list(p.teamId), pending(p.teamId)]), ([active, invited]) => [
          ...active,
          ...invited
        ])
    )

    /** The team's pending invitation by its id, as a member view; MemberNotFound when none. */
    const onePending = (teamId: TeamId, id: string) =>
      Effect.flatMap(pending(teamId), (ms) =>
        Option.match(Option.fromNullable(ms.find((m) => m.id === id)), {
          onNone: () => Effect.fail(new MemberNotFound({ userId: id })),
          onSome: Effect.succeed
        })
      )

    const one = (teamId: TeamId, userId: UserId) =>
      Effect.flatMap(list(teamId), (ms) =>
        Option.match(Option.fromNullable(ms.find((m) => m.userId === userId)), {
          onNone: () => Effect.fail(new MemberNotFound({ userId })),
          onSome: Effect.succeed
        })
      )

    const owners = (teamId: TeamId) =>
      Effect.map(teams.listMembers(teamId), (ms) => ms.filter((m) => m.role === "owner").length)

    const add = (input: {
      readonly email: string
      readonly name?: string | undefined
      readonly role: Role
    }): Effect.Effect<AddOutcome, Forbidden | RoleNotAssignable | AlreadyMember, CurrentPrincipal> =>
      Effect.gen(function* () {
        const p = yield* requireRole("add members", "admin")
        if (!canAssignRole(p, input.role))
          return yield* new RoleNotAssignable({ role: input.role, callerRole: p.role, action: "make" })
        const sent = (invitation: Invitation): AddOutcome => ({
          id: invitation.id,
          email: input.email,
          role: invitation.role,
          createdAt: invitation.createdAt
        })
        // Invited and accepted at once: the answer is the invitation, like any other.
        const joined = (userId: UserId) =>
          Effect.gen(function* () {
            const invitation = yield* invitations
              .invite({ teamId: p.teamId, userId, role: input.role, invitedBy: p.userId })
              .pipe(Effect.orDie)
            yield* invitations.take(userId, invitation.id).pipe(Effect.orDie)
            yield* teams.addMember(p.teamId, userId, input.role).pipe(Effect.orDie)
            return sent(invitation)
          })
        const existing = yield* users.findByEmail(input.email).pipe(Effect.orDie)
        if (Option.isNone(existing)) {
          const user = yield* users.create({ email: input.email, name: input.name ?? "" }).pipe(
            // A concurrent add created it first: use that one.
            Effect.catchTag("EmailTaken", () =>
              users.findByEmail(input.email).pipe(Effect.flatMap((f) => f))
            ),
            Effect.orDie
          )
          return yield* joined(user.id)
        }
        const user = existing.value
        if (Option.isSome(yield* teams.roleOf(p.teamId, user.id).pipe(Effect.orDie)))
          return yield* new AlreadyMember()
        if (yield* teamsApp.isInstanceAdmin) return yield* joined(user.id)
        const invitation = yield* invitations
          .invite({ teamId: p.teamId, userId: user.id, role: input.role, invitedBy: p.userId })
          .pipe(Effect.orDie)
        return sent(invitation)
      })

    const changeRole = (
      userId: string,
      role: Role
    ): Effect.Effect<MemberView, MemberNotFound | RoleNotAssignable | LastOwner, CurrentPrincipal> =>
      Effect.gen(function* () {
        const p = yield* CurrentPrincipal
        const current = yield* one(p.teamId, UserId.make(userId)).pipe(
          Effect.catchTag("MemberNotFound", () => onePending(p.teamId, userId))
        )
        // Changing someone needs rights over both the old and the new role.
        if (!canAssignRole(p, role) || !canAssignRole(p, current.role))
          return yield* new RoleNotAssignable({ role, callerRole: p.role, action: "change" })
        // Not accepted yet: the invitation now offers the new role.
        if (current.state === "pending") {
          yield* invitations.invite({ teamId: p.teamId, userId: current.userId, role, invitedBy: p.userId })
          return yield* onePending(p.teamId, current.id)
        }
        if (current.role === "owner" && role !== "owner" && (yield* owners(p.teamId)) <= 1)
          return yield* new LastOwner()
        yield* teams.addMember(p.teamId, current.userId, role)
        return yield* one(p.teamId, current.userId)
      })

    const remove = (
      userId: string
    ): Effect.Effect<void, MemberNotFound | RoleNotAssignable | LastOwner, CurrentPrincipal> =>
      Effect.gen(function* () {
        const p = yield* CurrentPrincipal
        const current = yield* one(p.teamId, UserId.make(userId)).pipe(
          Effect.catchTag("MemberNotFound", () => onePending(p.teamId, userId))
        )
        if (!canAssignRole(p, current.role))
          return yield* new RoleNotAssignable({ role: current.role, callerRole: p.role, action: "remove" })
        // Not accepted yet: the invitation is withdrawn (they hold no key of the team).
        if (current.state === "pending") {
          yield* invitations.withdraw(p.teamId, current.userId)
          return
        }
        if (current.role === "owner" && (yield* owners(p.teamId)) <= 1) return yield* new LastOwner()
        yield* teams.removeMember(p.teamId, current.userId)
        // Their keys die with the membership (and their open streams end now).
        const revoked = yield* keys.revokeAllOf(p.teamId, current.userId)
        for (const id of revoked) yield* sessions.end(id)
      })

    /** The caller's invitations, with the inviting team's name (theirs to know). */
    const myInvitations: Effect.Effect<
      ReadonlyArray<{ readonly invitation: Invitation; readonly team: Team }>,
      never,
      CurrentPrincipal
    > = Effect.gen(function* () {
      const p = yield* CurrentPrincipal
      const mine = yield* invitations.listForUser(p.userId)
      const out: Array<{ invitation: Invitation; team: Team }> = []
      for (const invitation of mine) {
        const team = yield* teams.findById(invitation.teamId)
        if (Option.isSome(team)) out.push({ invitation, team: team.value })
      }
      return out
    })

    /** Accepts one of the caller's invitations: they join with its role and get a key for that team. */
    const accept = (
      id: string
    ): Effect.Effect<
      {
        readonly team: Team
        readonly member: MemberView
        readonly apiKey: ApiKey
        readonly key: string
        readonly role: Role
      },
      InvitationNotFound,
      CurrentPrincipal
    > =>
      Effect.gen(function* () {
        const p = yield* CurrentPrincipal
        const taken = yield* invitations.take(p.userId, id)
        if (Option.isNone(taken)) return yield* new InvitationNotFound({ id })
        const inv = taken.value
        const team = yield* teams.findById(inv.teamId)
        if (Option.isNone(team)) return yield* new InvitationNotFound({ id })
        yield* teams.addMember(inv.teamId, p.userId, inv.role)
        const issued = yield* keys.issue({ teamId: inv.teamId, userId: p.userId, name: "invitation" })
        // Just added: its absence would be a bug, not the caller's error.
        const member = yield* one(inv.teamId, p.userId).pipe(Effect.orDie)
        return { team: team.value, member, ...issued, role: inv.role }
      })

    return { list, listForCaller, add, changeRole, remove, myInvitations, accept } as const
  }),
  dependencies: [
    TeamRepo.Default,
    UserRepo.Default,
    ApiKeyRepo.Default,
    InvitationRepo.Default,
    Teams.Default
  ]
}) {}

/**
 * The policy matrix against the application services themselves (no HTTP, no RPC): who may do
 * what among owner/admin/member/viewer, and per-service grants that raise one user's rights on one
 * service only. REST and RPC run the same matrix through their doors (roles.test.ts); this one shows
 * the rule lives in the services. "allowed" means anything but Forbidden (a later domain failure,
 * such as no rollback target, still means the policy let the call through); "denied" means exactly
 * Forbidden. Another team's caller meets ServiceNotFound, never Forbidden.
 *
 * Built over each database (PGlite; PostgreSQL with DATABASE_URL) and the mock runtime: the
 * Deployer is the real one.
 */
import * as fs from "node:fs"
import * as path from "node:path"

import { describe, expect, it } from "@effect/vitest"
import { makeTeamId, type ServiceId, type TeamId } from "@kyozo/api/domain/Ids"
import type { Role } from "@kyozo/api/domain/Membership"
import { CurrentPrincipal, type Principal } from "@kyozo/api/KyozoRpc"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import * as InProcessEdge from "@kyozo/core/edge/InProcessEdge"
import * as MockRuntime from "@kyozo/core/engine/MockRuntime"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { ApiKeyRepo } from "@kyozo/core/store/ApiKeyRepo"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { PermissionRepo } from "@kyozo/core/store/PermissionRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { TopologyRepo } from "@kyozo/core/store/TopologyRepo"
import { UserRepo } from "@kyozo/core/store/UserRepo"
import { Alerts } from "@kyozo/server/application/Alerts"
import { ApiKeys } from "@kyozo/server/application/ApiKeys"
import { Deployments } from "@kyozo/server/application/Deployments"
import { Insights } from "@kyozo/server/application/Insights"
import { Members } from "@kyozo/server/application/Members"
import { Permissions } from "@kyozo/server/application/Permissions"
import { Services } from "@kyozo/server/application/Services"
import { Webhooks } from "@kyozo/server/application/Webhooks"
import { KeySessions } from "@kyozo/server/KeySessions"
import * as DeployerLive from "@kyozo/workers/deploy/DeployerLive"
import * as DurableEngine from "@kyozo/workers/deploy/DurableEngine"
import { Cause, Effect, Exit, Layer, Option } from "effect"

import { databases, makeTempDir, type TestDatabase } from "./support/database.js"

const dataDir = makeTempDir("kyozo-app-policy-")
// Sources and Teams read the data dir from KyozoConfig (the environment), as the server does.
process.env.KYOZO_DATA_DIR = dataDir

const Repos = Layer.mergeAll(
  ServiceRepo.Default,
  DeploymentRepo.Default,
  DeploymentEventRepo.Default,
  TopologyRepo.Default,
  TeamRepo.Default,
  UserRepo.Default,
  ApiKeyRepo.Default,
  PermissionRepo.Default
)

const appOver = (database: TestDatabase["layer"]) =>
  Layer.mergeAll(
    Services.Default,
    Deployments.Default,
    Permissions.Default,
    Alerts.Default,
    Webhooks.Default,
    Members.Default,
    ApiKeys.Default,
    Insights.Default
  ).pipe(
    Layer.provideMerge(
      DeployerLive.layerAll({
        dataDir,
        // Where Sources resolves a team's folders: the deployer reads them from the same root.
        workspacesRoot: path.resolve(dataDir, "workspaces"),
        settings: { probe: () => Effect.succeed(true), healthTimeout: "1 second" }
      })
    ),
    Layer.provideMerge(
      Layer.mergeAll(
        ImageBuilder.Default,
        InProcessEdge.layer({ reason: "test" }),
        Repos,
        KeySessions.Default
      )
    ),
    Layer.provideMerge(KyozoConfig.Default),
    Layer.provideMerge(DurableEngine.layerTest),
    Layer.provideMerge(MockRuntime.layer),
    Layer.provideMerge(database),
    Layer.orDie
  )

type Who = "owner" | "admin" | "member" | "viewer" | "viewerDeployS1" | "memberAdminS1"
const WHO: ReadonlyArray<Who> = ["owner", "admin", "member", "viewer", "viewerDeployS1", "memberAdminS1"]
const ROLE: Record<Who, Role> = {
  owner: "owner",
  admin: "admin",
  member: "member",
  viewer: "viewer",
  viewerDeployS1: "viewer",
  memberAdminS1: "member"
}
const ADMINS: ReadonlyArray<Who> = ["owner", "admin"]
const MEMBERS: ReadonlyArray<Who> = ["owner", "admin", "member", "memberAdminS1"]

interface World {
  readonly teamId: TeamId
  readonly principals: Record<Who, Principal>
  readonly outsider: Principal
  readonly s1: ServiceId
  readonly s2: ServiceId
}

/** A user of `role` in `teamId` with a key: the principal the auth middleware would provide. */
const principalIn = (teamId: TeamId, role: Role, name: string) =>
  Effect.gen(function* () {
    const user = yield* (yield* UserRepo).create({ email: `${name}@example.test`, name })
    yield* (yield* TeamRepo).addMember(teamId, user.id, role)
    const { apiKey } = yield* (yield* ApiKeyRepo).issue({ teamId, userId: user.id, name })
    return { teamId, userId: user.id, role, keyId: apiKey.id } satisfies Principal
  })

const world = Effect.gen(function* () {
  const teams = yield* TeamRepo
  const services = yield* ServiceRepo
  const permissions = yield* PermissionRepo
  const teamId = makeTeamId()
  yield* teams.create({ id: teamId, name: `policy-${teamId}` })
  const principals = {} as Record<Who, Principal>
  for (const who of WHO) principals[who] = yield* principalIn(teamId, ROLE[who], `${who}-${teamId}`)
  const other = makeTeamId()
  yield* teams.create({ id: other, name: `other-${other}` })
  const outsider = yield* principalIn(other, "owner", `outsider-${other}`)
  const s1 = (yield* services.create({ teamId, name: "s-one" })).id
  const s2 = (yield* services.create({ teamId, name: "s-two" })).id
  for (const [who, permission] of [
    ["viewerDeployS1", "deploy"],
    ["memberAdminS1", "admin"]
  ] as const)
    yield* permissions.grant({ teamId, serviceId: s1, userId: principals[who].userId, permission })
  return { teamId, principals, outsider, s1, s2 } satisfies World
}).pipe(Effect.orDie)

/** What a call came to: "ok", the tag of its typed failure; a defect fails the test. */
const outcome = <A, E extends { readonly _tag: string }, R>(
  principal: Principal,
  effect: Effect.Effect<A, E, R | CurrentPrincipal>
) =>
  Effect.flatMap(Effect.exit(Effect.provideService(effect, CurrentPrincipal, principal)), (exit) =>
    Exit.isSuccess(exit)
      ? Effect.succeed("ok")
      : Option.match(Cause.failureOption(exit.cause), {
          onNone: () => Effect.dieMessage(`defect: ${Cause.pretty(exit.cause)}`),
          onSome: (e) => Effect.succeed(e._tag)
        })
  )

let n = 0
interface Action {
  readonly name: string
  readonly allowed: ReadonlyArray<Who>
  readonly run: (w: World, who: Who) => Effect.Effect<unknown, { readonly _tag: string }, any>
}

const actions: ReadonlyArray<Action> = [
  { name: "view a service", allowed: WHO, run: (w) => Effect.flatMap(Services, (s) => s.get(w.s1)) },
  {
    name: "read metrics and health",
    allowed: WHO,
    run: (w) =>
      Effect.flatMap(Insights, (i) =>
        Effect.zip(i.metrics(w.s2, "week"), i.healthHistory(w.s2, { limit: 5 }))
      )
  },
  { name: "list grants", allowed: WHO, run: (w) => Effect.flatMap(Permissions, (p) => p.list(w.s1)) },
  {
    name: "list deployments of a service",
    allowed: WHO,
    run: (w) => Effect.flatMap(Deployments, (d) => d.listByService(w.s1))
  },
  {
    name: "change settings of S1",
    allowed: MEMBERS,
    run: (w) => Effect.flatMap(Services, (s) => s.update(w.s1, { memoryMb: 256 }))
  },
  {
    name: "redeploy S1 (the deploy grant applies)",
    allowed: [...MEMBERS, "viewerDeployS1"],
    run: (w) => Effect.flatMap(Deployments, (d) => d.redeploy(w.s1))
  },
  {
    name: "redeploy S2 (no grant)",
    allowed: MEMBERS,
    run: (w) => Effect.flatMap(Deployments, (d) => d.redeploy(w.s2))
  },
  {
    name: "roll back S1 (the deploy grant applies)",
    allowed: [...MEMBERS, "viewerDeployS1"],
    run: (w) => Effect.flatMap(Deployments, (d) => d.rollback(w.s1))
  },
  {
    name: "deploy a new service",
    allowed: MEMBERS,
    run: (_, who) =>
      Effect.flatMap(Deployments, (d) =>
        d.start({ source: { _tag: "Path", path: "no-such-folder" }, name: `new-${who.toLowerCase()}` })
      )
  },
  {
    name: "grant on S1 (the admin grant applies)",
    allowed: [...ADMINS, "memberAdminS1"],
    run: (w) =>
      Effect.flatMap(Permissions, (p) =>
        p.grant(w.s1, { userId: w.principals.viewer.userId, permission: "view" })
      )
  },
  {
    name: "grant on S2",
    allowed: ADMINS,
    run: (w) =>
      Effect.flatMap(Permissions, (p) =>
        p.grant(w.s2, { userId: w.principals.viewer.userId, permission: "view" })
      )
  },
  {
    name: "an alert rule on S1 (needs manage)",
    allowed: MEMBERS,
    run: (w) =>
      Effect.flatMap(Alerts, (a) =>
        a.create({ serviceId: w.s1, metric: "cpu_percent", comparator: ">", threshold: 90 })
      )
  },
  {
    name: "a team-wide alert rule",
    allowed: ADMINS,
    run: () => Effect.flatMap(Alerts, (a) => a.create({ metric: "pids", comparator: ">", threshold: 500 }))
  },
  {
    name: "create a webhook",
    allowed: ADMINS,
    run: () => Effect.flatMap(Webhooks, (h) => h.create({ url: "https://hooks.example.com/kyozo" }))
  },
  {
    name: "add a member",
    allowed: ADMINS,
    run: () => Effect.flatMap(Members, (m) => m.add({ email: `m${n++}@example.test`, role: "viewer" }))
  },
  {
    name: "issue an API key",
    allowed: ADMINS,
    run: () => Effect.flatMap(ApiKeys, (k) => k.issue({ name: "k" }))
  }
]

for (const db of databases)
  describe.skipIf(db.skip)(`application services: policy and quota matrices on ${db.name}`, () => {
    it.layer(appOver(db.layer), { timeout: "120 seconds" })((it) => {
      for (const action of actions)
        it.effect(action.name, () =>
          Effect.gen(function* () {
            const w = yield* world
            const got: Record<string, string> = {}
            for (const who of WHO) got[who] = yield* outcome(w.principals[who], action.run(w, who))
            for (const who of WHO)
              if (action.allowed.includes(who)) expect(got[who], `${who}: ${got[who]}`).not.toBe("Forbidden")
              else expect(got[who], who).toBe("Forbidden")
          })
        )

      it.effect("another team's caller meets ServiceNotFound, never Forbidden", () =>
        Effect.gen(function* () {
          const w = yield* world
          const calls: ReadonlyArray<Effect.Effect<unknown, { readonly _tag: string }, any>> = [
            Effect.flatMap(Services, (s) => s.get(w.s1)),
            Effect.flatMap(Services, (s) => s.update(w.s1, { memoryMb: 256 })),
            Effect.flatMap(Services, (s) => s.remove(w.s1)),
            Effect.flatMap(Deployments, (d) => d.rollback(w.s1)),
            Effect.flatMap(Deployments, (d) => d.listByService(w.s1)),
            Effect.flatMap(Permissions, (p) =>
              p.grant(w.s1, { userId: w.outsider.userId, permission: "admin" })
            ),
            Effect.flatMap(Insights, (i) => i.metrics(w.s1)),
            Effect.flatMap(Alerts, (a) =>
              a.create({ serviceId: w.s1, metric: "cpu_percent", comparator: ">", threshold: 1 })
            )
          ]
          for (const call of calls) expect(yield* outcome(w.outsider, call)).toBe("ServiceNotFound")
          // And the service is still there for its own team.
          expect(
            yield* outcome(
              w.principals.viewer,
              Effect.flatMap(Services, (s) => s.get(w.s1))
            )
          ).toBe("ok")
        })
      )

      it.effect("removing a service needs manage: a deploy grant is not enough, a member may", () =>
        Effect.gen(function* () {
          const w = yield* world
          const remove = (id: string) => Effect.flatMap(Services, (s) => s.remove(id))
          expect(yield* outcome(w.principals.viewerDeployS1, remove(w.s1))).toBe("Forbidden")
          expect(yield* outcome(w.principals.viewer, remove(w.s2))).toBe("Forbidden")
          expect(yield* outcome(w.principals.member, remove(w.s2))).toBe("ok")
          expect(
            yield* outcome(
              w.principals.member,
              Effect.flatMap(Services, (s) => s.get(w.s2))
            )
          ).toBe("ServiceNotFound")
        })
      )

      it.effect("an admin grant on one service lets its holder grant there only; grants go to members", () =>
        Effect.gen(function* () {
          const w = yield* world
          // The admin grant on S1 lets memberAdminS1 grant there, and nowhere else.
          const grant = (service: string) =>
            Effect.flatMap(Permissions, (p) =>
              p.grant(service, { userId: w.principals.member.userId, permission: "deploy" })
            )
          expect(yield* outcome(w.principals.memberAdminS1, grant(w.s1))).toBe("ok")
          expect(yield* outcome(w.principals.memberAdminS1, grant(w.s2))).toBe("Forbidden")
          // Grants go to members of the team only.
          expect(
            yield* outcome(
              w.principals.owner,
              Effect.flatMap(Permissions, (p) =>
                p.grant(w.s1, { userId: w.outsider.userId, permission: "view" })
              )
            )
          ).toBe("NotAMember")
        })
      )

      it.effect(
        "a settings change or a scale beyond the team's quota is QuotaExceeded; within it passes",
        () =>
          Effect.gen(function* () {
            const teams = yield* TeamRepo
            const teamId = makeTeamId()
            yield* teams.create({
              id: teamId,
              name: `quota-${teamId}`,
              quotaMemoryMb: 512,
              quotaCpuMillis: 1000
            })
            const owner = yield* principalIn(teamId, "owner", `quota-owner-${teamId}`)
            const svc = yield* (yield* ServiceRepo).create({
              teamId,
              name: "q",
              memoryMb: 256,
              cpuMillis: 100
            })
            const update = (memoryMb: number) =>
              Effect.flatMap(Services, (s) => s.update(svc.id, { memoryMb }))
            expect(yield* outcome(owner, update(1024))).toBe("QuotaExceeded")
            expect(yield* outcome(owner, update(512))).toBe("ok")
            // Replicas count: two of 512 MB do not fit in 512 MB.
            expect(
              yield* outcome(
                owner,
                Effect.flatMap(Services, (s) => s.scale(svc.id, 2))
              )
            ).toBe("QuotaExceeded")
            const row = yield* Effect.flatMap(Services, (s) => s.get(svc.id)).pipe(
              Effect.provideService(CurrentPrincipal, owner)
            )
            expect({ memoryMb: row.memoryMb, replicas: row.replicas }).toEqual({ memoryMb: 512, replicas: 1 })
          }).pipe(Effect.orDie)
      )

      it.effect("a deploy beyond the team's service quota is QuotaExceeded; within it deploys", () =>
        Effect.gen(function* () {
          const teams = yield* TeamRepo
          const teamId = makeTeamId()
          yield* teams.create({ id: teamId, name: `deploys-${teamId}`, quotaServices: 1 })
          const member = yield* principalIn(teamId, "member", `deploys-member-${teamId}`)
          const folder = path.join(path.resolve(dataDir, "workspaces"), teamId, "site")
          fs.mkdirSync(folder, { recursive: true })
          fs.writeFileSync(path.join(folder, "index.html"), "<h1>quota</h1>\n")
          const start = (name: string) =>
            Effect.flatMap(Deployments, (d) => d.start({ source: { _tag: "Path", path: "site" }, name }))
          const first = yield* start("first").pipe(Effect.provideService(CurrentPrincipal, member))
          expect(first.length).toBe(1)
          expect(yield* outcome(member, start("second"))).toBe("QuotaExceeded")
          // The same folder name in another team's workspace is not there for that team.
          const otherTeam = makeTeamId()
          yield* teams.create({ id: otherTeam, name: `deploys-other-${otherTeam}` })
          const outsider = yield* principalIn(otherTeam, "owner", `deploys-outsider-${otherTeam}`).pipe(
            Effect.flatMap((p) => outcome(p, start("third")))
          )
          expect(outsider).toBe("InvalidSource")
        }).pipe(Effect.orDie)
      )
    })
  })

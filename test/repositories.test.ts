import * as SqlClient from "@effect/sql/SqlClient"
import { expect } from "@effect/vitest"
import { HealthCheckConfig, StatusRange } from "@kyozo/api/domain/HealthCheckConfig"
import { randomToken, type ServiceId } from "@kyozo/api/domain/Ids"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import { ApiKeyRepo, hashKey } from "@kyozo/core/store/ApiKeyRepo"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { PermissionRepo } from "@kyozo/core/store/PermissionRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { TopologyRepo } from "@kyozo/core/store/TopologyRepo"
import { UserRepo } from "@kyozo/core/store/UserRepo"
import { Effect, Layer, Option, Queue } from "effect"

import { describeEachDatabase } from "./support/database.js"

const Repos = Layer.mergeAll(
  TeamRepo.Default,
  UserRepo.Default,
  ApiKeyRepo.Default,
  ServiceRepo.Default,
  DeploymentRepo.Default,
  DeploymentEventRepo.Default,
  TopologyRepo.Default,
  PermissionRepo.Default
)

/** Two teams with one member each; names are unique per call because tests share one database. */
const twoTeams = Effect.gen(function* () {
  const teams = yield* TeamRepo
  const users = yield* UserRepo
  const tag = randomToken(8)
  const a = yield* teams.create({ name: `team-a-${tag}` })
  const b = yield* teams.create({ name: `team-b-${tag}` })
  const alice = yield* users.create({ email: `alice-${tag}@example.com`, name: "Alice" })
  const bob = yield* users.create({ email: `bob-${tag}@example.com`, name: "Bob" })
  yield* teams.addMember(a.id, alice.id, "owner")
  yield* teams.addMember(b.id, bob.id, "owner")
  return { a, b, alice, bob, tag }
})

describeEachDatabase("repositories", (it) => {
  // Fresh per database: a memoized Repos would keep the first database's client for the second.
  it.layer(Layer.fresh(Repos))((it) => {
    it.effect("teams, users and memberships", () =>
      Effect.gen(function* () {
        const teams = yield* TeamRepo
        const users = yield* UserRepo
        const { a, alice, b, bob, tag } = yield* twoTeams
        expect(a.id).toMatch(/^team_[0-9a-z]{16}$/)
        // The column default holds 100 services (migration 0004).
        expect(a.quotaServices).toBe(100)
        expect(a.createdAt).toBeInstanceOf(Date)
        expect(Option.getOrThrow(yield* teams.findById(a.id)).name).toBe(a.name)

        const dupTeam = yield* Effect.flip(teams.create({ name: a.name }))
        expect(dupTeam._tag).toBe("TeamNameTaken")
        const dupUser = yield* Effect.flip(users.create({ email: `alice-${tag}@example.com` }))
        expect(dupUser._tag).toBe("EmailTaken")
        expect(Option.getOrThrow(yield* users.findByEmail(alice.email)).id).toBe(alice.id)

        expect(yield* teams.roleOf(a.id, alice.id)).toEqual(Option.some("owner"))
        expect(yield* teams.roleOf(a.id, bob.id)).toEqual(Option.none())
        yield* teams.addMember(a.id, bob.id, "viewer")
        const changed = yield* teams.addMember(a.id, bob.id, "admin")
        expect(changed.role).toBe("admin")
        expect(yield* teams.roleOf(a.id, bob.id)).toEqual(Option.some("admin"))
        expect((yield* teams.listMembers(a.id)).map((m) => m.userId).sort()).toEqual(
          [alice.id, bob.id].sort()
        )
        expect((yield* teams.listForUser(bob.id)).map((t) => t.id).sort()).toEqual([a.id, b.id].sort())
        expect((yield* users.listByTeam(b.id)).map((u) => u.id)).toEqual([bob.id])
        expect(yield* teams.removeMember(a.id, bob.id)).toBe(true)
        expect(yield* teams.roleOf(a.id, bob.id)).toEqual(Option.none())
      })
    )

    it.effect("api keys: issue, verify, touch, revoke, expiry, team scoping", () =>
      Effect.gen(function* () {
        const keys = yield* ApiKeyRepo
        const { a, alice, b } = yield* twoTeams
        const { apiKey, key } = yield* keys.issue({ teamId: a.id, userId: alice.id, name: "ci" })
        expect(key.startsWith(`${apiKey.prefix}_`)).toBe(true)
        expect(apiKey.prefix).toMatch(/^kz_[0-9a-z]{8}$/)
        expect(apiKey).not.toHaveProperty("hash")

        const stored = Option.getOrThrow(yield* keys.findByPrefix(apiKey.prefix))
        expect(stored.hash).toBe(hashKey(key))
        expect(stored.hash).not.toContain(key)
        expect(Option.getOrThrow(yield* keys.verify(key)).id).toBe(apiKey.id)
        const forged = `${apiKey.prefix}_${"0".repeat(32)}`
        expect(yield* keys.verify(forged)).toEqual(Option.none())
        expect(yield* keys.verify("not-a-key")).toEqual(Option.none())

        expect(apiKey.lastUsedAt).toBeNull()
        yield* keys.touchLastUsed(apiKey.id)
        expect(Option.getOrThrow(yield* keys.findById(a.id, apiKey.id)).lastUsedAt).toBeInstanceOf(Date)

        expect(yield* keys.listByTeam(b.id)).toEqual([])
        expect(yield* keys.findById(b.id, apiKey.id)).toEqual(Option.none())
        expect(yield* keys.revoke(b.id, apiKey.id)).toBe(false)
        expect(Option.isSome(yield* keys.verify(key))).toBe(true)
        expect(yield* keys.revoke(a.id, apiKey.id)).toBe(true)
        expect(yield* keys.verify(key)).toEqual(Option.none())
        expect((yield* keys.listByTeam(a.id))[0]?.revokedAt).toBeInstanceOf(Date)

        const expired = yield* keys.issue({
          teamId: a.id,
          userId: alice.id,
          expiresAt: new Date(Date.now() - 1000)
        })
        expect(yield* keys.verify(expired.key)).toEqual(Option.none())
      })
    )

    it.effect(
      "services: create, defaults, unique names, team scoping, update, observe, restart, delete",
      () =>
        Effect.gen(function* () {
          const services = yield* ServiceRepo
          const { a, b } = yield* twoTeams
          const health = new HealthCheckConfig({
            type: "http",
            path: "/healthz",
            port: 8080,
            expectedStatus: new StatusRange({ min: 200, max: 299 }),
            failureThreshold: 5
          })
          const api = yield* services.create({
            teamId: a.id,
            name: "api",
            image: "node:20-slim",
            internalPort: 8080,
            env: { NODE_ENV: "production", QUOTE: `it's "quoted"` },
            healthConfig: health,
            restartPolicy: "always",
            source: { kind: "upload", files: ["a", "b"] }
          })
          expect(api.id).toMatch(/^svc_[0-9a-z]{16}$/)
          expect(api).toMatchObject({
            teamId: a.id,
            name: "api",
            status: "pending",
            desiredState: "running",
            cpuMillis: 500,
            memoryMb: 512,
            restartPolicy: "always",
            restartCount: 0,
            containerId: null,
            deletedAt: null
          })
          expect(api.env).toEqual({ NODE_ENV: "production", QUOTE: `it's "quoted"` })
          expect(api.source).toEqual({ kind: "upload", files: ["a", "b"] })
          expect(api.healthConfig).toBeInstanceOf(HealthCheckConfig)
          expect(api.healthConfig.path).toBe("/healthz")
          expect(api.healthConfig.failureThreshold).toBe(5)
          expect(api.healthConfig.expectedStatus.includes(204)).toBe(true)
          expect(api.healthConfig.intervalSeconds).toBe(30)

          // The column default `{}` decodes to the default health check.
          const worker = yield* services.create({ teamId: a.id, name: "worker" })
          expect(worker.healthConfig.type).toBe("docker")
          expect(worker.env).toEqual({})

          const taken = yield* Effect.flip(services.create({ teamId: a.id, name: "api" }))
          expect(taken).toMatchObject({ _tag: "ServiceNameTaken", teamId: a.id, name: "api" })
          const otherTeams = yield* services.create({ teamId: b.id, name: "api" })
          expect(otherTeams.id).not.toBe(api.id)

          // Team B sees nothing of team A, by id or in lists.
          expect(yield* services.findById(b.id, api.id)).toEqual(Option.none())
          expect(yield* services.update(b.id, api.id, { image: "evil" })).toEqual(Option.none())
          expect(yield* services.softDelete(b.id, api.id)).toBe(false)
          expect((yield* services.list(b.id)).items.map((s) => s.id)).toEqual([otherTeams.id])
          expect(Option.getOrThrow(yield* services.findById(a.id, api.id)).image).toBe("node:20-slim")
          expect(yield* services.countByTeam(a.id)).toBe(2)

          const renamed = yield* Effect.flip(services.update(a.id, worker.id, { name: "api" }))
          expect(renamed._tag).toBe("ServiceNameTaken")
          const updated = Option.getOrThrow(
            yield* services.update(a.id, api.id, { memoryMb: 1024, env: { A: "1" }, hostPort: null })
          )
          expect(updated).toMatchObject({
            memoryMb: 1024,
            env: { A: "1" },
            hostPort: null,
            image: "node:20-slim"
          })
          expect(updated.updatedAt.getTime()).toBeGreaterThanOrEqual(api.updatedAt.getTime())
          expect(updated.healthConfig.path).toBe("/healthz")

          const observed = Option.getOrThrow(
            yield* services.updateObserved(api.id, {
              status: "running",
              containerId: "abc123",
              containerName: "kz-api"
            })
          )
          expect(observed).toMatchObject({
            status: "running",
            containerId: "abc123",
            containerName: "kz-api"
          })
          const cleared = Option.getOrThrow(yield* services.updateObserved(api.id, { containerId: null }))
          expect(cleared).toMatchObject({ status: "running", containerId: null, containerName: "kz-api" })

          // `starting` (restarted, not probed yet) is a status the table takes (migration 0011).
          const starting = Option.getOrThrow(yield* services.updateObserved(api.id, { status: "starting" }))
          expect(starting.status).toBe("starting")

          yield* services.recordRestart(api.id)
          const restarted = Option.getOrThrow(yield* services.recordRestart(api.id))
          expect(restarted.restartCount).toBe(2)
          expect(restarted.lastRestartAt).toBeInstanceOf(Date)

          const desired = (yield* services.listDesired()).map((s) => s.id)
          expect(desired).toEqual(expect.arrayContaining([api.id, worker.id, otherTeams.id]))

          expect(yield* services.softDelete(a.id, worker.id)).toBe(true)
          expect(yield* services.findById(a.id, worker.id)).toEqual(Option.none())
          expect((yield* services.listDesired()).map((s) => s.id)).not.toContain(worker.id)
          const gone = Option.getOrThrow(yield* services.findByIdAnyTeam(worker.id))
          expect(gone.deletedAt).toBeInstanceOf(Date)
          expect(gone.desiredState).toBe("removed")
          // A deleted service's name is free again.
          const again = yield* services.create({ teamId: a.id, name: "worker" })
          expect(again.id).not.toBe(worker.id)
        })
    )

    it.effect("services: listDesired sees every committed change, also those made by plain SQL", () =>
      Effect.gen(function* () {
        const services = yield* ServiceRepo
        const sql = yield* SqlClient.SqlClient
        const { a } = yield* twoTeams
        const mine = (list: ReadonlyArray<ServiceInstance>) => list.filter((s) => s.teamId === a.id)
        const one = yield* services.create({ teamId: a.id, name: "desired-1" })
        const two = yield* services.create({ teamId: a.id, name: "desired-2" })
        expect(mine(yield* services.listDesired()).map((s) => s.name)).toEqual(["desired-1", "desired-2"])
        // Unchanged rows come back equal (and the same objects: not decoded again).
        const first = mine(yield* services.listDesired())
        const again = mine(yield* services.listDesired())
        expect(again[0]).toBe(first[0])
        // Writes that bypass the repository (another process, an operator's SQL) are seen at once.
        yield* sql`UPDATE container_service_instances SET status = 'failed', replicas = 3 WHERE id = ${one.id}`
        const changed = mine(yield* services.listDesired())
        expect(changed[0]!.status).toBe("failed")
        expect(changed[0]!.replicas).toBe(3)
        expect(changed[1]).toBe(first[1])
        yield* sql`UPDATE container_service_instances SET deleted_at = now() WHERE id = ${two.id}`
        expect(mine(yield* services.listDesired()).map((s) => s.name)).toEqual(["desired-1"])
        yield* sql`UPDATE container_service_instances SET deleted_at = NULL, memory_mb = 1024 WHERE id = ${two.id}`
        const back = mine(yield* services.listDesired())
        expect(back.map((s) => [s.name, s.memoryMb])).toEqual([
          ["desired-1", changed[0]!.memoryMb],
          ["desired-2", 1024]
        ])
      })
    )

    it.effect("services: keyset pagination", () =>
      Effect.gen(function* () {
        const services = yield* ServiceRepo
        const { a } = yield* twoTeams
        const created: Array<ServiceId> = []
        for (let i = 0; i < 5; i++)
          created.push((yield* services.create({ teamId: a.id, name: `svc-${i}` })).id)
        const seen: Array<ServiceId> = []
        const sizes: Array<number> = []
        let after: ServiceId | null = null
        do {
          const page: { items: ReadonlyArray<{ id: ServiceId }>; nextCursor: ServiceId | null } =
            yield* services.list(a.id, { limit: 2, after })
          sizes.push(page.items.length)
          seen.push(...page.items.map((s) => s.id))
          after = page.nextCursor
        } while (after !== null)
        expect(sizes).toEqual([2, 2, 1])
        expect(seen).toEqual(created)
        const all = yield* services.list(a.id, { limit: 5 })
        expect(all.nextCursor).toBeNull()
        expect(all.items).toHaveLength(5)
      })
    )

    it.effect("deployments: create within the team, status changes, final states stick", () =>
      Effect.gen(function* () {
        const services = yield* ServiceRepo
        const deployments = yield* DeploymentRepo
        const { a, b } = yield* twoTeams
        const svc = yield* services.create({ teamId: a.id, name: "web" })
        expect(yield* deployments.create({ teamId: b.id, serviceId: svc.id })).toEqual(Option.none())
        const first = Option.getOrThrow(
          yield* deployments.create({ teamId: a.id, serviceId: svc.id, contextHash: "h1" })
        )
        expect(first.id).toMatch(/^dep_/)
        expect(first).toMatchObject({ status: "pending", teamId: a.id, serviceId: svc.id, finishedAt: null })
        expect(yield* deployments.get(b.id, first.id)).toEqual(Option.none())

        const building = Option.getOrThrow(yield* deployments.updateStatus(first.id, { status: "building" }))
        expect(building.finishedAt).toBeNull()
        expect((yield* deployments.listUnfinished(svc.id)).map((d) => d.id)).toEqual([first.id])
        const done = Option.getOrThrow(
          yield* deployments.updateStatus(first.id, {
            status: "succeeded",
            image: "kyozo/web:1",
            containerId: "c1"
          })
        )
        expect(done).toMatchObject({ status: "succeeded", image: "kyozo/web:1", containerId: "c1" })
        expect(done.finishedAt).toBeInstanceOf(Date)
        // A retried activity cannot reopen a finished deployment.
        expect(yield* deployments.updateStatus(first.id, { status: "failed", error: "late" })).toEqual(
          Option.none()
        )
        expect(Option.getOrThrow(yield* deployments.get(a.id, first.id)).status).toBe("succeeded")
        expect(yield* deployments.listUnfinished(svc.id)).toEqual([])

        const second = Option.getOrThrow(yield* deployments.create({ teamId: a.id, serviceId: svc.id }))
        const listed = yield* deployments.listByService(a.id, svc.id)
        expect(listed.map((d) => d.id)).toEqual([second.id, first.id])
        expect(yield* deployments.listByService(b.id, svc.id)).toEqual([])
      })
    )

    it.effect("events: append returns increasing ids, listSince resumes in order per team", () =>
      Effect.gen(function* () {
        const services = yield* ServiceRepo
        const events = yield* DeploymentEventRepo
        const { a, b } = yield* twoTeams
        const svc = yield* services.create({ teamId: a.id, name: "api" })
        const start = yield* events.lastId(a.id)
        expect(start).toBe(0)
        const ids: Array<number> = []
        for (let i = 0; i < 4; i++) {
          ids.push(
            yield* events.append({
              teamId: a.id,
              serviceId: i % 2 === 0 ? svc.id : null,
              type: "step",
              data: { i }
            })
          )
        }
        yield* events.append({ teamId: b.id, type: "other-team" })
        expect(ids.every((id) => typeof id === "number")).toBe(true)
        expect([...ids].sort((x, y) => x - y)).toEqual(ids)
        expect(new Set(ids).size).toBe(4)

        const all = yield* events.listSince(a.id, 0)
        expect(all.map((e) => e.id)).toEqual(ids)
        expect(all.map((e) => e.data)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }])
        const resumed = yield* events.listSince(a.id, ids[1]!)
        expect(resumed.map((e) => e.id)).toEqual(ids.slice(2))
        expect((yield* events.listSince(a.id, ids[0]!, 2)).map((e) => e.id)).toEqual([ids[1], ids[2]])
        expect((yield* events.listSince(b.id, 0)).map((e) => e.type)).toEqual(["other-team"])
        expect((yield* events.listByService(a.id, svc.id)).map((e) => e.id)).toEqual([ids[0], ids[2]])
        expect(yield* events.listByService(b.id, svc.id)).toEqual([])
        expect((yield* events.latestByService(a.id, svc.id, 1)).map((e) => e.id)).toEqual([ids[2]])
        expect(yield* events.lastId(a.id)).toBe(ids[3])
      })
    )

    it.effect("events: appendAll writes several in one statement, in the given order, wakes readers", () =>
      Effect.gen(function* () {
        const services = yield* ServiceRepo
        const events = yield* DeploymentEventRepo
        const { a } = yield* twoTeams
        const svc = yield* services.create({ teamId: a.id, name: "api" })
        const before = yield* events.append({ teamId: a.id, serviceId: svc.id, type: "first" })
        const woken = yield* events.notifications
        const types = ["deploy.switched", "deploy.succeeded", "third"]
        yield* events.appendAll(
          a.id,
          types.map((type, i) => ({ serviceId: svc.id, type, message: `m${i}`, data: { i } }))
        )
        yield* events.appendAll(a.id, [])
        const after = yield* events.listSince(a.id, before)
        expect(after.map((e) => e.type)).toEqual(types)
        expect(after.map((e) => e.message)).toEqual(["m0", "m1", "m2"])
        expect(after.map((e) => e.data)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }])
        expect(after.every((e) => e.serviceId === svc.id && e.deploymentId === null)).toBe(true)
        expect(after.map((e) => e.id)).toEqual([...after.map((e) => e.id)].sort((x, y) => x - y))
        expect(yield* Queue.take(woken)).toBe(a.id)
      }).pipe(Effect.scoped)
    )

    it.effect("permissions: grant is idempotent and scoped to the service's team", () =>
      Effect.gen(function* () {
        const services = yield* ServiceRepo
        const permissions = yield* PermissionRepo
        const { a, alice, b, bob } = yield* twoTeams
        const svc = yield* services.create({ teamId: a.id, name: "db" })
        const grant = Option.getOrThrow(
          yield* permissions.grant({
            teamId: a.id,
            serviceId: svc.id,
            userId: bob.id,
            permission: "deploy",
            grantedBy: alice.id
          })
        )
        expect(grant).toMatchObject({
          serviceId: svc.id,
          userId: bob.id,
          permission: "deploy",
          grantedBy: alice.id
        })
        expect(grant.id).toMatch(/^prm_/)
        const again = Option.getOrThrow(
          yield* permissions.grant({ teamId: a.id, serviceId: svc.id, userId: bob.id, permission: "deploy" })
        )
        expect(again.id).toBe(grant.id)
        yield* permissions.grant({ teamId: a.id, serviceId: svc.id, userId: bob.id, permission: "view" })
        expect((yield* permissions.listFor(a.id, bob.id, svc.id)).map((p) => p.permission)).toEqual([
          "deploy",
          "view"
        ])

        // Team B can neither grant on, nor see, nor revoke team A's service grants.
        expect(
          yield* permissions.grant({ teamId: b.id, serviceId: svc.id, userId: bob.id, permission: "admin" })
        ).toEqual(Option.none())
        expect(yield* permissions.listFor(b.id, bob.id, svc.id)).toEqual([])
        expect(yield* permissions.listForService(b.id, svc.id)).toEqual([])
        expect(yield* permissions.revoke(b.id, svc.id, bob.id, "deploy")).toBe(false)

        expect(yield* permissions.revoke(a.id, svc.id, bob.id, "deploy")).toBe(true)
        expect((yield* permissions.listForService(a.id, svc.id)).map((p) => p.permission)).toEqual(["view"])
      })
    )

    it.effect("topology: detections and dependencies, replaced on save, team-scoped", () =>
      Effect.gen(function* () {
        const services = yield* ServiceRepo
        const topology = yield* TopologyRepo
        const { a, b } = yield* twoTeams
        const web = yield* services.create({ teamId: a.id, name: "web" })
        const api = yield* services.create({ teamId: a.id, name: "api" })
        const foreign = yield* services.create({ teamId: b.id, name: "foreign" })
        const saved = yield* topology.saveDetection({
          teamId: a.id,
          serviceId: web.id,
          rootPath: "/srv/app",
          result: { services: ["web", "api"], frameworks: ["express"] },
          dependencies: [
            { serviceId: web.id, dependsOnServiceId: api.id, condition: "service_healthy" },
            { serviceId: api.id, requires: "postgres" },
            { serviceId: web.id, dependsOnServiceId: foreign.id }
          ]
        })
        expect(saved.detection.id).toMatch(/^det_/)
        expect(saved.detection.result).toEqual({ services: ["web", "api"], frameworks: ["express"] })
        // The edge to another team's service was dropped.
        expect(saved.dependencies).toHaveLength(2)
        const webDeps = yield* topology.listDependencies(a.id, web.id)
        expect(webDeps.map((d) => [d.dependsOnServiceId, d.condition])).toEqual([[api.id, "service_healthy"]])
        expect((yield* topology.listDependencies(a.id, api.id)).map((d) => d.requires)).toEqual(["postgres"])
        expect((yield* topology.listDependents(a.id, api.id)).map((d) => d.serviceId)).toEqual([web.id])
        expect(yield* topology.listDependencies(b.id, web.id)).toEqual([])
        expect(yield* topology.listTeamDependencies(a.id)).toHaveLength(2)

        yield* topology.saveDetection({
          teamId: a.id,
          serviceId: web.id,
          rootPath: "/srv/app",
          result: { services: ["web"] },
          dependencies: [{ serviceId: web.id, requires: "redis" }]
        })
        expect((yield* topology.listDependencies(a.id, web.id)).map((d) => d.requires)).toEqual(["redis"])
        const detections = yield* topology.listDetections(a.id, { serviceId: web.id })
        expect(detections).toHaveLength(2)
        expect(detections[0]!.result).toEqual({ services: ["web"] })
        expect(Option.getOrThrow(yield* topology.latestDetection(a.id, web.id)).id).toBe(detections[0]!.id)
        expect(yield* topology.listDetections(b.id)).toEqual([])
      })
    )
  })
})

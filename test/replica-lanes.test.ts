/**
 * Replica convergence runs one pass at a time per service: the health pass and a scale (PATCH,
 * `kyozo scale`, the autoscaler) converging the same service at once create exactly the missing
 * replicas, not twice as many, and a later pass reads the row as it is in its turn. The in-memory
 * engine answers after a short delay here, as a real one does, so two unserialised passes would
 * both see the replicas missing.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import type { ServiceId } from "@kyozo/api/domain/Ids"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import * as MockRuntime from "@kyozo/core/engine/MockRuntime"
import { teamNetwork } from "@kyozo/core/engine/ServiceNaming"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import * as Replicas from "@kyozo/workers/deploy/Replicas"
import { Effect, Layer } from "effect"

import { pgliteLayer } from "./support/database.js"

const TEAM = "team_lanes"

/** Engine calls counted, and slowed to 20 ms each (the interleaving a real engine gives). */
const creates: Array<string> = []
const SlowEngine = Layer.effect(
  ContainerRuntime,
  Effect.gen(function* () {
    const { runtime } = yield* MockRuntime.make()
    const slow = <A, E>(effect: Effect.Effect<A, E>) => Effect.zipRight(Effect.sleep("20 millis"), effect)
    return {
      ...runtime,
      listContainers: (filter) => slow(runtime.listContainers(filter)),
      inspectContainer: (id) => slow(runtime.inspectContainer(id)),
      createContainer: (spec) =>
        Effect.sync(() => creates.push(spec.name)).pipe(Effect.zipRight(slow(runtime.createContainer(spec))))
    }
  })
)

const Live = Layer.mergeAll(SlowEngine, ServiceRepo.Default).pipe(
  Layer.provideMerge(pgliteLayer),
  Layer.orDie
)

const seed = (id: string, replicas: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runtime = yield* ContainerRuntime
    yield* sql`INSERT INTO teams (id, name) VALUES (${TEAM}, 'lanes') ON CONFLICT DO NOTHING`
    const networks = yield* runtime.listNetworks()
    if (!networks.some((n) => n.name === teamNetwork(TEAM)))
      yield* runtime.createNetwork({ name: teamNetwork(TEAM), labels: Labels.labelsFor({ teamId: TEAM }) })
    const deploymentId = `dep_${id}`
    const primary = yield* runtime.createContainer({
      name: `${id}-primary`,
      image: "busybox:latest",
      labels: Labels.labelsFor({ teamId: TEAM, serviceId: id, deploymentId })
    })
    yield* runtime.startContainer(primary.id)
    yield* sql`INSERT INTO container_service_instances ${sql.insert({
      id,
      team_id: TEAM,
      name: id.replace(/_/g, "-"),
      image: "busybox:latest",
      desired_state: "running",
      status: "running",
      container_id: primary.id,
      current_deployment_id: deploymentId,
      replicas
    })}`
    return deploymentId
  })

const containersOf = (deploymentId: string) =>
  Effect.flatMap(ContainerRuntime, (runtime) =>
    runtime.listContainers({ all: true, labels: { [Labels.Deployment]: deploymentId } })
  )

describe("replica convergence, one pass at a time per service", () => {
  layer(Live, { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("two concurrent passes over one service create exactly the missing replicas", () =>
      Effect.gen(function* () {
        const deploymentId = yield* seed("svc_twice", 4)
        creates.length = 0
        const id = "svc_twice" as ServiceId
        const [a, b] = yield* Effect.all([Replicas.convergeService(id), Replicas.convergeService(id)], {
          concurrency: "unbounded"
        })
        // 3 replicas were missing: made once, by whichever pass ran first; the other found them.
        expect(a.created + b.created).toBe(3)
        expect([a.created, b.created].sort()).toEqual([0, 3])
        expect(creates).toHaveLength(3)
        const all = yield* containersOf(deploymentId)
        expect(all).toHaveLength(4)
        expect(all.every((c) => c.state === "running")).toBe(true)
      })
    )

    it.effect(
      "a pass that waited its turn converges to the row as it is then (a scale in between counts)",
      () =>
        Effect.gen(function* () {
          creates.length = 0
          const deploymentId = yield* seed("svc_rescaled", 3)
          const id = "svc_rescaled" as ServiceId
          const services = yield* ServiceRepo
          const sql = yield* SqlClient.SqlClient
          // The first pass scales out to 3; the second starts while it runs, after a scale to 1.
          const first = yield* Effect.fork(Replicas.convergeService(id))
          yield* Effect.sleep("10 millis")
          yield* sql`UPDATE container_service_instances SET replicas = 1 WHERE id = ${id}`
          const second = yield* Replicas.convergeService(id)
          const out = yield* first.await
          expect(out._tag).toBe("Success")
          expect(second.removed).toBe(2)
          expect(yield* containersOf(deploymentId)).toHaveLength(1)
          expect(
            (yield* services.findByIdAnyTeam(id)).pipe((o) => o._tag === "Some" && o.value.replicas)
          ).toBe(1)
        })
    )
  })
})

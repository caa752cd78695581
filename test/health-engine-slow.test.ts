/**
 * The health pass when the engine is slow or away: a row that says `running` is judged through its
 * URL (a real HTTP server on 127.0.0.1 stands for the edge) instead of waiting for the engine's own
 * timeout, and the engine's answer still decides when the URL answers. PGlite (shared per process),
 * the in-memory engine behind a gate that makes its listing and inspect calls hang or fail, the
 * live clock (the deadlines are real ones: `excludeTestServices`).
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"

import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { DockerUnavailable } from "@kyozo/api/domain/RuntimeErrors"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { MockRuntime } from "@kyozo/core/engine/MockRuntime"
import { MaintenancePasses } from "@kyozo/core/supervision/MaintenancePasses"
import { HealthWorker } from "@kyozo/workers/maintenance/HealthWorker"
import * as Workers from "@kyozo/workers/Workers"
import { Deferred, Effect, Layer, Ref } from "effect"

import { pgliteLayer } from "./support/database.js"

const TEAM = "team_engine_slow"

/** What the gated engine does with listing and inspect calls. */
type Gate = "answer" | "hang" | "refuse"

class EngineGate extends Effect.Service<EngineGate>()("test/EngineGate", {
  effect: Effect.gen(function* () {
    const gate = yield* Ref.make<Gate>("answer")
    // Released to let hanging calls answer (late), as an engine that is back but slow does.
    const release = yield* Ref.make(yield* Deferred.make<void>())
    return {
      set: (to: Gate) => Ref.set(gate, to),
      hangUntilReleased: Effect.flatMap(Deferred.make<void>(), (d) =>
        Effect.zipRight(Ref.set(release, d), Ref.set(gate, "hang"))
      ),
      releaseAfter: (ms: number) =>
        Effect.flatMap(Ref.get(release), (d) => Deferred.succeed(d, undefined).pipe(Effect.delay(ms))),
      through: <A, E>(call: Effect.Effect<A, E>): Effect.Effect<A, E | DockerUnavailable> =>
        Effect.gen(function* () {
          switch (yield* Ref.get(gate)) {
            case "answer":
              return yield* call
            case "refuse":
              return yield* new DockerUnavailable({ endpoint: "unix:///gated.sock", cause: "ECONNREFUSED" })
            case "hang":
              yield* Deferred.await(yield* Ref.get(release))
              return yield* call
          }
        })
    }
  })
}) {}

/** The in-memory engine as a real one would look to the health pass, its reads behind the gate. */
const GatedRuntime = Layer.effect(
  ContainerRuntime,
  Effect.gen(function* () {
    const mock = yield* ContainerRuntime
    const gate = yield* EngineGate
    return {
      ...mock,
      mode: "docker" as const,
      listContainers: (filter) => gate.through(mock.listContainers(filter)),
      inspectContainer: (id) => gate.through(mock.inspectContainer(id)),
      restartContainer: (id, options) => gate.through(mock.restartContainer(id, options)),
      startContainer: (id) => gate.through(mock.startContainer(id))
    }
  })
).pipe(Layer.provideMerge(EngineGate.Default), Layer.provide(MockRuntime.layer))

const Live = HealthWorker.Default.pipe(Layer.provideMerge(GatedRuntime))
/** The manager's health pass: health, then recovery on its results. */
const WithRecovery = Workers.layer.pipe(Layer.provideMerge(GatedRuntime))

/** The service's URL: answers `status`, or never answers at all (`"silent"`). */
const urlServer = (answer: number | "silent") =>
  Effect.acquireRelease(
    Effect.async<http.Server>((resume) => {
      const server = http.createServer((_req, res) => {
        if (answer === "silent") return
        res.writeHead(answer).end(answer === 200 ? "ok" : "edge: no upstream")
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => (server.address() as AddressInfo).port))

const reset = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`TRUNCATE service_recovery, health_checks, container_deployment_events,
             container_service_dependencies, deployments, container_service_instances, teams CASCADE`
  yield* sql`INSERT INTO teams (id, name) VALUES (${TEAM}, 'engine-slow')`
})

/** A running container of the service and its row (`running` unless told), URL on `hostPort`; its id. */
const serving = (id: string, hostPort: number, status = "running", restartPolicy = "on-failure") =>
  Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const gate = yield* EngineGate
    yield* gate.set("answer")
    const ref = yield* runtime.createContainer({
      name: id.replace(/_/g, "-"),
      image: "busybox:latest",
      labels: Labels.labelsFor({ teamId: TEAM, serviceId: id })
    })
    yield* runtime.startContainer(ref.id)
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO container_service_instances ${sql.insert({
      id,
      team_id: TEAM,
      name: id.replace(/_/g, "-"),
      desired_state: "running",
      status,
      container_id: ref.id,
      host_port: hostPort,
      restart_policy: restartPolicy,
      health_config: JSON.stringify({})
    })}`
    return ref.id
  })

const statusOf = (id: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ status: string }>`SELECT status FROM container_service_instances WHERE id = ${id}`,
      (r) => r[0]!.status
    )
  )

/** One health pass, timed; the observation of the service. */
const timedPass = (id: string) =>
  Effect.gen(function* () {
    const health = yield* HealthWorker
    const started = performance.now()
    const { results } = yield* health.pass
    const result = results.find((r) => r.service.id === id)
    return { result, elapsedMs: performance.now() - started }
  })

describe("health pass with a slow or absent engine", () => {
  layer(pgliteLayer.pipe(Layer.orDie), { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.scoped("engine slow, URL fails: `running` becomes unhealthy without waiting for the engine", () =>
      Effect.gen(function* () {
        yield* reset
        const port = yield* urlServer(502)
        yield* serving("svc_slow_down", port)
        const gate = yield* EngineGate
        // The engine never answers within the pass: only the URL can tell.
        yield* gate.hangUntilReleased
        const { result } = yield* timedPass("svc_slow_down")
        expect(result?.observation).toMatchObject({ status: "unhealthy", immediate: true })
        expect(result?.observation.detail).toMatch(/engine slow.*its URL .* answers 502/)
        expect(yield* statusOf("svc_slow_down")).toBe("unhealthy")
      }).pipe(Effect.provide(Live))
    )

    it.scoped(
      "engine slow, URL answers: the engine's late answer decides, slowness alone judges nothing",
      () =>
        Effect.gen(function* () {
          yield* reset
          const port = yield* urlServer(200)
          yield* serving("svc_slow_up", port)
          const gate = yield* EngineGate
          yield* gate.hangUntilReleased
          yield* Effect.fork(gate.releaseAfter(1500))
          const { result, elapsedMs } = yield* timedPass("svc_slow_up")
          // The engine's own verdict (its container runs), given after it answered.
          expect(result?.observation).toMatchObject({ status: "healthy", containerState: "running" })
          expect(elapsedMs).toBeGreaterThanOrEqual(1400)
          expect(yield* statusOf("svc_slow_up")).toBe("running")
        }).pipe(Effect.provide(Live))
    )

    it.scoped("a row that claims nothing (`starting`) waits for the engine instead of the URL", () =>
      Effect.gen(function* () {
        yield* reset
        const port = yield* urlServer(502)
        yield* serving("svc_slow_starting", port, "starting")
        const gate = yield* EngineGate
        yield* gate.hangUntilReleased
        yield* Effect.fork(gate.releaseAfter(1500))
        const { result } = yield* timedPass("svc_slow_starting")
        expect(result?.observation.containerState).toBe("running")
        expect(result?.observation.detail).not.toMatch(/engine slow/)
      }).pipe(Effect.provide(Live))
    )

    it.scoped(
      "engine away, URL holds requests (an edge waiting for an upstream): unhealthy by the deadline",
      () =>
        Effect.gen(function* () {
          yield* reset
          const port = yield* urlServer("silent")
          yield* serving("svc_away", port)
          const gate = yield* EngineGate
          yield* gate.set("refuse")
          const { result } = yield* timedPass("svc_away")
          expect(result?.observation).toMatchObject({ status: "unhealthy", immediate: true })
          expect(result?.observation.detail).toMatch(/engine unreachable.*no answer in 2s/)
          expect(yield* statusOf("svc_away")).toBe("unhealthy")
        }).pipe(Effect.provide(Live))
    )

    it.scoped(
      "engine away: recovery's restart that could not happen leaves the row unhealthy, not `starting`",
      () =>
        Effect.gen(function* () {
          yield* reset
          const port = yield* urlServer(502)
          const containerId = yield* serving("svc_not_restarted", port, "running", "always")
          // Its container stops with the engine (a dockerd that comes back without live-restore).
          yield* Effect.flatMap(ContainerRuntime, (runtime) => runtime.stopContainer(containerId))
          const gate = yield* EngineGate
          yield* gate.set("refuse")
          const passes = yield* MaintenancePasses
          yield* Effect.either(passes.health)
          // Nothing starts while the engine is out: `starting` would hide the outage from users.
          expect(yield* statusOf("svc_not_restarted")).toBe("unhealthy")
          // The engine back: the restart happens, and only a probe after it may say `running`.
          yield* gate.set("answer")
          yield* passes.health
          expect(yield* statusOf("svc_not_restarted")).toBe("starting")
        }).pipe(Effect.provide(WithRecovery))
    )
  })
})

/**
 * The health gate's readiness look (`readinessNow`): with the pinned host port known, the probe
 * goes out beside the inspect instead of after it, and the inspect still decides.
 */
import { expect, it } from "@effect/vitest"
import { HealthCheckConfig } from "@kyozo/api/domain/HealthCheckConfig"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import type { ContainerInfo } from "@kyozo/core/engine/ContainerRuntime"
import { type Probe, type ProbeTarget, readinessNow } from "@kyozo/workers/deploy/Probes"
import { Deferred, Effect } from "effect"

// Only the fields the probe plan reads: the health config and the internal port.
const row = (health: Partial<HealthCheckConfig> = { type: "http", path: "/ready" }): ServiceInstance =>
  ({ healthConfig: new HealthCheckConfig(health), internalPort: 3000 }) as unknown as ServiceInstance

const info = (overrides: Partial<ContainerInfo> = {}): ContainerInfo => ({
  id: "c1",
  name: "kyozo-app",
  image: "app:1",
  state: "running",
  status: "Up 1 second",
  labels: {},
  ports: [{ containerPort: 3000, hostPort: 41000, hostIp: "127.0.0.1", protocol: "tcp" }],
  createdAt: 0,
  imageId: "sha256:1",
  running: true,
  exitCode: null,
  startedAt: 0,
  finishedAt: null,
  restartCount: 0,
  health: "none",
  oomKilled: false,
  networks: [],
  ...overrides
})

/** A probe that records its targets and answers `answer`. */
const recording = (answer: boolean) => {
  const targets: Array<ProbeTarget> = []
  const probe: Probe = (target) => Effect.sync(() => (targets.push(target), answer))
  return { probe, targets }
}

it.effect("the probe of the pinned port goes out before the inspect has answered", () =>
  Effect.gen(function* () {
    const probed = yield* Deferred.make<ProbeTarget>()
    const probe: Probe = (target) => Effect.as(Deferred.succeed(probed, target), true)
    // The inspect answers only once the probe was sent: sequential code would never finish.
    const inspect = Effect.as(Deferred.await(probed), info())
    const readiness = yield* readinessNow(probe, row(), "c1", inspect, 41000, 1000)
    expect(readiness).toEqual({ _tag: "Probed", answering: true, health: "none" })
    const target = yield* Deferred.await(probed)
    expect(target).toMatchObject({ kind: "http", host: "127.0.0.1", port: 41000, path: "/ready" })
  })
)

it.effect("an exited container fails the look even when something answered on its port", () =>
  Effect.gen(function* () {
    const { probe } = recording(true)
    const exited = info({ state: "exited", running: false, exitCode: 3 })
    const readiness = yield* readinessNow(probe, row(), "c1", Effect.succeed(exited), 41000, 1000)
    expect(readiness).toEqual({ _tag: "Exited", exitCode: 3, oomKilled: false })
  })
)

it.effect("a port other than the pinned one is probed where the engine published it", () =>
  Effect.gen(function* () {
    const { probe, targets } = recording(false)
    const moved = info({
      ports: [{ containerPort: 3000, hostPort: 42000, hostIp: "127.0.0.1", protocol: "tcp" }]
    })
    const readiness = yield* readinessNow(probe, row(), "c1", Effect.succeed(moved), 41000, 1000)
    expect(readiness).toEqual({ _tag: "Probed", answering: false, health: "none" })
    expect(targets.map((t) => t.port)).toEqual([41000, 42000])
  })
)

it.effect("without a pinned port (or a health port of its own) it inspects first, then probes once", () =>
  Effect.gen(function* () {
    const unpinned = recording(true)
    expect(yield* readinessNow(unpinned.probe, row(), "c1", Effect.succeed(info()), null, 1000)).toEqual({
      _tag: "Probed",
      answering: true,
      health: "none"
    })
    expect(unpinned.targets.map((t) => t.port)).toEqual([41000])
    const ownPort = recording(true)
    const health = row({ type: "tcp", port: 9000 })
    const readiness = yield* readinessNow(ownPort.probe, health, "c1", Effect.succeed(info()), 41000, 1000)
    expect(readiness).toEqual({ _tag: "Unpublished", port: 9000 })
    expect(ownPort.targets).toEqual([])
  })
)

import { describe, expect, it } from "@effect/vitest"
import * as CircuitBreaker from "@kyozo/core/engine/CircuitBreaker"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as MockRuntime from "@kyozo/core/engine/MockRuntime"
import * as RuntimeSelection from "@kyozo/core/engine/RuntimeSelection"
import { RuntimeInfo } from "@kyozo/core/engine/RuntimeSelection"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import * as ContainerManagerModule from "@kyozo/core/supervision/ContainerManager"
import { ContainerManager } from "@kyozo/core/supervision/ContainerManager"
import { emptyReport, MaintenancePasses, type PassName } from "@kyozo/core/supervision/MaintenancePasses"
import { ConfigProvider, Duration, Effect, Layer, Queue, Ref, TestClock } from "effect"

/** Passes that count their runs; the health pass fails every third run. */
const countingPasses = (counts: Ref.Ref<Record<PassName, number>>) =>
  Layer.succeed(MaintenancePasses, {
    health: Ref.updateAndGet(counts, (c) => ({ ...c, health: c.health + 1 })).pipe(
      Effect.flatMap((c) =>
        c.health % 3 === 0 ? Effect.fail(new Error("probe exploded")) : Effect.succeed(emptyReport("health"))
      )
    ),
    metrics: Ref.update(counts, (c) => ({ ...c, metrics: c.metrics + 1 })).pipe(
      Effect.as(emptyReport("metrics"))
    ),
    cleanup: Ref.update(counts, (c) => ({ ...c, cleanup: c.cleanup + 1 })).pipe(
      Effect.as(emptyReport("cleanup"))
    )
  })

const runtimeLayer = CircuitBreaker.layerRuntime({
  name: "mock",
  failureThreshold: 3,
  resetAfter: "10 seconds"
}).pipe(
  Layer.provideMerge(MockRuntime.layer),
  Layer.provideMerge(Layer.succeed(RuntimeInfo, { mode: "mock", reason: "test", endpoint: "in-memory" }))
)

const managerWith = (counts: Ref.Ref<Record<PassName, number>>) =>
  ContainerManagerModule.layerWith({
    health: "30 seconds",
    metrics: "60 seconds",
    cleanup: "5 minutes"
  }).pipe(Layer.provideMerge(countingPasses(counts)), Layer.provideMerge(runtimeLayer))

describe("ContainerManager", () => {
  it.scoped(
    "runs health 10×, metrics 5×, cleanup 1× in 5 simulated minutes; a failing pass does not stop its schedule",
    () =>
      Effect.gen(function* () {
        const counts = yield* Ref.make<Record<PassName, number>>({ health: 0, metrics: 0, cleanup: 0 })
        const ctx = yield* Layer.build(managerWith(counts))
        const manager = yield* Effect.provide(ContainerManager, ctx)

        for (let i = 0; i < 10; i++) yield* TestClock.adjust(Duration.seconds(30))

        expect(yield* Ref.get(counts)).toEqual({ health: 10, metrics: 5, cleanup: 1 })
        const schedules = yield* manager.schedules
        const health = schedules.find((s) => s.pass === "health")!
        expect(health.runs).toBe(10)
        // runs 3, 6 and 9 failed and were recorded, yet runs 10 happened
        expect(health.failures).toBe(3)
        expect(health.lastError).toBeNull()
        expect(schedules.find((s) => s.pass === "cleanup")!.runs).toBe(1)
        const children = yield* manager.children
        expect(children.map((c) => c.id).sort()).toEqual([
          "breaker-feed",
          "cleanup-schedule",
          "health-schedule",
          "metrics-schedule"
        ])
        expect(children.every((c) => c.status === "running" && c.restarts === 0)).toBe(true)
      })
  )

  it.scoped("publishes pass results and breaker state changes on its PubSub", () =>
    Effect.gen(function* () {
      const counts = yield* Ref.make<Record<PassName, number>>({ health: 0, metrics: 0, cleanup: 0 })
      const ctx = yield* Layer.build(managerWith(counts))
      const manager = yield* Effect.provide(ContainerManager, ctx)
      const control = yield* Effect.provide(MockRuntime.MockRuntimeControl, ctx)
      const events = yield* manager.subscribe

      yield* TestClock.adjust(Duration.seconds(30))
      const first = yield* Queue.take(events)
      expect(first._tag).toBe("PassCompleted")

      // engine down: three engine failures open the breaker, the fourth call fails fast
      yield* control.setDown(true)
      for (let i = 0; i < 3; i++) {
        const r = yield* Effect.either(manager.runtime.ping)
        expect(r._tag === "Left" && r.left._tag).toBe("DockerUnavailable")
      }
      const fast = yield* Effect.either(manager.runtime.ping)
      expect(fast._tag === "Left" && fast.left._tag).toBe("CircuitOpen")
      expect((yield* manager.circuitBreakerStatus).state).toBe("open")

      const seen = yield* Queue.takeAll(events)
      const breakerEvents = [...seen].filter((e) => e._tag === "BreakerChanged")
      // the breaker feed runs on its own fiber: let it deliver
      yield* Effect.yieldNow()
      const more = [...(yield* Queue.takeAll(events))].filter((e) => e._tag === "BreakerChanged")
      const all = [...breakerEvents, ...more]
      expect(all.length).toBeGreaterThanOrEqual(1)
      expect(all[0]!._tag === "BreakerChanged" && all[0]!.change.to).toBe("open")

      // engine back: after the reset time a trial call closes the circuit
      yield* control.setDown(false)
      yield* TestClock.adjust(Duration.seconds(10))
      yield* manager.runtime.ping
      expect((yield* manager.circuitBreakerStatus).state).toBe("closed")
    })
  )

  it.scoped("a failing pass run by hand is reported as a failure and counted", () =>
    Effect.gen(function* () {
      const counts = yield* Ref.make<Record<PassName, number>>({ health: 2, metrics: 0, cleanup: 0 })
      const ctx = yield* Layer.build(managerWith(counts))
      const manager = yield* Effect.provide(ContainerManager, ctx)
      const result = yield* Effect.either(manager.runPass("health"))
      expect(result._tag).toBe("Left")
      const health = (yield* manager.schedules).find((s) => s.pass === "health")!
      expect(health.failures).toBe(1)
      expect(health.lastError).toContain("probe exploded")
    })
  )
})

describe("RuntimeSelection", () => {
  const selectWith = (env: Record<string, string>) =>
    Effect.gen(function* () {
      const ctx = yield* Layer.build(RuntimeSelection.layer.pipe(Layer.provide(KyozoConfig.Default)))
      const info = yield* Effect.provide(RuntimeInfo, ctx)
      const runtime = yield* Effect.provide(ContainerRuntime, ctx)
      const breaker = yield* Effect.provide(CircuitBreaker.RuntimeBreaker, ctx)
      return { info, runtime, breaker }
    }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

  it.live("auto mode with no engine reachable falls back to the mock, flagged, and still starts", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { info, runtime, breaker } = yield* selectWith({
          DOCKER_HOST: "unix:///tmp/kyozo-no-such-docker.sock"
        })
        expect(info.mode).toBe("mock")
        expect(info.reason).toContain("no Docker engine")
        expect(runtime.mode).toBe("mock")
        yield* runtime.ping
        expect((yield* breaker.status).state).toBe("closed")
      })
    )
  )

  it.live("KYOZO_RUNTIME=mock selects the mock without probing", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { info } = yield* selectWith({ KYOZO_RUNTIME: "mock" })
        expect(info).toMatchObject({ mode: "mock", reason: "KYOZO_RUNTIME=mock" })
      })
    )
  )

  it.live("KYOZO_RUNTIME=docker keeps Docker even when it is down: calls fail typed, never crash", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { info, runtime } = yield* selectWith({
          KYOZO_RUNTIME: "docker",
          DOCKER_HOST: "unix:///tmp/kyozo-no-such-docker.sock"
        })
        expect(info.mode).toBe("docker")
        const r = yield* Effect.either(runtime.ping)
        expect(r._tag === "Left" && r.left._tag).toBe("DockerUnavailable")
      })
    )
  )
})

/**
 * The mock engine's control knobs (`MockRuntimeControl`): injected failures, hangs, slowness, a
 * stopped dockerd, and containers that die or change health behind Kyozo's back.
 */
import { InvalidContainerState } from "@kyozo/api/domain/RuntimeErrors"
import { Duration, Effect } from "effect"

import type { MockRuntimeControlShape } from "../MockRuntime.js"
import type { MockEngine } from "./MockEngine.js"

export const mockControl = (engine: MockEngine): MockRuntimeControlShape => {
  const { notify, emit, lookup, isUp, materializeLogs, runningMs, doExit } = engine
  const controlCall = <A, E>(body: (now: number) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.clockWith((clock) => Effect.suspend(() => body(clock.unsafeCurrentTimeMillis())))

  return {
    failNext: (n, error, opts) =>
      Effect.sync(() => {
        if (n > 0) engine.faults.failures.push({ remaining: n, error, operation: opts?.operation })
      }),
    hang: (on) =>
      Effect.suspend(() => {
        engine.faults.hanging = on
        return on ? engine.hangLatch.close : engine.hangLatch.open
      }),
    slow: (duration) =>
      Effect.sync(() => {
        engine.faults.slowMs =
          duration === null ? 0 : Math.max(0, Duration.toMillis(Duration.decode(duration)))
      }),
    setDown: (value) =>
      Effect.sync(() => {
        engine.faults.down = value
        // Wakes event readers so they fail as a stopped dockerd would end their connections.
        if (value) notify()
      }),
    killContainer: (id, opts) =>
      controlCall((now) =>
        Effect.map(lookup(id), (c) => {
          if (!isUp(c)) return
          if (opts?.oomKilled) emit("container", "oom", c.id, c.labels, now)
          doExit(c, now, opts?.exitCode ?? 137, "kill")
          c.oomKilled = opts?.oomKilled ?? false
        })
      ),
    setHealth: (id, value) =>
      controlCall((now) =>
        Effect.map(lookup(id), (c) => {
          c.healthOverride = value
          emit("container", `health_status: ${value}`, c.id, c.labels, now)
        })
      ),
    pauseContainer: (id) =>
      controlCall((now) =>
        Effect.flatMap(lookup(id), (c) => {
          if (c.state !== "running") {
            return Effect.fail(
              new InvalidContainerState({ container: id, state: c.state, operation: "pause" })
            )
          }
          materializeLogs(c, now)
          c.runMs = runningMs(c, now)
          c.runSince = null
          c.state = "paused"
          emit("container", "pause", c.id, c.labels, now)
          return Effect.void
        })
      ),
    unpauseContainer: (id) =>
      controlCall((now) =>
        Effect.flatMap(lookup(id), (c) => {
          if (c.state !== "paused") {
            return Effect.fail(
              new InvalidContainerState({ container: id, state: c.state, operation: "unpause" })
            )
          }
          c.state = "running"
          c.runSince = now
          c.heartbeatAt = now
          emit("container", "unpause", c.id, c.labels, now)
          return Effect.void
        })
      ),
    calls: Effect.sync(() => ({
      total: engine.faults.total,
      byOperation: { ...engine.faults.byOperation },
      injectedFailures: engine.faults.injectedFailures
    })),
    pushed: Effect.sync(() => [...engine.pushed]),
    resetCalls: Effect.sync(() => {
      engine.faults.total = 0
      engine.faults.injectedFailures = 0
      engine.faults.byOperation = {}
    })
  }
}

/**
 * The keyed lane on the TestClock: one effect at a time per key in arrival order, keys side by
 * side, an interrupted effect (running or waiting) gives the lane up, a lane's state is handed from
 * one turn to the next, and a lane nobody uses is freed (at once, or after its idle time to live).
 */
import { describe, expect, it } from "@effect/vitest"
import * as KeyedLane from "@kyozo/core/supervision/KeyedLane"
import { Deferred, Duration, Effect, Fiber, TestClock } from "effect"

/** An effect that notes when it starts and ends, and takes `ms` on the clock in between. */
const step = (log: Array<string>, name: string, ms: number) =>
  Effect.sync(() => log.push(`${name} start`)).pipe(
    Effect.zipRight(Effect.sleep(Duration.millis(ms))),
    Effect.zipRight(Effect.sync(() => log.push(`${name} end`))),
    Effect.as(name)
  )

describe("KeyedLane", () => {
  it.scoped("runs effects of one key one at a time, in the order they came", () =>
    Effect.gen(function* () {
      const lanes = yield* KeyedLane.make<string>({ initial: () => undefined })
      const log: Array<string> = []
      const first = yield* Effect.fork(lanes.run("a", () => step(log, "first", 100)))
      const second = yield* Effect.fork(lanes.run("a", () => step(log, "second", 100)))
      yield* TestClock.adjust(Duration.millis(50))
      expect(log).toEqual(["first start"])
      yield* TestClock.adjust(Duration.millis(50))
      expect(log).toEqual(["first start", "first end", "second start"])
      yield* TestClock.adjust(Duration.millis(100))
      expect(yield* Fiber.join(first)).toBe("first")
      expect(yield* Fiber.join(second)).toBe("second")
      expect(log).toEqual(["first start", "first end", "second start", "second end"])
    })
  )

  it.scoped("runs effects of different keys side by side", () =>
    Effect.gen(function* () {
      const lanes = yield* KeyedLane.make<string>({ initial: () => undefined })
      const log: Array<string> = []
      const both = yield* Effect.fork(
        Effect.all([lanes.run("a", () => step(log, "a", 100)), lanes.run("b", () => step(log, "b", 100))], {
          concurrency: "unbounded"
        })
      )
      yield* TestClock.adjust(Duration.millis(50))
      expect(log).toEqual(["a start", "b start"])
      yield* TestClock.adjust(Duration.millis(50))
      expect(yield* Fiber.join(both)).toEqual(["a", "b"])
    })
  )

  it.scoped("an interrupted effect gives the lane to the next, whether it was running or waiting", () =>
    Effect.gen(function* () {
      const lanes = yield* KeyedLane.make<string>({ initial: () => undefined })
      const log: Array<string> = []
      const started = yield* Deferred.make<void>()
      const stuck = yield* Effect.fork(
        lanes.run("a", () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never))
      )
      yield* Deferred.await(started)
      const waiting = yield* Effect.fork(lanes.run("a", () => step(log, "waiting", 10)))
      const next = yield* Effect.fork(lanes.run("a", () => step(log, "next", 10)))
      yield* Effect.yieldNow()
      expect(log).toEqual([])
      yield* Fiber.interrupt(waiting)
      yield* Fiber.interrupt(stuck)
      yield* TestClock.adjust(Duration.millis(10))
      expect(yield* Fiber.join(next)).toBe("next")
      expect(log).toEqual(["next start", "next end"])
      expect(yield* lanes.keys).toEqual([])
    })
  )

  it.scoped("hands the lane's state from one turn to the next, read when the turn comes", () =>
    Effect.gen(function* () {
      const lanes = yield* KeyedLane.make<string, { runs: number }>({ initial: () => ({ runs: 0 }) })
      const seen: Array<number> = []
      // `use` reads the state as it is called (as a stale check does), not inside an effect.
      const turn = lanes.run("a", (state) => {
        seen.push(state.runs)
        return Effect.zipRight(
          Effect.sleep(Duration.millis(10)),
          Effect.sync(() => state.runs++)
        )
      })
      const all = yield* Effect.fork(Effect.all([turn, turn, turn], { concurrency: "unbounded" }))
      yield* TestClock.adjust(Duration.millis(30))
      yield* Fiber.join(all)
      expect(seen).toEqual([0, 1, 2])
    })
  )

  it.scoped("frees a lane as soon as nobody uses it, by default", () =>
    Effect.gen(function* () {
      const lanes = yield* KeyedLane.make<string, { runs: number }>({ initial: () => ({ runs: 0 }) })
      const during = yield* lanes.run("a", (state) =>
        Effect.zipRight(
          Effect.sync(() => state.runs++),
          lanes.keys
        )
      )
      expect(during).toEqual(["a"])
      expect(yield* lanes.keys).toEqual([])
      // A new lane starts from the initial state.
      expect(yield* lanes.run("a", (state) => Effect.succeed(state.runs))).toBe(0)
    })
  )

  it.scoped("keeps an idle lane and its state for its time to live, then frees it", () =>
    Effect.gen(function* () {
      const lanes = yield* KeyedLane.make<string, { runs: number }>({
        initial: () => ({ runs: 0 }),
        idleTimeToLive: Duration.minutes(1)
      })
      const bump = lanes.run("gone", (state) => Effect.sync(() => ++state.runs))
      expect(yield* bump).toBe(1)
      yield* TestClock.adjust(Duration.seconds(59))
      expect(yield* lanes.keys).toEqual(["gone"])
      // A use within the time to live keeps the state and starts the idle time again.
      expect(yield* bump).toBe(2)
      yield* TestClock.adjust(Duration.seconds(59))
      expect(yield* lanes.keys).toEqual(["gone"])
      yield* TestClock.adjust(Duration.seconds(2))
      expect(yield* lanes.keys).toEqual([])
      expect(yield* bump).toBe(1)
    })
  )

  it.effect("a process-long lane (unsafeMake) serialises and frees its keys too", () =>
    Effect.gen(function* () {
      const lanes = KeyedLane.unsafeMake<string>({ initial: () => undefined })
      const log: Array<string> = []
      const both = yield* Effect.fork(
        Effect.all([lanes.run("a", () => step(log, "one", 10)), lanes.run("a", () => step(log, "two", 10))], {
          concurrency: "unbounded"
        })
      )
      yield* TestClock.adjust(Duration.millis(20))
      yield* Fiber.join(both)
      expect(log).toEqual(["one start", "one end", "two start", "two end"])
      expect(yield* lanes.keys).toEqual([])
    })
  )
})

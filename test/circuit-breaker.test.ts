/**
 * The circuit breaker on the TestClock: tripping (consecutive and ratio), fast-fail while open,
 * half-open trials, backoff, what counts as a failure, the change stream, streams, the runtime
 * guard over the MockRuntime, and a fast-check property over random call/time sequences.
 */
import { describe, expect, it } from "@effect/vitest"
import { CircuitOpen, ContainerNotFound, DockerUnavailable } from "@kyozo/api/domain/RuntimeErrors"
import * as CircuitBreaker from "@kyozo/core/engine/CircuitBreaker"
import { RuntimeBreaker } from "@kyozo/core/engine/CircuitBreaker"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as MockRuntime from "@kyozo/core/engine/MockRuntime"
import { MockRuntimeControl } from "@kyozo/core/engine/MockRuntime"
import {
  Chunk,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Option,
  Queue,
  Stream,
  TestClock,
  TestContext,
  TestServices
} from "effect"
import * as fc from "fast-check"

class Boom {
  readonly _tag = "Boom"
}
class Answer {
  readonly _tag = "Answer"
}

/** An effect that counts its runs, then succeeds or fails. */
const counter = () => {
  let runs = 0
  return {
    runs: () => runs,
    ok: Effect.sync(() => {
      runs++
      return "ok"
    }),
    fail: Effect.suspend(() => {
      runs++
      return Effect.fail(new Boom())
    })
  }
}

const failTimes = (
  breaker: CircuitBreaker.CircuitBreaker,
  effect: Effect.Effect<unknown, unknown>,
  n: number
) =>
  Effect.forEach(Array.from({ length: n }), () => Effect.either(breaker.protect(effect)), { discard: true })

describe("CircuitBreaker", () => {
  it.effect("opens after N consecutive failures and fails fast without running the effect", () =>
    Effect.gen(function* () {
      const breaker = yield* CircuitBreaker.make({ name: "t", failureThreshold: 3 })
      const c = counter()
      yield* failTimes(breaker, c.fail, 2)
      expect((yield* breaker.status).state).toBe("closed")
      // A success resets the consecutive count.
      yield* breaker.protect(c.ok)
      yield* failTimes(breaker, c.fail, 2)
      expect((yield* breaker.status).consecutiveFailures).toBe(2)
      yield* failTimes(breaker, c.fail, 1)
      const status = yield* breaker.status
      expect(status.state).toBe("open")
      expect(status.openedAt).toBe(0)
      expect(status.retryAt).toBe(10_000)
      expect(c.runs()).toBe(6)

      for (let i = 0; i < 5; i++) {
        const error = yield* Effect.flip(breaker.protect(c.ok))
        expect(error).toBeInstanceOf(CircuitOpen)
        expect(error._tag === "CircuitOpen" && error.retryAt).toBe(10_000)
      }
      expect(c.runs()).toBe(6)
      yield* TestClock.adjust(Duration.millis(9_999))
      expect(Either.isLeft(yield* Effect.either(breaker.protect(c.ok)))).toBe(true)
      expect(c.runs()).toBe(6)
      const after = yield* breaker.status
      expect(after.totals).toEqual({ calls: 12, successes: 1, failures: 5, rejections: 6, interruptions: 0 })
    })
  )

  it.effect("half-open after the wait lets limited trials through; a trial success closes", () =>
    Effect.gen(function* () {
      const breaker = yield* CircuitBreaker.make({ name: "t", failureThreshold: 1, resetAfter: "5 seconds" })
      const c = counter()
      yield* failTimes(breaker, c.fail, 1)
      yield* TestClock.adjust(Duration.seconds(5))
      expect((yield* breaker.status).state).toBe("half-open")

      const gate = yield* Deferred.make<void>()
      const trial = yield* Effect.fork(breaker.protect(Deferred.await(gate).pipe(Effect.zipRight(c.ok))))
      yield* Effect.yieldNow()
      expect((yield* breaker.status).halfOpenInFlight).toBe(1)
      // Only one trial at a time: the others fail fast.
      expect((yield* Effect.flip(breaker.protect(c.ok)))._tag).toBe("CircuitOpen")
      expect(c.runs()).toBe(1)

      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(trial)).toBe("ok")
      const status = yield* breaker.status
      expect(status.state).toBe("closed")
      expect(status.halfOpenInFlight).toBe(0)
      expect(status.trips).toBe(0)
      yield* breaker.protect(c.ok)
    })
  )

  it.effect("successThreshold and halfOpenMaxCalls: several trials, several successes to close", () =>
    Effect.gen(function* () {
      const breaker = yield* CircuitBreaker.make({
        name: "t",
        failureThreshold: 1,
        halfOpenMaxCalls: 2,
        successThreshold: 2
      })
      const c = counter()
      yield* failTimes(breaker, c.fail, 1)
      yield* TestClock.adjust(Duration.seconds(10))
      yield* breaker.protect(c.ok)
      expect((yield* breaker.status).state).toBe("half-open")
      yield* breaker.protect(c.ok)
      expect((yield* breaker.status).state).toBe("closed")
    })
  )

  it.effect("a trial failure re-opens, with the open time growing by the backoff factor up to the cap", () =>
    Effect.gen(function* () {
      const breaker = yield* CircuitBreaker.make({
        name: "t",
        failureThreshold: 1,
        resetAfter: "10 seconds",
        backoffFactor: 2,
        maxResetAfter: "30 seconds"
      })
      const c = counter()
      yield* failTimes(breaker, c.fail, 1)
      expect((yield* breaker.status).openForMs).toBe(10_000)
      yield* TestClock.adjust(Duration.seconds(10))
      yield* failTimes(breaker, c.fail, 1) // the trial fails
      let status = yield* breaker.status
      expect(status.state).toBe("open")
      expect(status.openForMs).toBe(20_000)
      expect(status.retryAt).toBe(30_000)
      yield* TestClock.adjust(Duration.seconds(20))
      yield* failTimes(breaker, c.fail, 1)
      status = yield* breaker.status
      expect(status.openForMs).toBe(30_000) // 40 s capped at 30 s
      expect(status.trips).toBe(3)
      yield* TestClock.adjust(Duration.seconds(30))
      yield* breaker.protect(c.ok)
      status = yield* breaker.status
      expect(status.state).toBe("closed")
      // Closing forgets the trips: the next open period is the base one again.
      yield* failTimes(breaker, c.fail, 1)
      expect((yield* breaker.status).openForMs).toBe(10_000)
    })
  )

  it.effect("the ratio window trips on interleaved failures once minimumCalls is reached", () =>
    Effect.gen(function* () {
      const breaker = yield* CircuitBreaker.make({
        name: "t",
        failureThreshold: 100,
        windowSize: 10,
        minimumCalls: 10,
        failureRateThreshold: 0.5
      })
      const c = counter()
      for (let i = 0; i < 9; i++) yield* Effect.either(breaker.protect(i % 2 === 1 ? c.fail : c.ok))
      let status = yield* breaker.status
      expect(status.state).toBe("closed")
      expect(status.window).toEqual({ size: 10, calls: 9, failures: 4, failureRate: 4 / 9 })
      expect(status.consecutiveFailures).toBe(0)
      yield* Effect.either(breaker.protect(c.fail)) // 5 of 10 failed: 50 %
      status = yield* breaker.status
      expect(status.state).toBe("open")
      expect(status.lastChange?.reason).toBe("50% of the last 10 calls failed")
    })
  )

  it.effect(
    "failures the predicate rejects are answers; defects and timeouts count; interruptions don't",
    () =>
      Effect.gen(function* () {
        const breaker = yield* CircuitBreaker.make({
          name: "t",
          failureThreshold: 2,
          isFailure: (e) => !(e instanceof Answer)
        })
        for (let i = 0; i < 5; i++) yield* Effect.either(breaker.protect(Effect.fail(new Answer())))
        expect((yield* breaker.status).state).toBe("closed")
        expect((yield* breaker.status).totals.successes).toBe(5)

        // Interruption: the caller gave up, nothing is counted against the callee.
        const hung = yield* Effect.fork(breaker.protect(Effect.never))
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(hung)
        const outside = yield* Effect.fork(breaker.protect(Effect.never).pipe(Effect.timeout("1 second")))
        yield* TestClock.adjust(Duration.seconds(1))
        yield* Fiber.await(outside)
        let status = yield* breaker.status
        expect(status.totals.interruptions).toBe(2)
        expect(status.consecutiveFailures).toBe(0)

        // A defect counts.
        yield* Effect.exit(breaker.protect(Effect.die("bug")))
        expect((yield* breaker.status).consecutiveFailures).toBe(1)
        // A timeout inside the protected call counts (and opens at 2).
        const timed = yield* Effect.fork(
          Effect.exit(breaker.protect(Effect.never.pipe(Effect.timeout("2 seconds"))))
        )
        yield* TestClock.adjust(Duration.seconds(2))
        yield* Fiber.join(timed)
        status = yield* breaker.status
        expect(status.state).toBe("open")
        expect(status.totals.failures).toBe(2)
      })
  )

  it.scoped("the change stream emits every transition with its reason", () =>
    Effect.gen(function* () {
      const breaker = yield* CircuitBreaker.make({ name: "t", failureThreshold: 1, resetAfter: "1 second" })
      const changes = yield* breaker.subscribe
      const viaStream = yield* breaker.changes.pipe(Stream.take(4), Stream.runCollect, Effect.fork)
      // Give the forked reader real time to subscribe (the stream subscribes when it starts).
      yield* TestServices.provideLive(Effect.sleep("20 millis"))
      const c = counter()
      yield* failTimes(breaker, c.fail, 1)
      yield* TestClock.adjust(Duration.seconds(1))
      yield* failTimes(breaker, c.fail, 1)
      yield* TestClock.adjust(Duration.seconds(1))
      yield* breaker.protect(c.ok)
      const seen = Chunk.toReadonlyArray(yield* Queue.takeAll(changes))
      expect(seen.map((s) => `${s.from}→${s.to}`)).toEqual([
        "closed→open",
        "open→half-open",
        "half-open→open",
        "open→half-open",
        "half-open→closed"
      ])
      expect(seen.map((s) => s.at)).toEqual([0, 1_000, 1_000, 2_000, 2_000])
      expect(seen[0]!.reason).toBe("1 consecutive failures")
      expect(seen[2]!.reason).toBe("trial call failed")
      expect(Chunk.toReadonlyArray(yield* Fiber.join(viaStream)).map((s) => s.to)).toEqual([
        "open",
        "half-open",
        "open",
        "half-open"
      ])
      yield* breaker.reset // already closed: no change
      expect(yield* Queue.size(changes)).toBe(0)
    })
  )

  it.effect("protectStream: a failing stream counts once; open fast-fails before the stream runs", () =>
    Effect.gen(function* () {
      const breaker = yield* CircuitBreaker.make({ name: "t", failureThreshold: 2 })
      let pulls = 0
      const failing = Stream.fromEffect(Effect.sync(() => pulls++)).pipe(
        Stream.flatMap(() => Stream.fail(new Boom()))
      )
      yield* Effect.either(Stream.runDrain(breaker.protectStream(failing)))
      expect((yield* breaker.status).consecutiveFailures).toBe(1)
      // Elements then a success at the end: one success.
      expect(
        Chunk.toReadonlyArray(yield* Stream.runCollect(breaker.protectStream(Stream.make(1, 2, 3))))
      ).toEqual([1, 2, 3])
      let status = yield* breaker.status
      expect(status.consecutiveFailures).toBe(0)
      expect(status.totals.successes).toBe(1)
      yield* Effect.either(Stream.runDrain(breaker.protectStream(failing)))
      yield* Effect.either(Stream.runDrain(breaker.protectStream(failing)))
      expect((yield* breaker.status).state).toBe("open")
      const error = yield* Effect.flip(Stream.runDrain(breaker.protectStream(failing)))
      expect(error._tag).toBe("CircuitOpen")
      expect(pulls).toBe(3)

      // Half-open: a long stream's first element is its successful trial; it does not hold the slot.
      yield* TestClock.adjust(Duration.seconds(10))
      const endless = yield* breaker
        .protectStream(Stream.concat(Stream.make(1), Stream.never))
        .pipe(Stream.runDrain, Effect.fork)
      yield* TestServices.provideLive(Effect.sleep("20 millis"))
      status = yield* breaker.status
      expect(status.state).toBe("closed")
      expect(status.halfOpenInFlight).toBe(0)
      yield* Fiber.interrupt(endless)
    })
  )
})

describe("guardRuntime over the MockRuntime", () => {
  const guarded = (options: CircuitBreaker.RuntimeBreakerOptions = {}) =>
    Effect.gen(function* () {
      const { control, runtime } = yield* MockRuntime.make()
      const breaker = yield* CircuitBreaker.make({
        name: "docker",
        isFailure: CircuitBreaker.isRuntimeEngineFailure,
        ...options
      })
      return { control, breaker, rt: CircuitBreaker.guardRuntime(breaker, runtime, options) }
    })

  it.effect("a down engine opens the circuit; calls then fail fast; recovery goes half-open → closed", () =>
    Effect.gen(function* () {
      const { breaker, control, rt } = yield* guarded()
      const c = yield* rt.createContainer({ name: "web", image: "busybox" })
      // Answers about objects are not engine sickness.
      for (let i = 0; i < 6; i++) {
        const missing = yield* Effect.flip(rt.inspectContainer("nope"))
        expect(missing).toBeInstanceOf(ContainerNotFound)
      }
      expect((yield* breaker.status).state).toBe("closed")

      yield* control.setDown(true)
      for (let i = 0; i < 5; i++) expect(yield* Effect.flip(rt.ping)).toBeInstanceOf(DockerUnavailable)
      expect((yield* breaker.status).state).toBe("open")
      const before = (yield* control.calls).total
      const fast = yield* Effect.flip(rt.startContainer(c.id))
      expect(fast).toBeInstanceOf(CircuitOpen)
      expect((yield* Effect.flip(Stream.runDrain(rt.events())))._tag).toBe("CircuitOpen")
      expect((yield* control.calls).total).toBe(before) // the engine was not called

      yield* control.setDown(false)
      yield* TestClock.adjust(Duration.seconds(10))
      expect((yield* breaker.status).state).toBe("half-open")
      yield* rt.startContainer(c.id)
      expect((yield* breaker.status).state).toBe("closed")
      expect((yield* rt.inspectContainer(c.id)).state).toBe("running")
    })
  )

  it.effect("a hung engine: callTimeout turns hangs into DockerTimeout, which trips the breaker", () =>
    Effect.gen(function* () {
      const { breaker, control, rt } = yield* guarded({ callTimeout: "2 seconds", failureThreshold: 2 })
      yield* control.hang(true)
      const calls = yield* Effect.fork(Effect.forEach([1, 2], () => Effect.flip(rt.ping)))
      yield* TestClock.adjust(Duration.seconds(4))
      const errors = yield* Fiber.join(calls)
      expect(errors.map((e) => e._tag)).toEqual(["DockerTimeout", "DockerTimeout"])
      expect((yield* breaker.status).state).toBe("open")
      expect((yield* Effect.flip(rt.ping))._tag).toBe("CircuitOpen")
    })
  )

  it.effect("layerRuntime provides the guarded runtime and its breaker as RuntimeBreaker", () =>
    Effect.gen(function* () {
      const rt = yield* ContainerRuntime
      const breaker = yield* RuntimeBreaker
      const control = yield* MockRuntimeControl
      expect(breaker.name).toBe("mock")
      yield* control.failNext(3)
      for (let i = 0; i < 3; i++) yield* Effect.either(rt.ping)
      expect((yield* Effect.flip(rt.ping))._tag).toBe("CircuitOpen")
      expect((yield* breaker.status).totals.rejections).toBe(1)
    }).pipe(
      Effect.provide(
        CircuitBreaker.layerRuntime({ failureThreshold: 3 }).pipe(Layer.provideMerge(MockRuntime.layer))
      )
    )
  )
})

// ---------------------------------------------------------------------------------------------
// Property: whatever happens, no call runs while the breaker is open before retryAt, and no more
// than halfOpenMaxCalls half-open trials run at once.

type Command =
  | { readonly _tag: "ok" }
  | { readonly _tag: "fail" }
  | { readonly _tag: "hold" }
  | { readonly _tag: "finish"; readonly index: number; readonly fail: boolean }
  | { readonly _tag: "advance"; readonly ms: number }

// Weighted so that runs often reach half-open with several calls held in flight.
const command: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.constant<Command>({ _tag: "ok" }), weight: 2 },
  { arbitrary: fc.constant<Command>({ _tag: "fail" }), weight: 3 },
  { arbitrary: fc.constant<Command>({ _tag: "hold" }), weight: 3 },
  {
    arbitrary: fc
      .record({ index: fc.nat(10), fail: fc.boolean() })
      .map((r): Command => ({ _tag: "finish", ...r })),
    weight: 2
  },
  {
    arbitrary: fc.integer({ min: 0, max: 45_000 }).map((ms): Command => ({ _tag: "advance", ms })),
    weight: 2
  }
)

const scenario = (commands: ReadonlyArray<Command>, halfOpenMaxCalls: number) =>
  Effect.gen(function* () {
    const breaker = yield* CircuitBreaker.make({
      name: "prop",
      failureThreshold: 3,
      windowSize: 6,
      minimumCalls: 4,
      halfOpenMaxCalls,
      backoffFactor: 2,
      maxResetAfter: "40 seconds"
    })
    const violations: Array<string> = []
    let trialsRunning = 0
    const held: Array<{
      readonly gate: Deferred.Deferred<boolean>
      readonly fiber: Fiber.RuntimeFiber<unknown, unknown>
    }> = []

    /** One call: checks what the breaker looked like just before it, and whether the body ran. */
    const attempt = (body: (trial: boolean) => Effect.Effect<unknown, unknown>, wait: boolean) =>
      Effect.gen(function* () {
        const before = yield* breaker.status
        const now = yield* TestClockNow
        const trial = before.state === "half-open"
        const started = yield* Deferred.make<void>()
        const run = breaker.protect(
          Effect.suspend(() => {
            if (before.state === "open" && before.retryAt !== null && now < before.retryAt) {
              violations.push(`ran while open at ${now} < ${before.retryAt}`)
            }
            if (trial && ++trialsRunning > halfOpenMaxCalls)
              violations.push(`${trialsRunning} trials at once`)
            return Deferred.succeed(started, undefined).pipe(
              Effect.zipRight(body(trial)),
              Effect.ensuring(Effect.sync(() => (trial ? trialsRunning-- : undefined)))
            )
          })
        )
        if (!wait) return yield* Effect.either(run).pipe(Effect.asVoid)
        const fiber = yield* Effect.fork(run)
        yield* Effect.raceFirst(Deferred.await(started), Fiber.await(fiber))
        return fiber
      })

    for (const cmd of commands) {
      switch (cmd._tag) {
        case "ok":
          yield* attempt(() => Effect.void, false)
          break
        case "fail":
          yield* attempt(() => Effect.fail("no"), false)
          break
        case "hold": {
          const gate = yield* Deferred.make<boolean>()
          const fiber = yield* attempt(
            () => Effect.flatMap(Deferred.await(gate), (f) => (f ? Effect.fail("no") : Effect.void)),
            true
          )
          if (fiber) held.push({ gate, fiber: fiber as Fiber.RuntimeFiber<unknown, unknown> })
          break
        }
        case "finish": {
          const entry = held.splice(cmd.index % Math.max(1, held.length), 1)[0]
          if (entry) {
            yield* Deferred.succeed(entry.gate, cmd.fail)
            yield* Fiber.await(entry.fiber)
          }
          break
        }
        case "advance":
          yield* TestClock.adjust(Duration.millis(cmd.ms))
          break
      }
      const status = yield* breaker.status
      if (status.halfOpenInFlight > halfOpenMaxCalls)
        violations.push(`halfOpenInFlight ${status.halfOpenInFlight}`)
    }
    for (const h of held) yield* Fiber.interrupt(h.fiber)
    return violations
  })

const TestClockNow = Effect.clockWith((clock) => clock.currentTimeMillis)

describe("CircuitBreaker property", () => {
  it("never lets a call through while open before retryAt, never exceeds the half-open trials", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(command, { minLength: 10, maxLength: 40, size: "max" }),
        fc.integer({ min: 1, max: 3 }),
        async (cmds, max) => {
          const violations = await Effect.runPromise(
            scenario(cmds, max).pipe(Effect.provide(TestContext.TestContext))
          )
          expect(violations).toEqual([])
        }
      ),
      { numRuns: 150 }
    )
  })

  it.effect("the scenario harness reaches a held half-open trial with a second call rejected", () =>
    Effect.gen(function* () {
      const violations = yield* scenario(
        [
          { _tag: "fail" },
          { _tag: "fail" },
          { _tag: "fail" },
          { _tag: "advance", ms: 10_000 },
          { _tag: "hold" },
          { _tag: "hold" },
          { _tag: "finish", index: 0, fail: false },
          { _tag: "hold" }
        ],
        1
      )
      expect(violations).toEqual([])
      const breaker = yield* CircuitBreaker.make({ name: "x", failureThreshold: 1 })
      yield* Effect.either(breaker.protect(Effect.fail("no")))
      const ran = yield* Effect.exit(breaker.protect(Effect.void))
      expect(Exit.isFailure(ran)).toBe(true)
      expect(Option.isSome(Option.fromNullable((yield* breaker.status).retryAt))).toBe(true)
    })
  )
})

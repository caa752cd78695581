import { assert, describe, it } from "@effect/vitest"
import * as Supervisor from "@kyozo/core/supervision/Supervisor"
import {
  Cause,
  Chunk,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Logger,
  LogLevel,
  Option,
  Ref,
  Stream,
  TestClock
} from "effect"

// A harness of controllable children: each start logs `start:<id>` and waits on a fresh Deferred the
// test completes (normal exit), fails (failure) or kills (defect); interruption logs `stop:<id>`.
const makeHarness = Effect.gen(function* () {
  const log = yield* Ref.make<ReadonlyArray<string>>([])
  const triggers = new Map<string, Deferred.Deferred<void, string>>()
  const append = (entry: string) => Ref.update(log, (l) => [...l, entry])

  const child = (
    id: string,
    restart: Supervisor.RestartType = "permanent",
    shutdown?: Duration.DurationInput
  ): Supervisor.ChildSpec => ({
    id,
    restart,
    shutdown,
    start: Effect.gen(function* () {
      const trigger = yield* Deferred.make<void, string>()
      triggers.set(id, trigger)
      yield* append(`start:${id}`)
      yield* Deferred.await(trigger)
    }).pipe(Effect.onInterrupt(() => append(`stop:${id}`)))
  })

  const trigger = (id: string) => {
    const d = triggers.get(id)
    if (d === undefined) throw new Error(`child ${id} never started`)
    return d
  }
  const fail = (id: string) => Deferred.fail(trigger(id), `boom:${id}`)
  const complete = (id: string) => Deferred.succeed(trigger(id), undefined)
  const kill = (id: string) => Deferred.die(trigger(id), new Error(`defect:${id}`))

  /** Waits until the log equals `expected`, then checks it stays so (nothing extra happens). */
  const expectLog = (expected: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      for (let i = 0; i < 1000; i++) {
        if (JSON.stringify(yield* Ref.get(log)) === JSON.stringify(expected)) break
        yield* Effect.yieldNow()
      }
      for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
      assert.deepStrictEqual(yield* Ref.get(log), expected)
    })

  return { log, child, fail, complete, kill, expectLog, append }
})

const statuses = (handle: Supervisor.SupervisorHandle) =>
  Effect.map(handle.children, (cs) => cs.map((c) => `${c.id}:${c.status}:${c.restarts}`))

/** Waits (bounded, so a bug fails instead of spinning) until some fiber sleeps until `wakeMillis` on the TestClock. */
const sleepingUntil = (wakeMillis: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < 1000; i++) {
      if (Chunk.some(yield* TestClock.sleeps(), (t) => t === wakeMillis)) return
      yield* Effect.yieldNow()
    }
    assert.fail(`no fiber sleeps until ${wakeMillis} ms: ${Chunk.toReadonlyArray(yield* TestClock.sleeps())}`)
  })

const isPending = (handle: Supervisor.SupervisorHandle) =>
  Effect.fork(handle.await).pipe(
    Effect.flatMap((f) =>
      Effect.gen(function* () {
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
        const poll = yield* Fiber.poll(f)
        yield* Fiber.interrupt(f)
        return Option.isNone(poll)
      })
    )
  )

describe("Supervisor", () => {
  it.effect("starts children in spec order and stops them in reverse order when its scope closes", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness
      yield* Effect.scoped(
        Effect.gen(function* () {
          const sup = yield* Supervisor.start({
            name: "root",
            strategy: "one_for_one",
            children: [h.child("a"), h.child("b"), h.child("c")]
          })
          yield* h.expectLog(["start:a", "start:b", "start:c"])
          assert.deepStrictEqual(yield* statuses(sup), ["a:running:0", "b:running:0", "c:running:0"])
        })
      )
      assert.deepStrictEqual(yield* Ref.get(h.log), [
        "start:a",
        "start:b",
        "start:c",
        "stop:c",
        "stop:b",
        "stop:a"
      ])
    })
  )

  it.scoped("one_for_one restarts only the failed child and logs its exit with the cause", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness
      const logs = yield* Ref.make<ReadonlyArray<{ level: string; message: string; cause: string }>>([])
      const capture = Logger.make(({ logLevel, message, cause }) => {
        Effect.runSync(
          Ref.update(logs, (l) => [
            ...l,
            { level: logLevel.label, message: String(message), cause: Cause.pretty(cause) }
          ])
        )
      })
      const sup = yield* Supervisor.start({
        name: "root",
        strategy: "one_for_one",
        maxRestarts: 3,
        children: [h.child("a"), h.child("b"), h.child("c")]
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
      yield* h.expectLog(["start:a", "start:b", "start:c"])
      yield* h.fail("b")
      yield* h.expectLog(["start:a", "start:b", "start:c", "start:b"])
      assert.deepStrictEqual(yield* statuses(sup), ["a:running:0", "b:running:1", "c:running:0"])
      const warnings = (yield* Ref.get(logs)).filter((l) => l.level === LogLevel.Warning.label)
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0]!.message, "child b exited (failure)")
      assert.include(warnings[0]!.cause, "boom:b")
    })
  )

  it.scoped("one_for_all stops the others right to left, then starts all left to right", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness
      const sup = yield* Supervisor.start({
        name: "root",
        strategy: "one_for_all",
        maxRestarts: 3,
        children: [h.child("a"), h.child("b"), h.child("c")]
      })
      yield* h.expectLog(["start:a", "start:b", "start:c"])
      yield* h.fail("b")
      yield* h.expectLog([
        "start:a",
        "start:b",
        "start:c",
        "stop:c",
        "stop:a",
        "start:a",
        "start:b",
        "start:c"
      ])
      assert.deepStrictEqual(yield* statuses(sup), ["a:running:1", "b:running:1", "c:running:1"])
    })
  )

  it.scoped("rest_for_one restarts the failed child and those started after it, in order", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness
      const sup = yield* Supervisor.start({
        name: "root",
        strategy: "rest_for_one",
        maxRestarts: 3,
        children: [h.child("a"), h.child("b"), h.child("c"), h.child("d")]
      })
      const started = ["start:a", "start:b", "start:c", "start:d"]
      yield* h.expectLog(started)
      yield* h.fail("b")
      yield* h.expectLog([...started, "stop:d", "stop:c", "start:b", "start:c", "start:d"])
      assert.deepStrictEqual(yield* statuses(sup), [
        "a:running:0",
        "b:running:1",
        "c:running:1",
        "d:running:1"
      ])
      // The last child failing restarts only itself.
      yield* h.fail("d")
      yield* h.expectLog([...started, "stop:d", "stop:c", "start:b", "start:c", "start:d", "start:d"])
    })
  )

  it.scoped("permanent restarts on any exit, transient only on failure or defect, temporary never", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness
      const sup = yield* Supervisor.start({
        name: "root",
        strategy: "one_for_one",
        maxRestarts: 10,
        children: [h.child("perm", "permanent"), h.child("trans", "transient"), h.child("temp", "temporary")]
      })
      const started = ["start:perm", "start:trans", "start:temp"]
      yield* h.expectLog(started)

      yield* h.complete("perm") // normal exit of a permanent child: restarted
      yield* h.expectLog([...started, "start:perm"])
      yield* h.fail("trans") // failure of a transient child: restarted
      yield* h.expectLog([...started, "start:perm", "start:trans"])
      yield* h.kill("trans") // defect of a transient child: restarted
      yield* h.expectLog([...started, "start:perm", "start:trans", "start:trans"])
      yield* h.complete("trans") // normal exit of a transient child: not restarted
      yield* h.fail("temp") // failure of a temporary child: not restarted
      yield* h.expectLog([...started, "start:perm", "start:trans", "start:trans"])
      assert.deepStrictEqual(yield* statuses(sup), ["perm:running:1", "trans:stopped:2", "temp:stopped:0"])

      const events = yield* sup.events.pipe(
        Stream.filter(Supervisor.SupervisorEvent.$is("ChildExited")),
        Stream.take(5),
        Stream.runCollect
      )
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(events).map((e) => `${e.childId}:${e.reason}`),
        ["perm:normal", "trans:failure", "trans:failure", "trans:normal", "temp:failure"]
      )
    })
  )

  it.scoped(
    "tolerates MaxR restarts within MaxT and escalates on restart MaxR+1, stopping children right to left",
    () =>
      Effect.gen(function* () {
        const h = yield* makeHarness
        const sup = yield* Supervisor.start({
          name: "root",
          strategy: "one_for_one",
          maxRestarts: 3,
          maxSeconds: 10,
          children: [h.child("a"), h.child("b"), h.child("c")]
        })
        const started = ["start:a", "start:b", "start:c"]
        yield* h.expectLog(started)
        for (let i = 1; i <= 3; i++) {
          yield* h.fail("b")
          yield* h.expectLog([...started, ...Array.from({ length: i }, () => "start:b")])
          yield* TestClock.adjust("1 second")
        }
        assert.isTrue(yield* isPending(sup))
        assert.deepStrictEqual(yield* statuses(sup), ["a:running:0", "b:running:3", "c:running:0"])

        yield* h.fail("b") // the 4th restart within 10 s
        const exit = yield* Effect.exit(sup.await)
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        assert.isTrue(Option.isSome(error))
        const escalation = Option.getOrThrow(error)
        assert.strictEqual(escalation._tag, "SupervisorEscalation")
        assert.strictEqual(escalation.supervisor, "root")
        assert.strictEqual(escalation.childId, "b")
        assert.strictEqual(escalation.restarts, 4)
        assert.strictEqual(escalation.withinSeconds, 10)
        assert.deepStrictEqual(Cause.failureOption(escalation.cause), Option.some("boom:b"))
        yield* h.expectLog([...started, "start:b", "start:b", "start:b", "stop:c", "stop:a"])
        assert.deepStrictEqual(yield* statuses(sup), ["a:stopped:0", "b:stopped:3", "c:stopped:0"])

        const notRunning = yield* Effect.flip(sup.restartChild("a"))
        assert.strictEqual(notRunning._tag, "SupervisorNotRunning")
      })
  )

  it.scoped(
    "intensity is a sliding window: restarts at 8 s, 12 s, 17 s escalate (a 10 s tumbling window would not)",
    () =>
      Effect.gen(function* () {
        const h = yield* makeHarness
        const sup = yield* Supervisor.start({
          name: "root",
          strategy: "one_for_one",
          maxRestarts: 2,
          maxSeconds: 10,
          children: [h.child("a")]
        })
        yield* h.expectLog(["start:a"])
        yield* TestClock.adjust("8 seconds")
        yield* h.fail("a") // t = 8
        yield* h.expectLog(["start:a", "start:a"])
        yield* TestClock.adjust("4 seconds")
        yield* h.fail("a") // t = 12: a tumbling window [10, 20) would start counting afresh here
        yield* h.expectLog(["start:a", "start:a", "start:a"])
        assert.isTrue(yield* isPending(sup))
        yield* TestClock.adjust("5 seconds")
        yield* h.fail("a") // t = 17: 8, 12, 17 all lie within the last 10 s
        const escalation = yield* Effect.flip(sup.await)
        assert.strictEqual(escalation.restarts, 3)
        assert.strictEqual(escalation.childId, "a")
      })
  )

  it.scoped("intensity forgets restarts older than MaxT as time slides on", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness
      const sup = yield* Supervisor.start({
        name: "root",
        strategy: "one_for_one",
        maxRestarts: 2,
        maxSeconds: 10,
        children: [h.child("a")]
      })
      yield* h.expectLog(["start:a"])
      yield* h.fail("a") // t = 0
      yield* h.expectLog(["start:a", "start:a"])
      yield* TestClock.adjust("5 seconds")
      yield* h.fail("a") // t = 5
      yield* h.expectLog(["start:a", "start:a", "start:a"])
      yield* TestClock.adjust("5500 millis")
      yield* h.fail("a") // t = 10.5: the restart at 0 has left the window; 5 and 10.5 remain
      yield* h.expectLog(["start:a", "start:a", "start:a", "start:a"])
      assert.isTrue(yield* isPending(sup))
      yield* TestClock.adjust("4500 millis")
      yield* h.fail("a") // t = 15: 5, 10.5 and 15 are within the last 10 s (inclusive, as OTP)
      const escalation = yield* Effect.flip(sup.await)
      assert.strictEqual(escalation.restarts, 3)
    })
  )

  it.scoped("a nested supervisor's escalation reaches the parent, which restarts the child supervisor", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness
      const innerHandles = yield* Ref.make<ReadonlyArray<Supervisor.SupervisorHandle>>([])
      const inner: Supervisor.SupervisorSpec = {
        name: "inner",
        strategy: "one_for_one",
        maxRestarts: 0,
        children: [h.child("i1"), h.child("i2")]
      }
      const parent = yield* Supervisor.start({
        name: "parent",
        strategy: "one_for_one",
        maxRestarts: 3,
        children: [
          h.child("w"),
          Supervisor.asChild(inner, {
            onStart: (handle) => Ref.update(innerHandles, (hs) => [...hs, handle])
          })
        ]
      })
      yield* h.expectLog(["start:w", "start:i1", "start:i2"])
      yield* h.fail("i1") // MaxR = 0: the inner supervisor gives up at once
      yield* h.expectLog(["start:w", "start:i1", "start:i2", "stop:i2", "start:i1", "start:i2"])
      assert.deepStrictEqual(yield* statuses(parent), ["w:running:0", "inner:running:1"])

      const handles = yield* Ref.get(innerHandles)
      assert.strictEqual(handles.length, 2)
      const first = yield* Effect.flip(handles[0]!.await)
      assert.strictEqual(first.childId, "i1")
      assert.deepStrictEqual(yield* statuses(handles[1]!), ["i1:running:0", "i2:running:0"])

      const exited = yield* parent.events.pipe(
        Stream.filter(Supervisor.SupervisorEvent.$is("ChildExited")),
        Stream.take(1),
        Stream.runHead
      )
      assert.isTrue(Option.isSome(exited))
      const exitedEvent = Option.getOrThrow(exited)
      assert.strictEqual(exitedEvent.childId, "inner")
      assert.strictEqual(exitedEvent.reason, "failure")
      const failure = Cause.failureOption(exitedEvent.cause)
      assert.isTrue(failure.pipe(Option.exists((e) => e instanceof Supervisor.SupervisorEscalation)))
    })
  )

  it.effect("a nested supervisor stops its subtree right to left when the parent's scope closes", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness
      yield* Effect.scoped(
        Effect.gen(function* () {
          yield* Supervisor.start({
            name: "parent",
            strategy: "one_for_one",
            children: [
              h.child("w"),
              Supervisor.asChild({
                name: "inner",
                strategy: "one_for_one",
                children: [h.child("i1"), h.child("i2")]
              }),
              h.child("z")
            ]
          })
          // The parent waits for the inner supervisor to start its children before starting z.
          yield* h.expectLog(["start:w", "start:i1", "start:i2", "start:z"])
        })
      )
      assert.deepStrictEqual(yield* Ref.get(h.log), [
        "start:w",
        "start:i1",
        "start:i2",
        "start:z",
        "stop:z",
        "stop:i2",
        "stop:i1",
        "stop:w"
      ])
    })
  )

  it.scoped(
    "a child that ignores interruption is abandoned after its shutdown time and the stop completes",
    () =>
      Effect.gen(function* () {
        const h = yield* makeHarness
        const release = yield* Deferred.make<void>()
        const stubborn: Supervisor.ChildSpec = {
          id: "stubborn",
          restart: "permanent",
          shutdown: "3 seconds",
          start: Effect.uninterruptible(Effect.zipRight(h.append("start:stubborn"), Deferred.await(release)))
        }
        yield* Effect.addFinalizer(() => Deferred.succeed(release, undefined))
        const sup = yield* Supervisor.start({
          name: "root",
          strategy: "one_for_one",
          children: [stubborn, h.child("b")]
        })
        yield* h.expectLog(["start:stubborn", "start:b"])

        const stopping = yield* Effect.fork(sup.stopChild("stubborn"))
        // Let the supervisor reach its shutdown timer before moving the clock.
        yield* sleepingUntil(3000)
        yield* TestClock.adjust("2999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(stopping)))
        yield* TestClock.adjust("1 milli")
        yield* Fiber.join(stopping)
        assert.deepStrictEqual(yield* statuses(sup), ["stubborn:stopped:0", "b:running:0"])
        const stopped = yield* sup.events.pipe(
          Stream.filter(Supervisor.SupervisorEvent.$is("ChildStopped")),
          Stream.take(1),
          Stream.runHead
        )
        assert.deepStrictEqual(
          Option.map(stopped, (e) => `${e.childId}:${e.abandoned}`),
          Option.some("stubborn:true")
        )
      })
  )

  it.effect("closing the scope completes even when a child is abandoned", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness
      const release = yield* Deferred.make<void>()
      const closed = yield* Effect.fork(
        Effect.scoped(
          Effect.gen(function* () {
            yield* Supervisor.start({
              name: "root",
              strategy: "one_for_one",
              children: [
                h.child("a"),
                {
                  id: "stubborn",
                  restart: "permanent",
                  shutdown: "1 second",
                  start: Effect.uninterruptible(
                    Effect.zipRight(h.append("start:stubborn"), Deferred.await(release))
                  )
                },
                h.child("c")
              ]
            })
            yield* h.expectLog(["start:a", "start:stubborn", "start:c"])
          })
        )
      )
      yield* sleepingUntil(1000) // c stopped at once; now waiting for stubborn
      yield* h.expectLog(["start:a", "start:stubborn", "start:c", "stop:c"])
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closed)
      assert.deepStrictEqual(yield* Ref.get(h.log), [
        "start:a",
        "start:stubborn",
        "start:c",
        "stop:c",
        "stop:a"
      ])
      yield* Deferred.succeed(release, undefined)
    })
  )

  it.scoped("restartDelay holds a restart back, with the child shown as restarting", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness
      const sup = yield* Supervisor.start({
        name: "root",
        strategy: "one_for_one",
        restartDelay: "2 seconds",
        children: [h.child("a")]
      })
      yield* h.expectLog(["start:a"])
      yield* h.fail("a")
      yield* sleepingUntil(2000)
      assert.deepStrictEqual(yield* statuses(sup), ["a:restarting:0"])
      yield* TestClock.adjust("1999 millis")
      yield* h.expectLog(["start:a"])
      yield* TestClock.adjust("1 milli")
      yield* h.expectLog(["start:a", "start:a"])
      assert.deepStrictEqual(yield* statuses(sup), ["a:running:1"])
    })
  )

  it.scoped("stopChild and restartChild act on one child; unknown ids fail with ChildNotFound", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness
      const sup = yield* Supervisor.start({
        name: "root",
        strategy: "one_for_all",
        children: [h.child("a"), h.child("b")]
      })
      yield* h.expectLog(["start:a", "start:b"])
      yield* sup.stopChild("b")
      assert.deepStrictEqual(yield* Ref.get(h.log), ["start:a", "start:b", "stop:b"])
      assert.deepStrictEqual(yield* statuses(sup), ["a:running:0", "b:stopped:0"])
      yield* sup.restartChild("b")
      yield* h.expectLog(["start:a", "start:b", "stop:b", "start:b"])
      yield* sup.restartChild("a") // a running child is stopped and started again, alone
      yield* h.expectLog(["start:a", "start:b", "stop:b", "start:b", "stop:a", "start:a"])
      assert.deepStrictEqual(yield* statuses(sup), ["a:running:1", "b:running:1"])
      const missing = yield* Effect.flip(sup.stopChild("nope"))
      assert.strictEqual(missing._tag, "ChildNotFound")
      assert.isTrue(yield* isPending(sup))
    })
  )
})

/**
 * An OTP-style supervisor (Erlang/OTP `supervisor`) over Effect fibers.
 *
 * A supervisor runs child effects in spec order, watches them, and restarts them by restart type
 * (permanent / transient / temporary) and strategy (one_for_one / one_for_all / rest_for_one).
 * Restart intensity is OTP's: more than `maxRestarts` automatic restarts whose timestamps (from
 * `Clock`) lie within the last `maxSeconds` — a sliding window, not `Schedule.resetAfter`'s
 * tumbling one — make the supervisor give up: it stops every child right to left and fails with
 * `SupervisorEscalation`, which a parent supervisor (see `asChild`) treats as its child failing.
 *
 * All state changes happen on one loop fiber that reads a mailbox (child exits and commands), as
 * a gen_server does, so a restart never interleaves with another restart or a command.
 */
import {
  Cause,
  Clock,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberRef,
  Option,
  PubSub,
  Queue,
  Scope,
  Stream
} from "effect"
import { globalValue } from "effect/GlobalValue"

export type RestartType = "permanent" | "transient" | "temporary"

export type Strategy = "one_for_one" | "one_for_all" | "rest_for_one"

export interface ChildSpec<R = never> {
  readonly id: string
  /** A long-lived effect: the child is alive while it runs. */
  readonly start: Effect.Effect<unknown, unknown, R>
  readonly restart: RestartType
  /** How long to wait for the child to finish after interrupting it; then it is abandoned. Default 5 s (OTP's worker default). */
  readonly shutdown?: Duration.DurationInput
  /**
   * When true the supervisor waits, before starting the next child, until this child calls
   * `signalReady` (or ends) — as OTP waits for a child's `init` to return. Supervisors made with
   * `asChild` do this once all their own children have started.
   */
  readonly signalsReady?: boolean
}

export interface SupervisorSpec<R = never> {
  readonly name: string
  readonly strategy: Strategy
  /** MaxR. Default 1, as OTP. */
  readonly maxRestarts?: number
  /** MaxT in seconds. Default 5, as OTP. */
  readonly maxSeconds?: number
  /** Wait before an automatic restart, to avoid hot loops. Default 0. */
  readonly restartDelay?: Duration.DurationInput
  readonly children: ReadonlyArray<ChildSpec<R>>
}

export type ChildStatus = "running" | "stopped" | "restarting"

export interface ChildInfo {
  readonly id: string
  readonly restart: RestartType
  readonly status: ChildStatus
  /** Restarts of this child so far, automatic and manual. */
  readonly restarts: number
}

/** Why a child ended: `normal` = completed, `shutdown` = interrupted itself, `failure` = failed or died. */
export type ExitReason = "normal" | "shutdown" | "failure"

export type SupervisorEvent = Data.TaggedEnum<{
  ChildStarted: { readonly supervisor: string; readonly childId: string; readonly restarts: number }
  ChildExited: {
    readonly supervisor: string
    readonly childId: string
    readonly reason: ExitReason
    readonly cause: Cause.Cause<unknown>
  }
  ChildRestarted: { readonly supervisor: string; readonly childId: string; readonly restarts: number }
  ChildStopped: { readonly supervisor: string; readonly childId: string; readonly abandoned: boolean }
  Escalated: {
    readonly supervisor: string
    readonly childId: string
    readonly restarts: number
    readonly withinSeconds: number
  }
}>

export const SupervisorEvent = Data.taggedEnum<SupervisorEvent>()

/** The supervisor reached its restart intensity and stopped all its children. */
export class SupervisorEscalation extends Data.TaggedError("SupervisorEscalation")<{
  readonly supervisor: string
  readonly childId: string
  readonly restarts: number
  readonly withinSeconds: number
  readonly cause: Cause.Cause<unknown>
}> {
  override get message() {
    return `Supervisor ${this.supervisor} gave up: child ${this.childId} needed ${this.restarts} restarts within ${this.withinSeconds} s.`
  }
}

export class ChildNotFound extends Data.TaggedError("ChildNotFound")<{
  readonly supervisor: string
  readonly childId: string
}> {
  override get message() {
    return `Supervisor ${this.supervisor} has no child ${this.childId}.`
  }
}

export class SupervisorNotRunning extends Data.TaggedError("SupervisorNotRunning")<{
  readonly supervisor: string
}> {
  override get message() {
    return `Supervisor ${this.supervisor} is not running any more (stopped or escalated).`
  }
}

export interface SupervisorHandle {
  readonly name: string
  readonly children: Effect.Effect<ReadonlyArray<ChildInfo>>
  /** Completes when the supervisor's scope closes; fails when it escalates. */
  readonly await: Effect.Effect<void, SupervisorEscalation>
  /** Stops the child if it runs, then starts it again (OTP would refuse a running child). Not counted in intensity. */
  readonly restartChild: (id: string) => Effect.Effect<void, ChildNotFound | SupervisorNotRunning>
  /** Stops the child; it stays stopped until `restartChild` (or a one_for_all / rest_for_one group restart). */
  readonly stopChild: (id: string) => Effect.Effect<void, ChildNotFound | SupervisorNotRunning>
  /** Events from the moment of subscription; the last 64 are replayed to a new subscriber. */
  readonly events: Stream.Stream<SupervisorEvent>
}

type Message =
  | {
      readonly _tag: "Exited"
      readonly id: string
      readonly generation: number
      readonly exit: Exit.Exit<unknown, unknown>
    }
  | {
      readonly _tag: "Restart" | "Stop"
      readonly id: string
      readonly reply: Deferred.Deferred<void, ChildNotFound>
    }

interface ChildState<R> {
  readonly spec: ChildSpec<R>
  readonly shutdown: Duration.Duration
  status: ChildStatus
  restarts: number
  /** Bumped at each start, so exits of fibers the supervisor stopped itself are ignored. */
  generation: number
  fiber: Fiber.RuntimeFiber<void, never> | undefined
}

// The current child's readiness signal; every child fiber gets its own value (or none), so a
// grandchild never completes its grandparent's signal.
const readySignal = globalValue(Symbol.for("@kyozo/core/Supervisor/readySignal"), () =>
  FiberRef.unsafeMake<Option.Option<Deferred.Deferred<void>>>(Option.none())
)

/** Tells the supervising supervisor this child has started (see `ChildSpec.signalsReady`). A no-op elsewhere. */
export const signalReady: Effect.Effect<void> = Effect.flatMap(FiberRef.get(readySignal), (signal) =>
  Option.isSome(signal) ? Effect.asVoid(Deferred.succeed(signal.value, undefined)) : Effect.void
)

const exitReason = (cause: Cause.Cause<unknown>): ExitReason =>
  Cause.isEmpty(cause) ? "normal" : Cause.isInterruptedOnly(cause) ? "shutdown" : "failure"

/**
 * Starts the children in spec order and supervises them until the current scope closes, which stops
 * them in reverse order.
 */
export const start = <R>(spec: SupervisorSpec<R>): Effect.Effect<SupervisorHandle, never, Scope.Scope | R> =>
  Effect.gen(function* () {
    const ids = spec.children.map((c) => c.id)
    if (new Set(ids).size !== ids.length) {
      return yield* Effect.dieMessage(`Supervisor ${spec.name}: duplicate child ids in ${ids.join(", ")}`)
    }
    const maxRestarts = spec.maxRestarts ?? 1
    const maxSeconds = spec.maxSeconds ?? 5
    const windowMillis = maxSeconds * 1000
    const restartDelay = Duration.decode(spec.restartDelay ?? Duration.zero)
    const children: Array<ChildState<R>> = spec.children.map((c) => ({
      spec: c,
      shutdown: Duration.decode(c.shutdown ?? Duration.seconds(5)),
      status: "stopped",
      restarts: 0,
      generation: 0,
      fiber: undefined
    }))
    const mailbox = yield* Queue.unbounded<Message>()
    const events = yield* PubSub.unbounded<SupervisorEvent>({ replay: 64 })
    const done = yield* Deferred.make<void, SupervisorEscalation>()
    // Timestamps (ms) of automatic restarts still inside the window, newest first.
    let restartLog: Array<number> = []

    const publish = (event: SupervisorEvent) => PubSub.publish(events, event)

    // Fork and record in one uninterruptible step, so a closing scope always sees every live fiber;
    // then, for children that signal readiness, wait for the signal (or the child's end).
    const startChild = (child: ChildState<R>) =>
      Effect.gen(function* () {
        const ready = yield* Deferred.make<void>()
        const fiber = yield* Effect.uninterruptible(
          Effect.gen(function* () {
            const generation = child.generation + 1
            // A fiber forked here would inherit uninterruptibility: the child itself must stay interruptible.
            const fiber = yield* Effect.forkDaemon(
              Effect.exit(Effect.interruptible(child.spec.start)).pipe(
                Effect.flatMap((exit) =>
                  Queue.offer(mailbox, { _tag: "Exited", id: child.spec.id, generation, exit })
                ),
                Effect.asVoid,
                Effect.locally(readySignal, child.spec.signalsReady ? Option.some(ready) : Option.none())
              )
            )
            child.generation = generation
            child.fiber = fiber
            child.status = "running"
            return fiber
          })
        )
        yield* publish(
          SupervisorEvent.ChildStarted({
            supervisor: spec.name,
            childId: child.spec.id,
            restarts: child.restarts
          })
        )
        if (child.spec.signalsReady) {
          yield* Effect.interruptible(Effect.raceFirst(Deferred.await(ready), Fiber.await(fiber)))
        }
      })

    // Interrupt without waiting (interruptFork), then wait at most `shutdown`: a child that ignores
    // interruption is abandoned so stopping always completes. The fiber is forgotten only afterwards,
    // so if this is itself interrupted the scope finalizer stops the child again.
    const stopChild = (child: ChildState<R>, status: ChildStatus) =>
      Effect.gen(function* () {
        const fiber = child.fiber
        if (fiber !== undefined) {
          yield* Fiber.interruptFork(fiber)
          const waited = Duration.isFinite(child.shutdown)
            ? // Interruptible: finalizers run uninterruptibly, and there a timeout could not cancel the wait.
              yield* Effect.interruptible(Fiber.await(fiber)).pipe(Effect.timeoutOption(child.shutdown))
            : Option.some(yield* Fiber.await(fiber))
          const abandoned = Option.isNone(waited)
          if (abandoned) {
            yield* Effect.logWarning(
              `Supervisor ${spec.name}: child ${child.spec.id} did not stop within ${Duration.format(child.shutdown)}; abandoned`
            )
          }
          child.fiber = undefined
          yield* publish(
            SupervisorEvent.ChildStopped({ supervisor: spec.name, childId: child.spec.id, abandoned })
          )
        }
        child.status = status
      })

    const stopAll = Effect.suspend(() =>
      Effect.forEach([...children].reverse(), (c) => stopChild(c, "stopped"), { discard: true })
    )

    /** Sliding window: keep restarts at most MaxT old (OTP keeps `R >= Now - Period`), add this one. */
    const recordRestart = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      restartLog = [now, ...restartLog.filter((t) => t >= now - windowMillis)]
      return restartLog.length <= maxRestarts
    })

    const restartGroup = (failed: number) =>
      Effect.gen(function* () {
        const group =
          spec.strategy === "one_for_one"
            ? [children[failed]!]
            : spec.strategy === "one_for_all"
              ? children
              : children.slice(failed)
        for (const c of group) c.status = "restarting"
        for (const c of [...group].reverse()) yield* stopChild(c, "restarting")
        if (Duration.greaterThan(restartDelay, Duration.zero)) yield* Effect.sleep(restartDelay)
        for (const c of group) {
          // OTP drops temporary siblings in a group restart; every other child starts again.
          if (c !== children[failed] && c.spec.restart === "temporary") {
            c.status = "stopped"
            continue
          }
          c.restarts += 1
          yield* publish(
            SupervisorEvent.ChildRestarted({
              supervisor: spec.name,
              childId: c.spec.id,
              restarts: c.restarts
            })
          )
          yield* startChild(c)
        }
      })

    /** Handles one child exit; returns an escalation when the supervisor must give up. */
    const onExit = (index: number, exit: Exit.Exit<unknown, unknown>) =>
      Effect.gen(function* () {
        const child = children[index]!
        const cause = Exit.isFailure(exit) ? exit.cause : Cause.empty
        const reason = exitReason(cause)
        child.fiber = undefined
        child.status = "stopped"
        yield* Effect.logWarning(`Supervisor ${spec.name}: child ${child.spec.id} exited (${reason})`, cause)
        yield* publish(
          SupervisorEvent.ChildExited({ supervisor: spec.name, childId: child.spec.id, reason, cause })
        )
        const restart =
          child.spec.restart === "permanent" || (child.spec.restart === "transient" && reason === "failure")
        if (!restart) return Option.none<SupervisorEscalation>()
        if (!(yield* recordRestart)) {
          return Option.some(
            new SupervisorEscalation({
              supervisor: spec.name,
              childId: child.spec.id,
              restarts: restartLog.length,
              withinSeconds: maxSeconds,
              cause
            })
          )
        }
        yield* restartGroup(index)
        return Option.none<SupervisorEscalation>()
      })

    const escalate = (escalation: SupervisorEscalation) =>
      Effect.gen(function* () {
        yield* stopAll
        yield* Effect.logError(escalation.message, escalation.cause)
        yield* publish(
          SupervisorEvent.Escalated({
            supervisor: spec.name,
            childId: escalation.childId,
            restarts: escalation.restarts,
            withinSeconds: escalation.withinSeconds
          })
        )
        yield* Deferred.fail(done, escalation)
      })

    const loop: Effect.Effect<void, never, R> = Effect.gen(function* () {
      while (true) {
        const msg = yield* Queue.take(mailbox)
        const index = children.findIndex((c) => c.spec.id === msg.id)
        if (msg._tag === "Exited") {
          if (
            index < 0 ||
            children[index]!.generation !== msg.generation ||
            children[index]!.fiber === undefined
          ) {
            continue // a fiber this supervisor already stopped
          }
          const escalation = yield* onExit(index, msg.exit)
          if (Option.isSome(escalation)) return yield* escalate(escalation.value)
          continue
        }
        if (index < 0) {
          yield* Deferred.fail(msg.reply, new ChildNotFound({ supervisor: spec.name, childId: msg.id }))
          continue
        }
        const child = children[index]!
        if (msg._tag === "Stop") {
          yield* stopChild(child, "stopped")
        } else {
          yield* stopChild(child, "restarting")
          child.restarts += 1
          yield* publish(
            SupervisorEvent.ChildRestarted({
              supervisor: spec.name,
              childId: child.spec.id,
              restarts: child.restarts
            })
          )
          yield* startChild(child)
        }
        yield* Deferred.succeed(msg.reply, undefined)
      }
    })

    // Ordered start: children fork one after another in spec order, before the loop runs.
    for (const child of children) yield* startChild(child)
    const loopFiber = yield* Effect.forkDaemon(Effect.interruptible(loop))

    // One finalizer, so the order is explicit: stop the loop, stop children right to left, tell waiters.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        yield* Fiber.interrupt(loopFiber)
        yield* stopAll
        yield* Deferred.succeed(done, undefined)
        yield* PubSub.shutdown(events)
        yield* Queue.shutdown(mailbox)
      })
    )

    const call = (tag: "Restart" | "Stop", id: string) =>
      Effect.gen(function* () {
        if (yield* Deferred.isDone(done)) return yield* new SupervisorNotRunning({ supervisor: spec.name })
        const reply = yield* Deferred.make<void, ChildNotFound>()
        yield* Queue.offer(mailbox, { _tag: tag, id, reply })
        return yield* Effect.raceFirst(
          Effect.interruptible(Deferred.await(reply)),
          Effect.zipRight(
            Effect.exit(Effect.interruptible(Deferred.await(done))),
            new SupervisorNotRunning({ supervisor: spec.name })
          )
        )
      })

    const handle: SupervisorHandle = {
      name: spec.name,
      children: Effect.sync(() =>
        children.map((c) => ({
          id: c.spec.id,
          restart: c.spec.restart,
          status: c.status,
          restarts: c.restarts
        }))
      ),
      await: Deferred.await(done),
      restartChild: (id) => call("Restart", id),
      stopChild: (id) => call("Stop", id),
      events: Stream.fromPubSub(events)
    }
    return handle
  })

/**
 * A supervisor as the child of another: it runs until its own escalation, which the parent sees as
 * this child failing. Shutdown defaults to infinity (OTP's default for supervisor children), so a
 * parent waits for the whole subtree to stop. `onStart` receives the nested handle (to show the tree).
 */
export const asChild = <R>(
  spec: SupervisorSpec<R>,
  options?: {
    readonly id?: string
    readonly restart?: RestartType
    readonly shutdown?: Duration.DurationInput
    readonly onStart?: (handle: SupervisorHandle) => Effect.Effect<void>
  }
): ChildSpec<R> => ({
  id: options?.id ?? spec.name,
  restart: options?.restart ?? "permanent",
  shutdown: options?.shutdown ?? Duration.infinity,
  signalsReady: true,
  start: Effect.scoped(
    Effect.gen(function* () {
      const handle = yield* start(spec)
      yield* signalReady
      if (options?.onStart) yield* options.onStart(handle)
      return yield* handle.await
    })
  )
})

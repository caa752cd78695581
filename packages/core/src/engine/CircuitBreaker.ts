/**
 * A circuit breaker (closed → open → half-open → closed), driven by `Clock`, plus `guardRuntime`,
 * which puts every call of a ContainerRuntime behind one. A sick engine then costs callers a fast
 * `CircuitOpen` instead of a pile of hanging requests, and recovers through limited trial calls.
 *
 * What counts as a failure: typed failures accepted by `isFailure` (default: all), every defect,
 * timeouts (they are failures). Interruptions never count: the caller gave up, the callee did not fail.
 * A typed failure that `isFailure` rejects is an answer (e.g. ContainerNotFound) and counts as success.
 */
import { BreakerState, type BreakerStatus, type StateChange } from "@kyozo/api/domain/Breaker"
import { CircuitOpen, DockerTimeout, isEngineFailure, RuntimeError } from "@kyozo/api/domain/RuntimeErrors"
import type { Queue, Scope } from "effect"
import { Cause, Clock, Context, Duration, Effect, Exit, Layer, PubSub, Ref, Stream } from "effect"

import { ContainerRuntime, type ContainerRuntimeShape } from "./ContainerRuntime.js"

/** Re-exported: the wire shapes live in the contract (domain/Breaker). */
export { BreakerState, BreakerStatus, StateChange } from "@kyozo/api/domain/Breaker"

export interface BreakerOptions {
  readonly name: string
  /** Consecutive failures that open the circuit (default 5). */
  readonly failureThreshold?: number
  /** Failure ratio over the count window that opens the circuit (default 0.5; above 1 disables). */
  readonly failureRateThreshold?: number
  /** Calls in the count window (default 10). */
  readonly windowSize?: number
  /** The ratio rule needs at least this many calls in the window (default: windowSize). */
  readonly minimumCalls?: number
  /** Open time before trial calls are let through (default 10 s). */
  readonly resetAfter?: Duration.DurationInput
  /** Each consecutive trip multiplies the open time by this (default 1: no growth). */
  readonly backoffFactor?: number
  /** Cap of the grown open time (default 5 minutes). */
  readonly maxResetAfter?: Duration.DurationInput
  /** Trial calls allowed at once while half-open (default 1). */
  readonly halfOpenMaxCalls?: number
  /** Trial successes needed to close (default 1). */
  readonly successThreshold?: number
  /** Which typed failures count (default: all). Defects always count, interruptions never. */
  readonly isFailure?: (error: unknown) => boolean
}

export interface CircuitBreaker {
  readonly name: string
  /** Runs `self` if the circuit lets it through, else fails fast with CircuitOpen without running it. */
  readonly protect: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpen, R>
  /**
   * The same for a stream: admission is decided when it starts; its outcome counts once — success
   * at its first element or at its end, failure if it fails before emitting anything.
   */
  readonly protectStream: <A, E, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<A, E | CircuitOpen, R>
  readonly status: Effect.Effect<BreakerStatus>
  /** State changes from the moment the stream is run. */
  readonly changes: Stream.Stream<StateChange>
  /** A subscription taken now (for readers that must not miss the next change). */
  readonly subscribe: Effect.Effect<Queue.Dequeue<StateChange>, never, Scope.Scope>
  /** Closes the circuit by hand (admin action). */
  readonly reset: Effect.Effect<void>
}

type Outcome = "success" | "failure" | "interrupted"

interface Permit {
  readonly generation: number
  readonly trial: boolean
}

/** Counters only (mutated in place: every call through the breaker would otherwise copy them). */
interface Totals {
  calls: number
  successes: number
  failures: number
  rejections: number
  interruptions: number
}

interface State {
  readonly state: BreakerState
  /** Bumped on every transition: outcomes of calls admitted in an older generation change no state. */
  readonly generation: number
  readonly consecutiveFailures: number
  /** Outcomes of the last `windowSize` calls, true = failure. */
  readonly window: ReadonlyArray<boolean>
  readonly openedAt: number | null
  readonly retryAt: number | null
  readonly openForMs: number
  readonly trips: number
  /** Trial permits not yet returned, whatever half-open period they were taken in. */
  readonly trialsInFlight: number
  readonly halfOpenSuccesses: number
  readonly totals: Totals
  readonly lastChange: StateChange | null
}

const classifyCause = (cause: Cause.Cause<unknown>, isFailure: (e: unknown) => boolean): Outcome => {
  if (Cause.isInterruptedOnly(cause)) return "interrupted"
  if (Cause.isDie(cause)) return "failure"
  const failures = Cause.failures(cause)
  let any = false
  for (const error of failures) {
    any = true
    if (isFailure(error)) return "failure"
  }
  return any ? "success" : "interrupted"
}

export const make = (options: BreakerOptions): Effect.Effect<CircuitBreaker> =>
  Effect.gen(function* () {
    const name = options.name
    const failureThreshold = Math.max(1, options.failureThreshold ?? 5)
    const rateThreshold = options.failureRateThreshold ?? 0.5
    const windowSize = Math.max(1, options.windowSize ?? 10)
    const minimumCalls = Math.max(1, Math.min(windowSize, options.minimumCalls ?? windowSize))
    const resetMs = Duration.toMillis(Duration.decode(options.resetAfter ?? Duration.seconds(10)))
    const backoffFactor = Math.max(1, options.backoffFactor ?? 1)
    const maxResetMs = Math.max(
      resetMs,
      Duration.toMillis(Duration.decode(options.maxResetAfter ?? Duration.minutes(5)))
    )
    const halfOpenMaxCalls = Math.max(1, options.halfOpenMaxCalls ?? 1)
    const successThreshold = Math.max(1, options.successThreshold ?? 1)
    const isFailure = options.isFailure ?? (() => true)

    const changesHub = yield* PubSub.sliding<StateChange>(1024)
    const ref = yield* Ref.make<State>({
      state: "closed",
      generation: 0,
      consecutiveFailures: 0,
      window: [],
      openedAt: null,
      retryAt: null,
      openForMs: resetMs,
      trips: 0,
      trialsInFlight: 0,
      halfOpenSuccesses: 0,
      totals: { calls: 0, successes: 0, failures: 0, rejections: 0, interruptions: 0 },
      lastChange: null
    })

    const transition = (
      s: State,
      to: BreakerState,
      now: number,
      reason: string,
      out: Array<StateChange>
    ): State => {
      const change: StateChange = { from: s.state, to, at: now, reason }
      out.push(change)
      const base: State = {
        ...s,
        state: to,
        generation: s.generation + 1,
        lastChange: change,
        halfOpenSuccesses: 0
      }
      switch (to) {
        case "open": {
          const trips = s.trips + 1
          const openForMs = Math.min(resetMs * Math.pow(backoffFactor, trips - 1), maxResetMs)
          return { ...base, trips, openedAt: now, retryAt: now + openForMs, openForMs }
        }
        case "half-open":
          return base
        case "closed":
          return { ...base, trips: 0, consecutiveFailures: 0, window: [], openedAt: null, retryAt: null }
      }
    }

    // One permit object per generation of the closed state, not one per call.
    let permitCache: Permit = { generation: 0, trial: false }
    const closedPermit = (generation: number): Permit =>
      permitCache.generation === generation ? permitCache : (permitCache = { generation, trial: false })

    /** Open turns half-open lazily, at the first look after retryAt. */
    const promote = (s: State, now: number, out: Array<StateChange>): State =>
      s.state === "open" && s.retryAt !== null && now >= s.retryAt
        ? transition(s, "half-open", now, "reset timeout elapsed", out)
        : s

    const publish = (out: ReadonlyArray<StateChange>) =>
      out.length === 0 ? Effect.void : PubSub.publishAll(changesHub, out)

    const acquire: Effect.Effect<Permit, CircuitOpen> = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Ref.modify(ref, (current): readonly [readonly [Permit | CircuitOpen, Array<StateChange>], State] => {
        const out: Array<StateChange> = []
        const s = promote(current, now, out)
        s.totals.calls++
        const reject = (retryAt: number) => {
          s.totals.rejections++
          return [[new CircuitOpen({ name, retryAt }), out], s] as const
        }
        switch (s.state) {
          case "closed":
            return [[closedPermit(s.generation), out], s]
          case "open":
            return reject(s.retryAt ?? now)
          case "half-open":
            if (s.trialsInFlight >= halfOpenMaxCalls) return reject(now)
            return [
              [{ generation: s.generation, trial: true }, out],
              { ...s, trialsInFlight: s.trialsInFlight + 1 }
            ]
        }
      }).pipe(
        Effect.flatMap(([result, out]) =>
          Effect.zipRight(
            publish(out),
            result instanceof CircuitOpen ? Effect.fail(result) : Effect.succeed(result)
          )
        )
      )
    )

    const record = (
      s: State,
      permit: Permit,
      outcome: Outcome,
      now: number,
      out: Array<StateChange>
    ): State => {
      const t = s.totals
      if (outcome === "success") t.successes++
      else if (outcome === "failure") t.failures++
      else t.interruptions++
      if (permit.trial) s = { ...s, trialsInFlight: Math.max(0, s.trialsInFlight - 1) }
      if (outcome === "interrupted" || permit.generation !== s.generation) return s
      if (s.state === "closed") {
        const failed = outcome === "failure"
        // The steady state (a full window of successes): nothing changes, nothing is allocated.
        if (
          !failed &&
          s.consecutiveFailures === 0 &&
          s.window.length === windowSize &&
          !s.window.includes(true)
        )
          return s
        const window = [...s.window.slice(-(windowSize - 1)), failed]
        const consecutiveFailures = failed ? s.consecutiveFailures + 1 : 0
        s = { ...s, window, consecutiveFailures }
        if (!failed) return s
        if (consecutiveFailures >= failureThreshold) {
          return transition(s, "open", now, `${consecutiveFailures} consecutive failures`, out)
        }
        const failures = window.filter(Boolean).length
        if (window.length >= minimumCalls && failures / window.length >= rateThreshold) {
          const pct = Math.round((failures / window.length) * 100)
          return transition(s, "open", now, `${pct}% of the last ${window.length} calls failed`, out)
        }
        return s
      }
      if (s.state === "half-open" && permit.trial) {
        if (outcome === "failure") return transition(s, "open", now, "trial call failed", out)
        const halfOpenSuccesses = s.halfOpenSuccesses + 1
        if (halfOpenSuccesses >= successThreshold) {
          return transition(s, "closed", now, `${halfOpenSuccesses} trial call(s) succeeded`, out)
        }
        return { ...s, halfOpenSuccesses }
      }
      return s
    }

    const release = (permit: Permit, outcome: Outcome): Effect.Effect<void> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.modify(ref, (s): readonly [Array<StateChange>, State] => {
          const out: Array<StateChange> = []
          const next = record(s, permit, outcome, now, out)
          return [out, next]
        }).pipe(Effect.flatMap(publish))
      )

    const protect = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | CircuitOpen, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(acquire, (permit) =>
          restore(self).pipe(
            Effect.onExit((exit) =>
              release(permit, Exit.isSuccess(exit) ? "success" : classifyCause(exit.cause, isFailure))
            )
          )
        )
      )

    const protectStream = <A, E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<A, E | CircuitOpen, R> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          let settled = false
          let outcome: Outcome | undefined
          let permit: Permit | undefined
          const settle = (o: Outcome) =>
            Effect.suspend(() => {
              if (settled || !permit) return Effect.void
              settled = true
              return release(permit, o)
            })
          // acquireRelease: the permit is returned even if the stream is interrupted before it runs.
          permit = yield* Effect.acquireRelease(acquire, () =>
            Effect.suspend(() => settle(outcome ?? "interrupted"))
          )
          return self.pipe(
            // The first element proves the engine answered; settling here also frees a half-open
            // trial permit instead of holding it for the life of a long stream.
            Stream.tap(() => (settled ? Effect.void : settle("success"))),
            Stream.tapErrorCause((cause) => settle((outcome = classifyCause(cause, isFailure)))),
            Stream.onEnd(Effect.suspend(() => settle((outcome = "success"))))
          )
        })
      )

    const status: Effect.Effect<BreakerStatus> = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Ref.modify(ref, (current): readonly [readonly [State, Array<StateChange>], State] => {
        const out: Array<StateChange> = []
        const s = promote(current, now, out)
        return [[s, out], s]
      }).pipe(
        Effect.tap(([, out]) => publish(out)),
        Effect.map(([s]): BreakerStatus => {
          const failures = s.window.filter(Boolean).length
          return {
            name,
            state: s.state,
            consecutiveFailures: s.consecutiveFailures,
            window: {
              size: windowSize,
              calls: s.window.length,
              failures,
              failureRate: s.window.length === 0 ? 0 : failures / s.window.length
            },
            openedAt: s.openedAt,
            retryAt: s.retryAt,
            openForMs: s.openForMs,
            trips: s.trips,
            halfOpenInFlight: s.trialsInFlight,
            totals: { ...s.totals },
            lastChange: s.lastChange
          }
        })
      )
    )

    const reset: Effect.Effect<void> = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Ref.modify(ref, (s): readonly [Array<StateChange>, State] => {
        const out: Array<StateChange> = []
        if (s.state === "closed") return [out, s]
        return [out, transition(s, "closed", now, "manual reset", out)]
      }).pipe(Effect.flatMap(publish))
    )

    return {
      name,
      protect,
      protectStream,
      status,
      changes: Stream.fromPubSub(changesHub),
      subscribe: PubSub.subscribe(changesHub),
      reset
    }
  })

// ---------------------------------------------------------------------------------------------
// The runtime guard.

/** The breaker in front of the ContainerRuntime, so the manager can report its status. */
export class RuntimeBreaker extends Context.Tag("@kyozo/core/RuntimeBreaker")<
  RuntimeBreaker,
  CircuitBreaker
>() {}

const runtimeErrorTags: ReadonlySet<string> = new Set(RuntimeError.members.map((m) => m._tag))

/** Engine sickness trips the runtime breaker; answers about objects (not found, conflict) do not. */
export const isRuntimeEngineFailure = (error: unknown): boolean => {
  const tag =
    typeof error === "object" && error !== null && "_tag" in error
      ? (error as { _tag: unknown })._tag
      : undefined
  if (typeof tag === "string" && runtimeErrorTags.has(tag)) return isEngineFailure(error as RuntimeError)
  // Anything else (a TimeoutException, an unknown error) is engine trouble.
  return true
}

export interface GuardOptions {
  /** Deadline of each non-stream call; a miss fails with DockerTimeout and counts as a failure. */
  readonly callTimeout?: Duration.DurationInput
}

/** Every method of `runtime`, effects and streams, behind `breaker`. */
export const guardRuntime = (
  breaker: CircuitBreaker,
  runtime: ContainerRuntimeShape,
  options: GuardOptions = {}
): ContainerRuntimeShape => {
  const timeoutMs =
    options.callTimeout === undefined ? undefined : Duration.toMillis(Duration.decode(options.callTimeout))
  const e = <A>(operation: string, effect: Effect.Effect<A, RuntimeError>): Effect.Effect<A, RuntimeError> =>
    breaker.protect(
      timeoutMs === undefined
        ? effect
        : Effect.timeoutFail(effect, {
            duration: Duration.millis(timeoutMs),
            onTimeout: () => new DockerTimeout({ operation, timeoutMs })
          })
    )
  const s = <A>(stream: Stream.Stream<A, RuntimeError>): Stream.Stream<A, RuntimeError> =>
    breaker.protectStream(stream)
  return {
    mode: runtime.mode,
    endpoint: runtime.endpoint,
    ping: e("ping", runtime.ping),
    version: e("version", runtime.version),
    createContainer: (spec) => e("createContainer", runtime.createContainer(spec)),
    startContainer: (id) => e("startContainer", runtime.startContainer(id)),
    stopContainer: (id, o) => e("stopContainer", runtime.stopContainer(id, o)),
    restartContainer: (id, o) => e("restartContainer", runtime.restartContainer(id, o)),
    removeContainer: (id, o) => e("removeContainer", runtime.removeContainer(id, o)),
    inspectContainer: (id) => e("inspectContainer", runtime.inspectContainer(id)),
    listContainers: (filter) => e("listContainers", runtime.listContainers(filter)),
    logs: (id, o) => s(runtime.logs(id, o)),
    stats: (id) => e("stats", runtime.stats(id)),
    exec: (id, cmd, o) => e("exec", runtime.exec(id, cmd, o)),
    buildImage: (o) => s(runtime.buildImage(o)),
    pullImage: (ref, o) => s(runtime.pullImage(ref, o)),
    pushImage: (ref, o) => s(runtime.pushImage(ref, o)),
    inspectImage: (ref) => e("inspectImage", runtime.inspectImage(ref)),
    tagImage: (ref, tag) => e("tagImage", runtime.tagImage(ref, tag)),
    listImages: (filter) => e("listImages", runtime.listImages(filter)),
    removeImage: (ref, o) => e("removeImage", runtime.removeImage(ref, o)),
    pruneImages: (filter) => e("pruneImages", runtime.pruneImages(filter)),
    pruneBuildCache: (budget) => e("pruneBuildCache", runtime.pruneBuildCache(budget)),
    createNetwork: (spec) => e("createNetwork", runtime.createNetwork(spec)),
    removeNetwork: (idOrName) => e("removeNetwork", runtime.removeNetwork(idOrName)),
    listNetworks: (filter) => e("listNetworks", runtime.listNetworks(filter)),
    connectNetwork: (network, container, aliases) =>
      e("connectNetwork", runtime.connectNetwork(network, container, aliases)),
    createVolume: (spec) => e("createVolume", runtime.createVolume(spec)),
    removeVolume: (name) => e("removeVolume", runtime.removeVolume(name)),
    listVolumes: (filter) => e("listVolumes", runtime.listVolumes(filter)),
    events: (o) => s(runtime.events(o))
  }
}

export type RuntimeBreakerOptions = Partial<BreakerOptions> & GuardOptions

/**
 * Takes the ContainerRuntime in context and provides it again behind a breaker (default name: the
 * runtime's mode; default predicate: `isRuntimeEngineFailure`), plus the breaker as RuntimeBreaker.
 */
export const layerRuntime = (
  options: RuntimeBreakerOptions = {}
): Layer.Layer<ContainerRuntime | RuntimeBreaker, never, ContainerRuntime> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const runtime = yield* ContainerRuntime
      const breaker = yield* make({
        isFailure: isRuntimeEngineFailure,
        ...options,
        name: options.name ?? runtime.mode
      })
      return Context.make(ContainerRuntime, guardRuntime(breaker, runtime, options)).pipe(
        Context.add(RuntimeBreaker, breaker)
      )
    })
  )

export const CircuitBreaker = { make, guardRuntime, layerRuntime } as const

/**
 * The ContainerManager: the scoped service at the top of the runtime's supervision tree. It owns the
 * three maintenance schedules (health 30 s, metrics 60 s, cleanup 5 min by default), runs each as a
 * permanent child of an OTP-style one_for_one supervisor so a failing pass never stops the others,
 * republishes breaker state changes, and keeps the last pass of each schedule for status pages.
 *
 * The passes themselves come from `MaintenancePasses` (provided by @kyozo/workers).
 */
import {
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Layer,
  PubSub,
  Queue,
  Ref,
  Schedule,
  type Scope,
  Stream
} from "effect"

import type * as CircuitBreaker from "../engine/CircuitBreaker.js"
import { RuntimeBreaker } from "../engine/CircuitBreaker.js"
import { ContainerRuntime, type ContainerRuntimeShape, type RuntimeMode } from "../engine/ContainerRuntime.js"
import { RuntimeInfo } from "../engine/RuntimeSelection.js"
import { KyozoConfig } from "../KyozoConfig.js"
import { MaintenancePasses, type PassName, type PassReport } from "./MaintenancePasses.js"
import * as Supervisor from "./Supervisor.js"

export interface ScheduleStatus {
  readonly pass: PassName
  readonly intervalMs: number
  readonly runs: number
  readonly failures: number
  /** Epoch milliseconds of the last start / end, null before the first pass. */
  readonly lastStartedAt: number | null
  readonly lastFinishedAt: number | null
  readonly lastDurationMs: number | null
  readonly lastReport: PassReport | null
  readonly lastError: string | null
}

export type ManagerEvent =
  | {
      readonly _tag: "RuntimeSelected"
      readonly mode: RuntimeMode
      readonly reason: string
      readonly at: number
    }
  | { readonly _tag: "BreakerChanged"; readonly change: CircuitBreaker.StateChange }
  | {
      readonly _tag: "PassCompleted"
      readonly report: PassReport
      readonly durationMs: number
      readonly at: number
    }
  | { readonly _tag: "PassFailed"; readonly pass: PassName; readonly error: string; readonly at: number }
  | { readonly _tag: "Custom"; readonly type: string; readonly data: unknown; readonly at: number }

export interface ManagerIntervals {
  readonly health: Duration.DurationInput
  readonly metrics: Duration.DurationInput
  readonly cleanup: Duration.DurationInput
}

export interface ContainerManagerShape {
  readonly runtimeMode: RuntimeMode
  readonly runtimeReason: string
  /** The engine, already behind the circuit breaker. */
  readonly runtime: ContainerRuntimeShape
  readonly circuitBreakerStatus: Effect.Effect<CircuitBreaker.BreakerStatus>
  readonly schedules: Effect.Effect<ReadonlyArray<ScheduleStatus>>
  /** The supervision tree under the manager (one child per schedule). */
  readonly children: Effect.Effect<ReadonlyArray<Supervisor.ChildInfo>>
  /** Run one pass now, outside its schedule (the REPL, tests, an admin endpoint). */
  readonly runPass: (pass: PassName) => Effect.Effect<PassReport, unknown>
  readonly publish: (event: ManagerEvent) => Effect.Effect<void>
  /** A subscription that sees every event published after it was taken. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<ManagerEvent>, never, Scope.Scope>
  readonly events: Stream.Stream<ManagerEvent>
}

export class ContainerManager extends Context.Tag("@kyozo/core/ContainerManager")<
  ContainerManager,
  ContainerManagerShape
>() {
  static readonly circuitBreakerStatus = Effect.flatMap(ContainerManager, (m) => m.circuitBreakerStatus)
  static readonly schedules = Effect.flatMap(ContainerManager, (m) => m.schedules)
  static readonly runtimeMode = Effect.map(ContainerManager, (m) => m.runtimeMode)
  static readonly runPass = (pass: PassName) => Effect.flatMap(ContainerManager, (m) => m.runPass(pass))
  static readonly listContainers = Effect.flatMap(ContainerManager, (m) =>
    m.runtime.listContainers({ all: true, labels: { "kyozo.managed": "true" } })
  )
}

const initialStatus = (pass: PassName, intervalMs: number): ScheduleStatus => ({
  pass,
  intervalMs,
  runs: 0,
  failures: 0,
  lastStartedAt: null,
  lastFinishedAt: null,
  lastDurationMs: null,
  lastReport: null,
  lastError: null
})

const PASSES: ReadonlyArray<PassName> = ["health", "metrics", "cleanup"]

export const make = (intervals: ManagerIntervals) =>
  Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const info = yield* RuntimeInfo
    const breaker = yield* RuntimeBreaker
    const passes = yield* MaintenancePasses

    // Sliding: a slow subscriber loses old events instead of stalling the schedules.
    const pubsub = yield* Effect.acquireRelease(PubSub.sliding<ManagerEvent>(4096), PubSub.shutdown)
    const publish = (event: ManagerEvent) => PubSub.publish(pubsub, event).pipe(Effect.asVoid)

    const intervalMs: Record<PassName, number> = {
      health: Duration.toMillis(intervals.health),
      metrics: Duration.toMillis(intervals.metrics),
      cleanup: Duration.toMillis(intervals.cleanup)
    }
    const status = yield* Ref.make<Record<PassName, ScheduleStatus>>({
      health: initialStatus("health", intervalMs.health),
      metrics: initialStatus("metrics", intervalMs.metrics),
      cleanup: initialStatus("cleanup", intervalMs.cleanup)
    })

    /** One pass, measured and recorded; its failure is logged and recorded, never propagated. */
    const runPass = (pass: PassName): Effect.Effect<PassReport, unknown> =>
      Effect.gen(function* () {
        const startedAt = yield* Clock.currentTimeMillis
        yield* Ref.update(status, (s) => ({ ...s, [pass]: { ...s[pass], lastStartedAt: startedAt } }))
        const exit = yield* Effect.exit(passes[pass])
        const finishedAt = yield* Clock.currentTimeMillis
        const durationMs = finishedAt - startedAt
        if (exit._tag === "Success") {
          yield* Ref.update(status, (s) => ({
            ...s,
            [pass]: {
              ...s[pass],
              runs: s[pass].runs + 1,
              lastFinishedAt: finishedAt,
              lastDurationMs: durationMs,
              lastReport: exit.value,
              lastError: null
            }
          }))
          yield* publish({ _tag: "PassCompleted", report: exit.value, durationMs, at: finishedAt })
          return exit.value
        }
        if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
        const error = Cause.pretty(exit.cause)
        yield* Ref.update(status, (s) => ({
          ...s,
          [pass]: {
            ...s[pass],
            runs: s[pass].runs + 1,
            failures: s[pass].failures + 1,
            lastFinishedAt: finishedAt,
            lastDurationMs: durationMs,
            lastError: error
          }
        }))
        yield* Effect.logWarning(`${pass} pass failed; the schedule goes on`, exit.cause)
        yield* publish({ _tag: "PassFailed", pass, error, at: finishedAt })
        return yield* Effect.failCause(exit.cause)
      })

    // A schedule: wait one interval, run the pass (its failure already recorded), forever.
    const scheduleLoop = (pass: PassName) =>
      runPass(pass).pipe(
        Effect.ignore,
        Effect.delay(Duration.millis(intervalMs[pass])),
        Effect.repeat(Schedule.forever),
        Effect.annotateLogs("schedule", pass)
      )

    const breakerFeed = breaker.changes.pipe(
      Stream.runForEach((change) =>
        publish({ _tag: "BreakerChanged", change }).pipe(
          Effect.zipRight(Effect.logInfo(`docker circuit ${change.from} → ${change.to}`))
        )
      )
    )

    const tree = yield* Supervisor.start({
      name: "container-manager",
      strategy: "one_for_one",
      maxRestarts: 10,
      maxSeconds: 60,
      restartDelay: Duration.seconds(1),
      children: [
        { id: "breaker-feed", start: breakerFeed, restart: "permanent" },
        ...PASSES.map((pass) => ({
          id: `${pass}-schedule`,
          start: scheduleLoop(pass),
          restart: "permanent" as const
        }))
      ]
    })

    yield* publish({
      _tag: "RuntimeSelected",
      mode: info.mode,
      reason: info.reason,
      at: yield* Clock.currentTimeMillis
    })
    yield* Effect.logInfo(
      `ContainerManager up on ${info.mode}: health every ${Duration.format(intervals.health)}, metrics every ${Duration.format(intervals.metrics)}, cleanup every ${Duration.format(intervals.cleanup)}`
    )

    return ContainerManager.of({
      runtimeMode: info.mode,
      runtimeReason: info.reason,
      runtime,
      circuitBreakerStatus: breaker.status,
      schedules: Ref.get(status).pipe(Effect.map((s) => PASSES.map((p) => s[p]))),
      children: tree.children,
      runPass,
      publish,
      subscribe: PubSub.subscribe(pubsub),
      events: Stream.fromPubSub(pubsub)
    })
  })

/** Intervals given explicitly (tests, benchmarks). */
export const layerWith = (intervals: ManagerIntervals) => Layer.scoped(ContainerManager, make(intervals))

/** Intervals from KyozoConfig (KYOZO_HEALTH_INTERVAL, KYOZO_METRICS_INTERVAL, KYOZO_CLEANUP_INTERVAL). */
export const layer = Layer.scoped(
  ContainerManager,
  Effect.flatMap(KyozoConfig, (config) =>
    make({ health: config.healthInterval, metrics: config.metricsInterval, cleanup: config.cleanupInterval })
  )
)

/**
 * Restart decisions, as pure functions over plain numbers (epoch ms), so the rules are testable
 * without a database or an engine:
 * - which exits a policy restarts (always / on-failure / never);
 * - the backoff: the first restart at once, then 10 s doubling to 5 min between restarts, back to the
 *   start after 10 min of clean running since the last restart (Kubernetes' CrashLoopBackOff);
 * - OTP intensity: more than MaxR restarts inside the last MaxT (a sliding window) → give up.
 */
import type { RestartPolicy } from "@kyozo/api/domain/ServiceInstance"
import { Context, Duration } from "effect"

export interface RecoverySettingsShape {
  readonly backoffBase: Duration.Duration
  readonly backoffMax: Duration.Duration
  /** Clean running after the last restart that resets the backoff. */
  readonly backoffResetAfter: Duration.Duration
  /** MaxR: restarts tolerated inside the window. */
  readonly maxRestarts: number
  /** MaxT: the sliding window. */
  readonly maxWindow: Duration.Duration
}

export class RecoverySettings extends Context.Reference<RecoverySettings>()(
  "@kyozo/workers/RecoverySettings",
  {
    defaultValue: (): RecoverySettingsShape => ({
      backoffBase: Duration.seconds(10),
      backoffMax: Duration.minutes(5),
      backoffResetAfter: Duration.minutes(10),
      maxRestarts: 5,
      maxWindow: Duration.minutes(15)
    })
  }
) {}

/** What the pass saw of the container. */
export type ContainerCondition =
  { readonly _tag: "Exited"; readonly exitCode: number | null } | { readonly _tag: "Unhealthy" }

/** Whether the policy restarts after this condition. */
export const policyAllows = (policy: RestartPolicy, condition: ContainerCondition): boolean => {
  switch (policy) {
    case "always":
      return true
    case "never":
      return false
    case "on-failure":
      // A clean exit (0) is the program saying it is done; unknown codes count as failures.
      return condition._tag === "Unhealthy" || condition.exitCode !== 0
  }
}

/** The delay before restart number `level + 1` of a crash loop: base · 2^level, capped. */
export const backoffDelay = (level: number, settings: RecoverySettingsShape): Duration.Duration => {
  const base = Duration.toMillis(settings.backoffBase)
  const max = Duration.toMillis(settings.backoffMax)
  // 2^level overflows nothing before the cap for any sane level; clamp the exponent anyway.
  return Duration.millis(Math.min(max, base * 2 ** Math.min(level, 30)))
}

/** The durable state of one service's restarts. */
export interface RestartState {
  readonly backoffLevel: number
  readonly lastRestartAt: number | null
  /** Restart times inside the window, newest first. */
  readonly restarts: ReadonlyArray<number>
  readonly gaveUpAt: number | null
}

export const initialRestartState: RestartState = {
  backoffLevel: 0,
  lastRestartAt: null,
  restarts: [],
  gaveUpAt: null
}

/** The backoff level that applies at `now`: 0 once the last restart is `backoffResetAfter` old. */
export const effectiveLevel = (state: RestartState, now: number, settings: RecoverySettingsShape): number =>
  state.lastRestartAt !== null && now - state.lastRestartAt >= Duration.toMillis(settings.backoffResetAfter)
    ? 0
    : state.backoffLevel

export type RestartDecision =
  /** Restart now; `next` is the state to store once it is done; `delay` is what it waited. */
  | { readonly _tag: "Restart"; readonly next: RestartState; readonly delay: Duration.Duration }
  /** The backoff delay since the last restart has not passed yet. */
  | { readonly _tag: "Wait"; readonly until: number }
  /** More than MaxR restarts in MaxT: give up (mark failed, alert). */
  | { readonly _tag: "GiveUp"; readonly next: RestartState; readonly restartsInWindow: number }

/**
 * Decides for a service whose container needs a restart. The first restart of a crash loop is
 * immediate; each later one waits base · 2^(n-1) (capped) after the previous restart, so the
 * delays between restarts run 10 s, 20 s, 40 s … 5 min.
 */
export const decide = (
  state: RestartState,
  now: number,
  settings: RecoverySettingsShape
): RestartDecision => {
  const level = effectiveLevel(state, now, settings)
  const delay =
    level === 0 || state.lastRestartAt === null ? Duration.zero : backoffDelay(level - 1, settings)
  const due = (state.lastRestartAt ?? now) + Duration.toMillis(delay)
  if (level > 0 && now < due) return { _tag: "Wait", until: due }
  // OTP keeps restarts with R >= Now - Period, then adds this one and compares with MaxR.
  const windowStart = now - Duration.toMillis(settings.maxWindow)
  const restarts = [now, ...state.restarts.filter((t) => t >= windowStart)]
  if (restarts.length > settings.maxRestarts) {
    return {
      _tag: "GiveUp",
      next: { ...state, restarts: restarts.slice(1), gaveUpAt: now },
      restartsInWindow: restarts.length - 1
    }
  }
  return {
    _tag: "Restart",
    delay,
    next: { backoffLevel: level + 1, lastRestartAt: now, restarts, gaveUpAt: null }
  }
}

/**
 * The state after a pass saw the service running cleanly: the backoff resets once the last
 * restart is `backoffResetAfter` old. Returns the same object when nothing changes.
 */
export const observeClean = (
  state: RestartState,
  now: number,
  settings: RecoverySettingsShape
): RestartState =>
  state.backoffLevel > 0 && effectiveLevel(state, now, settings) === 0 ? { ...state, backoffLevel: 0 } : state

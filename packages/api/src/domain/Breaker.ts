/**
 * The circuit breaker's state on the wire (`circuit_breaker_status` in REST, RuntimeStatus in RPC).
 * The breaker itself lives with the engine; clients need only these shapes.
 */
import { Schema } from "effect"

export const BreakerState = Schema.Literal("closed", "open", "half-open")
export type BreakerState = typeof BreakerState.Type

export const StateChange = Schema.Struct({
  from: BreakerState,
  to: BreakerState,
  /** Epoch milliseconds (Clock). */
  at: Schema.Number,
  reason: Schema.String
})
export type StateChange = typeof StateChange.Type

/** What the API reports as `circuit_breaker_status`. */
export const BreakerStatus = Schema.Struct({
  name: Schema.String,
  state: BreakerState,
  consecutiveFailures: Schema.Number,
  window: Schema.Struct({
    size: Schema.Number,
    calls: Schema.Number,
    failures: Schema.Number,
    failureRate: Schema.Number
  }),
  openedAt: Schema.NullOr(Schema.Number),
  retryAt: Schema.NullOr(Schema.Number),
  /** How long the current (or last) open period lasts; grows with repeated trips when configured. */
  openForMs: Schema.Number,
  /** Trips since the breaker last closed. */
  trips: Schema.Number,
  halfOpenInFlight: Schema.Number,
  totals: Schema.Struct({
    calls: Schema.Number,
    successes: Schema.Number,
    failures: Schema.Number,
    rejections: Schema.Number,
    interruptions: Schema.Number
  }),
  lastChange: Schema.NullOr(StateChange)
})
export type BreakerStatus = typeof BreakerStatus.Type

/**
 * A keyed lane: effects under one key run one at a time, in the order they came; effects under
 * different keys run side by side. Each key's lane (a one-permit semaphore, plus whatever state the
 * caller keeps per key) lives in an `RcMap` entry held while an effect waits or runs in it, and is
 * freed once nobody has used it for `idleTimeToLive` (at once by default), so keys that are gone
 * (a deleted service) leave nothing behind. A waiting or running effect can be interrupted: its
 * turn ends and the next one goes.
 */
import { Duration, Effect, RcMap, Scope } from "effect"

export interface KeyedLane<K, S> {
  /**
   * Runs `use` alone in the lane of `key` once its turn comes, handing it the lane's state (which
   * lives as long as the lane; `use` may change it for the next one).
   */
  readonly run: <A, E, R>(key: K, use: (state: S) => Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Keys whose lane is held now (busy, or idle within its time to live). */
  readonly keys: Effect.Effect<ReadonlyArray<K>>
}

export interface KeyedLaneOptions<K, S> {
  /** The state a new lane of `key` starts with (the lane keeps it until it is freed). */
  readonly initial: (key: K) => S
  /** How long an unused lane (and its state) is kept before it is freed (default: freed at once). */
  readonly idleTimeToLive?: Duration.DurationInput
}

interface Entry<S> {
  readonly semaphore: Effect.Semaphore
  readonly state: S
}

/** A keyed lane whose entries live as long as the current scope. */
export const make = <K, S = void>(
  options: KeyedLaneOptions<K, S>
): Effect.Effect<KeyedLane<K, S>, never, Scope.Scope> =>
  Effect.map(
    RcMap.make({
      lookup: (key: K) =>
        Effect.map(Effect.makeSemaphore(1), (semaphore): Entry<S> => ({
          semaphore,
          state: options.initial(key)
        })),
      idleTimeToLive: options.idleTimeToLive ?? Duration.zero
    }),
    (lanes): KeyedLane<K, S> => ({
      run: (key, use) =>
        Effect.scoped(
          Effect.flatMap(RcMap.get(lanes, key), (entry) =>
            // Built once the turn is ours, so `use` reads the state as the previous one left it.
            entry.semaphore.withPermits(1)(Effect.suspend(() => use(entry.state)))
          )
        ),
      keys: RcMap.keys(lanes)
    })
  )

/**
 * A keyed lane for a module that lives as long as the process (as `Effect.unsafeMakeSemaphore`
 * does): its scope is never closed, and idle entries are still freed.
 */
export const unsafeMake = <K, S = void>(options: KeyedLaneOptions<K, S>): KeyedLane<K, S> =>
  Effect.runSync(Effect.flatMap(Scope.make(), (scope) => Scope.extend(make(options), scope)))

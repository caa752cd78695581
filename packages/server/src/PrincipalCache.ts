/**
 * Verified API keys, kept briefly so that a request does not pay two queries (key, then role) to
 * learn who is calling. An entry is used only while
 * - the auth epoch (`ChangeEpoch.auth`) is the one it was verified under: every revocation, member
 *   removal, role change or user deletion made by this process moves it at once, and those made by
 *   other processes on the same PostgreSQL move it through NOTIFY;
 * - it is younger than `ttl` (a bound for a notification lost while the listener reconnects);
 * - the key has not reached its own expiry.
 */
import type { Principal } from "@kyozo/api/KyozoRpc"
import * as ChangeEpoch from "@kyozo/core/store/ChangeEpoch"
import { Duration, Effect, Option } from "effect"

interface Entry {
  readonly principal: Principal
  readonly epoch: number
  /** Epoch milliseconds after which the entry must be verified again. */
  readonly until: number
}

const DEFAULT_TTL = Duration.seconds(10)
const MAX_ENTRIES = 10_000

export class PrincipalCache extends Effect.Service<PrincipalCache>()("@kyozo/server/PrincipalCache", {
  scoped: Effect.gen(function* () {
    const ttlMs = Duration.toMillis(DEFAULT_TTL)
    const entries = new Map<string, Entry>()
    yield* ChangeEpoch.follow(ChangeEpoch.auth)

    /** The principal of a token verified recently and still valid, if any. */
    const get = (token: string): Option.Option<Principal> => {
      const entry = entries.get(token)
      if (entry === undefined) return Option.none()
      if (entry.epoch !== ChangeEpoch.auth.current() || Date.now() >= entry.until) {
        entries.delete(token)
        return Option.none()
      }
      return Option.some(entry.principal)
    }

    /**
     * Remembers a verification. `epoch` is the value read BEFORE verifying, so a change that lands
     * while the queries run makes the entry stale rather than hiding it.
     */
    const set = (token: string, principal: Principal, epoch: number, keyExpiresAt: Date | null): void => {
      if (entries.size >= MAX_ENTRIES) entries.clear()
      const until = Math.min(Date.now() + ttlMs, keyExpiresAt?.getTime() ?? Number.POSITIVE_INFINITY)
      entries.set(token, { principal, epoch, until })
    }

    return { get, set } as const
  })
}) {}

/**
 * A counter that moves whenever who may call can have changed: a key revoked, expired early or
 * deleted, a member removed or given another role, a user deleted. Caches of verified keys (the
 * server's PrincipalCache) compare it on every hit, so a change made by this process takes effect
 * on the very next request. Changes made by other processes on the same PostgreSQL arrive through
 * NOTIFY on `kyozo_auth` (sent by triggers, migration 0007) and move it too.
 *
 * Process-wide on purpose: a move only ever costs a cache miss, so sharing it between several
 * runtimes in one process (tests) is safe.
 */
let epoch = 0

/** The current value; an entry cached under an older value is stale. */
export const current = (): number => epoch

/** Marks every cached verification stale. Call after any write that can end a key's validity. */
export const bump = (): void => {
  epoch++
}

/** The NOTIFY channel the triggers send on. */
export const channel = "kyozo_auth"

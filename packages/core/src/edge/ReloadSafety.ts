/**
 * Config reloads that reset no connection.
 *
 * Caddy 2.6 applies every config (`POST /load`, any upstream change) by binding each listener
 * again with SO_REUSEPORT and closing the old socket. Linux resets the connections still queued
 * on a closing listener (accepted by the kernel, not yet by Caddy) unless
 * `net.ipv4.tcp_migrate_req` is 1, which hands them to the new socket instead. Measured here:
 * 60 reloads under 3 polling clients reset 8–17 of ~2,700 requests with 0, none with 1. So a
 * replica that dies (the edge drops it, then routes it back) cost a user a failed request now
 * and then. The Caddy edge turns it on where it may (root in the host's network namespace) and
 * says so where it may not.
 */
import * as fs from "node:fs"

import { Effect } from "effect"

export const MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req"

export type ReloadSafety =
  | { readonly _tag: "Safe"; readonly changed: boolean }
  /** The kernel has no such setting (before 5.14, or not Linux): nothing to do about it here. */
  | { readonly _tag: "Unsupported" }
  | { readonly _tag: "Unsafe"; readonly detail: string }

/** Reads the setting, and turns it on when it is off and writable. */
export const ensure = (file: string = MIGRATE_REQ): Effect.Effect<ReloadSafety> =>
  Effect.sync((): ReloadSafety => {
    let current: string
    try {
      current = fs.readFileSync(file, "utf8").trim()
    } catch {
      return { _tag: "Unsupported" }
    }
    if (current === "1") return { _tag: "Safe", changed: false }
    try {
      fs.writeFileSync(file, "1\n")
      return { _tag: "Safe", changed: true }
    } catch (e) {
      return {
        _tag: "Unsafe",
        detail: `net.ipv4.tcp_migrate_req is ${current} and cannot be set here (${(e as NodeJS.ErrnoException).code ?? String(e)})`
      }
    }
  })

/** The log line for a result, or null when there is nothing to say. */
export const describe = (
  result: ReloadSafety
): { readonly level: "info" | "warning"; readonly text: string } | null => {
  switch (result._tag) {
    case "Safe":
      return result.changed
        ? {
            level: "info",
            text: "Edge: set net.ipv4.tcp_migrate_req=1 so Caddy's config reloads reset no connection"
          }
        : null
    case "Unsupported":
      return null
    case "Unsafe":
      return {
        level: "warning",
        text: `Edge: ${result.detail}; every route change (a replica lost or back, a deploy) may reset a few open connections. Run \`sysctl -w net.ipv4.tcp_migrate_req=1\` as root.`
      }
  }
}

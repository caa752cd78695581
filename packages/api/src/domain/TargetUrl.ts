/**
 * The one rule for a URL a tenant gives the server to call (webhooks): absolute http(s), a host, no
 * credentials, bounded length. Clients validate with it before sending; the server's address
 * checks (OutboundTarget) run on top of it.
 */
import { Data } from "effect"

export type TargetRefusal = "malformed" | "scheme" | "credentials" | "too-long" | "private-address"

export class TargetRefused extends Data.TaggedError("TargetRefused")<{
  readonly reason: TargetRefusal
  readonly message: string
}> {}

/** A refusal with its reason (shared with the address checks of OutboundTarget). */
export const refused = (reason: TargetRefusal, message: string) => new TargetRefused({ reason, message })

/**
 * The one URL rule: absolute http(s), a host, no credentials, at most 2,048 characters once
 * normalized. Answers the normalized URL (lower-case scheme and host, numeric hosts such as
 * `0x7f.1` written out as `127.0.0.1`), which is what is stored and called.
 */
export const parseTargetUrl = (raw: string): URL | TargetRefused => {
  if (raw.includes("\0")) return refused("malformed", "The URL contains a NUL byte.")
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    return refused("malformed", "Expected an absolute http:// or https:// URL.")
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    return refused("scheme", "Expected an absolute http:// or https:// URL.")
  // `http:/x` parses as http://x/ in WHATWG: insist on the `//` the user meant to write.
  if (!/^https?:\/\//i.test(raw.trim()))
    return refused("malformed", "Expected an absolute http:// or https:// URL.")
  if (u.hostname === "") return refused("malformed", "The URL has no host.")
  if (u.username !== "" || u.password !== "")
    return refused("credentials", "Credentials inside the URL are not allowed: sign with the webhook secret.")
  if (u.href.length > 2048) return refused("too-long", "The URL is longer than 2,048 characters.")
  return u
}

/**
 * Whether the edge's HTTPS listener has a certificate for a name yet. Caddy issues certificates in
 * the background after a config load (from its internal CA in well under a second, but not at
 * once): until then a handshake for the name ends in a TLS alert ("internal error"). A handshake
 * with that SNI is the test a user's client makes, so it is the one used here; the certificate is
 * not verified (only its presence matters, and the internal CA is trusted by nobody by default).
 */
import * as tls from "node:tls"

import { Clock, Duration, Effect } from "effect"

/** One handshake with `name` as SNI: true when the listener completed it (it has a certificate). */
export const handshake = (host: string, port: number, name: string, timeout: Duration.Duration) =>
  Effect.async<boolean>((resume) => {
    const socket = tls.connect({
      host,
      port,
      servername: name,
      rejectUnauthorized: false,
      ALPNProtocols: ["http/1.1"]
    })
    const done = (ok: boolean) => {
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.setTimeout(Duration.toMillis(timeout), () => done(false))
    socket.once("secureConnect", () => done(true))
    socket.once("error", () => done(false))
    return Effect.sync(() => socket.destroy())
  })

/**
 * Waits until the listener completes a handshake for every name, at most `within`; the names still
 * without a certificate then (empty when all are served).
 */
export const awaitCertificates = (
  host: string,
  port: number,
  names: ReadonlyArray<string>,
  within: Duration.Duration
): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function* () {
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(within)
    let pending = [...names]
    while (pending.length > 0) {
      const ready = yield* Effect.forEach(
        pending,
        (name) => handshake(host, port, name, Duration.seconds(2)),
        { concurrency: 4 }
      )
      pending = pending.filter((_, i) => !ready[i])
      if (pending.length === 0 || (yield* Clock.currentTimeMillis) >= deadline) break
      yield* Effect.sleep(Duration.millis(100))
    }
    return pending
  })

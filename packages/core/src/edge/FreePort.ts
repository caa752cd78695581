/**
 * A free TCP port on 127.0.0.1, found by binding port 0. Another program may take it before the
 * edge listens; the edge then reports `port-in-use` and the caller picks again.
 */
import * as net from "node:net"

import { Effect } from "effect"

export const freePort = (host = "127.0.0.1"): Effect.Effect<number> =>
  Effect.async<number>((resume) => {
    const server = net.createServer()
    server.once("error", (e) => resume(Effect.die(e)))
    server.listen({ host, port: 0 }, () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resume(Effect.succeed(port)))
    })
  })

/** True when something accepts connections on 127.0.0.1:port. */
export const isListening = (port: number, host = "127.0.0.1"): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.setTimeout(1000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

/**
 * The `node:http` server Kyozo listens with, closing gracefully. `NodeHttpServer` stops a server
 * with `server.close()`, which stops accepting but then waits for every open connection: an idle
 * keep-alive socket, an events stream or a `logs -f` would hold the process for as long as the
 * client stays, and a request arriving on a kept-alive socket after the handler was removed would
 * never be answered. Here `close()`:
 * - stops accepting and closes idle connections at once;
 * - lets requests in flight finish (their responses say `Connection: close`, and each socket is
 *   ended when its last request is done);
 * - answers a request that arrives while draining with a 503 (`Retry-After`), never silence;
 * - after `graceMs`, closes whatever is still open.
 * Endless streams (server-sent events) end themselves when draining starts (`Draining`).
 *
 * `hot` (optional) may answer a request before the HTTP stack sees it (`http/HotRoutes`); it is
 * counted and drained like any other.
 */
import * as http from "node:http"
import type * as net from "node:net"

export interface GracefulOptions {
  /** How long requests in flight may take to finish once shutdown began (then they are cut). */
  readonly graceMs: number
  /** Answers a request itself and returns true, or returns false to leave it to the handler. */
  readonly hot?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean
}

/**
 * How long an idle kept-alive connection stays open. Node's default (5 s, closed at 6 s) is shorter
 * than what clients and proxies keep reusing a connection for (Caddy and nginx upstream pools,
 * browsers: a minute or more): a request they send on a connection the server is closing at that
 * moment is lost ("socket hang up", "Failed to fetch"). Longer than theirs, the server never closes
 * first; the headers deadline stays above it, as Node requires for kept-alive connections.
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000
const HEADERS_TIMEOUT_MS = KEEP_ALIVE_TIMEOUT_MS + 1_000

/** A `createServer` for `NodeHttpServer.layer`. */
export const make = (options: GracefulOptions) => (): http.Server => {
  const server = http.createServer({
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    headersTimeout: HEADERS_TIMEOUT_MS
  })
  const inFlight = new Map<net.Socket, number>()
  let draining = false

  const done = (socket: net.Socket) => {
    const left = (inFlight.get(socket) ?? 1) - 1
    inFlight.set(socket, left)
    if (draining && left <= 0) socket.end()
  }

  // Registered before NodeHttpServer's handler: counts every request; while draining (or once the
  // handler is gone) it answers in place of the handler.
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1)
    res.once("close", () => done(socket))
    if (draining) res.shouldKeepAlive = false
    if (server.listenerCount("request") === 1) {
      res.writeHead(503, {
        "content-type": "application/json",
        connection: "close",
        "retry-after": "1"
      })
      res.end(
        JSON.stringify({
          errors: [
            {
              status: "503",
              code: "ShuttingDown",
              title: "Server shutting down",
              detail: "Kyozo is stopping: retry in a moment (against the restarted or another server)."
            }
          ]
        })
      )
    }
  })
  const hot = options.hot
  if (hot !== undefined) {
    // Ahead of every "request" listener: an answered request reaches neither the handler nor the
    // listener above, so it is counted here the same way.
    const emit = server.emit.bind(server) as (event: string, ...args: Array<unknown>) => boolean
    server.emit = ((event: string, ...args: Array<unknown>) => {
      if (event === "request" && !draining && server.listenerCount("request") > 1) {
        const req = args[0] as http.IncomingMessage
        const res = args[1] as http.ServerResponse
        const socket = req.socket
        inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1)
        let answered = false
        try {
          answered = hot(req, res)
        } catch {
          // A fault of the shortcut is not the request's: the handler answers it, unless the
          // answer had begun (then the connection is cut, never left hanging).
          answered = res.headersSent
          if (answered) res.destroy()
        }
        if (answered) {
          res.once("close", () => done(socket))
          return true
        }
        inFlight.set(socket, (inFlight.get(socket) ?? 1) - 1)
      }
      return emit(event, ...args)
    }) as typeof server.emit
  }
  server.on("connection", (socket: net.Socket) => {
    inFlight.set(socket, 0)
    socket.once("close", () => inFlight.delete(socket))
  })

  const close = server.close.bind(server)
  server.close = ((callback?: (error?: Error) => void) => {
    draining = true
    close(callback)
    server.closeIdleConnections()
    for (const [socket, count] of inFlight) if (count === 0) socket.end()
    setTimeout(() => server.closeAllConnections(), options.graceMs).unref()
    return server
  }) as typeof server.close
  return server
}

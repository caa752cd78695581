/**
 * Kept-alive connections on a real server process: a client (a browser, Caddy or nginx in front)
 * that reuses an idle connection after longer than Node's default 5 s (closed at 6 s) gets its
 * answer on the same socket. With Node's default the server closes the socket under it, and a
 * request sent at that moment is lost ("socket hang up", a browser's "Failed to fetch").
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

import { afterAll, describe, expect, it } from "vitest"

import { type ServerProcess, sleep, startServer, waitFor } from "./support/server.js"

let server: ServerProcess | undefined
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-keepalive-"))

afterAll(async () => {
  await server?.stop()
  fs.rmSync(dataDir, { recursive: true, force: true })
})

/** Raw HTTP/1.1 over one socket: each `send` writes a request and resolves with its answer's head. */
const connection = (port: number) => {
  const socket = net.connect(port, "127.0.0.1")
  let buffer = ""
  let closed = false
  let waiting: ((head: string | null) => void) | undefined
  const answer = () => {
    // One answer: its head, then as many body bytes as Content-Length says.
    const end = buffer.indexOf("\r\n\r\n")
    if (end < 0 || waiting === undefined) return
    const head = buffer.slice(0, end)
    const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0)
    if (Buffer.byteLength(buffer.slice(end + 4)) < length) return
    buffer = buffer.slice(end + 4 + length)
    const w = waiting
    waiting = undefined
    w(head)
  }
  socket.setEncoding("utf8")
  socket.on("data", (chunk: string) => {
    buffer += chunk
    answer()
  })
  socket.on("error", () => {})
  socket.on("close", () => {
    closed = true
    waiting?.(null)
  })
  return {
    isClosed: () => closed,
    send: (route: string): Promise<string | null> =>
      new Promise((resolve) => {
        if (closed) return resolve(null)
        waiting = resolve
        socket.write(`GET ${route} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`)
      }),
    close: () => socket.destroy()
  }
}

describe("kept-alive connections", () => {
  it("answers a request on a connection that sat idle longer than Node's default keep-alive", async () => {
    server = await startServer({ KYOZO_RUNTIME: "mock", KYOZO_EDGE: "inprocess", KYOZO_DATA_DIR: dataDir })
    await waitFor("the server", 60_000, async () =>
      (await server!.get("/healthz")).status === 200 ? true : undefined
    ).catch((e) => {
      throw new Error(`${e}\n${server!.log()}`)
    })
    const conn = connection(server.port)
    try {
      const first = await conn.send("/healthz")
      expect(first).toMatch(/^HTTP\/1\.1 200/)
      // The server tells clients how long it keeps the connection (proxies stop reusing before it).
      expect(first).toMatch(/keep-alive: timeout=65/i)
      // Idle past Node's default close (5 s + its 1 s grace), then reused.
      await sleep(7_000)
      expect(conn.isClosed(), "the server closed the idle connection").toBe(false)
      const second = await conn.send("/healthz")
      expect(second).toMatch(/^HTTP\/1\.1 200/)
    } finally {
      conn.close()
    }
  }, 90_000)
})

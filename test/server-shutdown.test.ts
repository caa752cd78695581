/**
 * SIGTERM on a real server process: it stops accepting at once, lets a request in flight finish
 * (an upload still arriving is answered 201), ends open event streams, answers what arrives on a
 * kept-alive connection meanwhile (never silence), and exits 0 without waiting for its grace.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"

import { afterAll, describe, expect, it } from "vitest"

import { type ServerProcess, startServer, waitFor } from "./support/server.js"

const dirs: Array<string> = []
const tempDir = (prefix: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  dirs.push(dir)
  return dir
}
let server: ServerProcess | undefined

afterAll(async () => {
  if (server && server.child.exitCode === null) server.child.kill("SIGKILL")
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
})

/** A request whose answer comes back as { status, body }, or { error } when the connection failed. */
const request = (
  options: http.RequestOptions,
  body?: (req: http.ClientRequest) => void
): Promise<{ status?: number; body?: string; error?: string }> =>
  new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", timeout: 15_000, ...options }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => (text += c))
      res.on("end", () => resolve({ status: res.statusCode!, body: text }))
      res.on("error", (e) => resolve({ error: e.message }))
    })
    req.on("timeout", () => req.destroy(new Error("no answer in 15 s")))
    req.on("error", (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }))
    if (body) body(req)
    else req.end()
  })

describe("server shutdown (SIGTERM)", () => {
  it("stops accepting, finishes the request in flight, ends event streams, exits 0 well before its grace", async () => {
    const dataDir = tempDir("kyozo-shutdown-")
    server = await startServer({
      KYOZO_RUNTIME: "mock",
      KYOZO_EDGE: "inprocess",
      KYOZO_DATA_DIR: dataDir,
      // A grace far above what the test waits: exiting in time shows nothing had to be cut.
      KYOZO_SHUTDOWN_GRACE_MS: "60000"
    })
    const port = server.port
    await waitFor("credentials file", 60_000, async () =>
      fs.existsSync(path.join(dataDir, "credentials.json")) && (await server!.get("/healthz")).status === 200
        ? true
        : undefined
    ).catch((e) => {
      throw new Error(`${e}\n${server!.log()}`)
    })
    const { token } = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8")) as {
      token: string
    }
    const auth = { authorization: `Bearer ${token}` }

    // An event stream that stays open.
    const events = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get({ host: "127.0.0.1", port, path: "/v1/events", headers: auth }, resolve).on("error", reject)
    )
    expect(events.statusCode).toBe(200)
    const streamEnded = new Promise<string>((resolve) => {
      events.on("end", () => resolve("ended"))
      events.on("error", (e) => resolve(`error ${e.message}`))
      events.resume()
    })

    // A kept-alive connection, idle after its first answer.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    expect((await request({ port, path: "/healthz", agent })).status).toBe(200)

    // An upload in flight: half of the tar now, the rest after SIGTERM.
    const folder = tempDir("kyozo-shutdown-site-")
    fs.writeFileSync(path.join(folder, "index.html"), "<h1>draining</h1>\n" + "x".repeat(200_000))
    const tar = execFileSync("tar", ["-cf", "-", "-C", folder, "."])
    const half = Math.floor(tar.length / 2)
    let finishUpload!: () => void
    const upload = request(
      {
        port,
        method: "POST",
        path: "/v1/uploads",
        headers: { ...auth, "content-type": "application/x-tar", "content-length": String(tar.length) }
      },
      (req) => {
        req.write(tar.subarray(0, half))
        finishUpload = () => req.end(tar.subarray(half))
      }
    )
    await new Promise((r) => setTimeout(r, 300))

    const killedAt = Date.now()
    server.child.kill("SIGTERM")
    await new Promise((r) => setTimeout(r, 300))

    // New connections are refused, not left hanging.
    expect((await request({ port, path: "/healthz", agent: false })).error).toBe("ECONNREFUSED")
    // What arrives on the kept-alive socket is answered (a 503 while draining), or the socket is closed.
    const onKept = await request({ port, path: "/healthz", agent })
    if (onKept.status !== undefined) expect([200, 503]).toContain(onKept.status)
    else expect(onKept.error).toMatch(/ECONNRESET|socket hang up|ECONNREFUSED/)

    // The request in flight still completes.
    finishUpload()
    const uploaded = await upload
    expect(uploaded.status, uploaded.body ?? uploaded.error).toBe(201)
    expect(JSON.parse(uploaded.body!)).toMatchObject({ files: 1 })

    const within = <A>(what: string, p: Promise<A>) =>
      Promise.race([
        p,
        new Promise<string>((r) => setTimeout(() => r(`${what}: still waiting after 30 s`), 30_000))
      ])
    expect(await within("event stream", streamEnded)).toBe("ended")
    expect(await within("exit", server.exited)).toBe(0)
    const tookMs = Date.now() - killedAt
    expect(tookMs, server.log()).toBeLessThan(20_000)
    expect(server.log()).not.toMatch(/No healthy runners/)
    agent.destroy()
  }, 120_000)
})

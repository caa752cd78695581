/**
 * The server as a user starts it: embedded PGlite, and with no Docker engine reachable it comes up
 * on the mock runtime, flagged, with everything else working. Also: one data folder, one process.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { afterAll, describe, expect, it } from "vitest"

import { type ServerProcess, startServer, waitFor } from "./support/server.js"

describe("server start-up", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-startup-"))
  const servers: Array<ServerProcess> = []
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()))
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it("comes up on the mock runtime when no engine is reachable, answers /healthz and /readyz, and stops cleanly", async () => {
    const server = await startServer({
      KYOZO_DATA_DIR: dataDir,
      KYOZO_RUNTIME: "auto",
      DOCKER_HOST: "unix:///tmp/kyozo-no-engine-here.sock"
    })
    servers.push(server)
    const ready = await waitFor("readiness", 180_000, async () => {
      const r = await server.get("/readyz")
      return r.status === 200 ? r.body : undefined
    })
    expect(ready).toMatchObject({ status: "ready", database: "ok", runtime: { mode: "mock" } })
    expect(ready.runtime.reason).toContain("no Docker engine")
    expect(ready.runtime.breaker.state).toBe("closed")
    expect(ready.schedules.map((s: { pass: string }) => s.pass)).toEqual(["health", "metrics", "cleanup"])
    const health = await server.get("/healthz")
    expect(health.status).toBe(200)
    expect(health.body.status).toBe("ok")
    expect(health.body.runtime).toBe("mock")
    expect(server.log()).toContain("Runtime: MOCK")
    expect(fs.existsSync(path.join(dataDir, "kyozo.lock"))).toBe(true)

    // A second process on the same data folder is refused with a clear message, not a silent loss.
    const second = await startServer({ KYOZO_DATA_DIR: dataDir, KYOZO_RUNTIME: "mock" })
    servers.push(second)
    const code = await Promise.race([
      second.exited,
      new Promise<"running">((r) => setTimeout(() => r("running"), 60_000))
    ])
    expect(code).not.toBe("running")
    expect(code).not.toBe(0)
    expect(second.log()).toContain("DatabaseLocked")

    // SIGTERM: scopes close in reverse order and the lock is released.
    const exit = await server.stop()
    expect(exit === 0 || exit === null).toBe(true)
    expect(fs.existsSync(path.join(dataDir, "kyozo.lock"))).toBe(false)
  }, 300_000)

  it("unknown routes answer 404, never 500", async () => {
    const server = await startServer({
      KYOZO_DATA_DIR: fs.mkdtempSync(path.join(dataDir, "b-")),
      KYOZO_RUNTIME: "mock"
    })
    servers.push(server)
    await waitFor("readiness", 180_000, async () =>
      (await server.get("/readyz")).status === 200 ? true : undefined
    )
    const missing = await server.get("/no/such/route")
    expect(missing.status).toBe(404)
    await server.stop()
  }, 300_000)
})

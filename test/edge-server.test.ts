/**
 * The edge as a Kyozo server sets it up (mock runtime, so no Docker needed): a simulated service's
 * URL answers a page saying so (never an empty reply), its host name answers on the shared edge
 * port, `kyozo ps --json` carries `url`, `hostUrl` and the edge kind; and the in-process fallback
 * says what it is in /readyz and `kyozo ps`.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"

import { afterAll, describe, expect, it } from "vitest"

import { caddySuite } from "./support/edge.js"
import { caller, deployService, workspaceApp } from "./support/rest.js"
import { freePort, repoRoot, type ServerProcess, startServer, waitFor } from "./support/server.js"

const caddy = caddySuite("edge-server")
const stops: Array<() => Promise<unknown>> = []
afterAll(async () => {
  for (const stop of stops) await stop()
})

const boot = async (env: Record<string, string>) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-es-"))
  const server: ServerProcess = await startServer({
    KYOZO_RUNTIME: "mock",
    KYOZO_DATA_DIR: dataDir,
    KYOZO_RATE_LIMIT: "off",
    ...env
  })
  stops.push(async () => {
    await server.stop()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })
  await waitFor("server /healthz", 60_000, async () =>
    (await server.get("/healthz")).status === 200 ? true : undefined
  ).catch((e) => {
    throw new Error(`${e}\n${server.log()}`)
  })
  const creds = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
  // Deploys by path read only the team's own folder of the workspaces root.
  workspaceApp(dataDir, creds.teamId, "app")
  const call = caller(server.port, creds.token)
  const kyozo = (args: ReadonlyArray<string>) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const full: Record<string, string> = {
        ...(process.env as Record<string, string>),
        KYOZO_DATA_DIR: dataDir
      }
      delete full.KYOZO_URL
      delete full.KYOZO_TOKEN
      execFile(
        "pnpm",
        ["--silent", "kyozo", ...args],
        { cwd: repoRoot, env: full, timeout: 60_000 },
        (e, stdout, stderr) => resolve({ code: e ? 1 : 0, stdout, stderr })
      )
    })
  return { server, call, kyozo, dataDir, teamId: creds.teamId as string }
}

const get = (port: number, host?: string) =>
  new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>((resolve) => {
    const req = http.get(
      { host: "127.0.0.1", port, path: "/", agent: false, timeout: 8000, headers: host ? { host } : {} },
      (res) => {
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (c: string) => (body += c))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
      }
    )
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", (e) => resolve({ status: 0, body: String(e), headers: {} }))
  })

const portOf = (url: string) => Number(new URL(url).port)

describe.skipIf(!caddy.available)("a simulated service behind Caddy", () => {
  it("answers a page that says it is simulated, on its URL and its host name", async () => {
    const edgePort = await freePort()
    const { call, kyozo, server, teamId } = await boot({
      KYOZO_EDGE: "caddy",
      KYOZO_EDGE_PORT: String(edgePort)
    })
    expect((await server.get("/readyz")).body.edge).toMatchObject({ kind: "caddy", sharedPort: edgePort })
    await deployService(call, "app", "app")
    const ps = await kyozo(["ps", "--json"])
    // stderr holds only the one-line notice that the server runs the mock runtime.
    expect(ps.stderr.trim().split("\n")).toEqual([expect.stringMatching(/mock runtime/)])
    const [view] = JSON.parse(ps.stdout)
    expect(view).toMatchObject({ name: "app", edge: "caddy", replicas: 1 })
    expect(view.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(view.hostUrl).toBe(`http://app.default.localhost:${edgePort}`)

    const direct = await waitFor("the simulated page", 15_000, async () => {
      const r = await get(portOf(view.url))
      return r.status === 200 ? r : undefined
    })
    expect(direct.headers["kyozo-runtime"]).toBe("mock")
    expect(direct.body).toContain("simulated")
    const named = await get(edgePort, "app.default.localhost")
    expect(named.status).toBe(200)
    expect(named.headers["kyozo-runtime"]).toBe("mock")

    // Replicas through the CLI (RPC) and REST; quotas count them (500 mCPU each).
    const scaled = await kyozo(["scale", "app", "3", "--json"])
    expect(scaled.stderr.trim().split("\n")).toEqual([expect.stringMatching(/mock runtime/)])
    expect(JSON.parse(scaled.stdout)).toMatchObject({ name: "app", replicas: 3, url: view.url })
    // The bootstrap user is an instance admin: it lowers the team's CPU quota to 4,000 mCPU.
    const quota = await call("PATCH", `/v1/teams/${teamId}`, {
      data: { type: "teams", attributes: { quotaCpuMillis: 4_000 } }
    })
    expect(quota.status).toBe(200)
    const over = await call("PATCH", `/v1/services/${view.id}`, {
      data: { type: "services", attributes: { replicas: 20 } }
    })
    expect(over.status).toBe(409)
    expect(over.text).toContain("quota")
    const row = await call("GET", `/v1/services/${view.id}`)
    expect(row.body.data.attributes.replicas).toBe(3)
  }, 120_000)
})

describe("the in-process fallback", () => {
  it("says so in /readyz and kyozo ps, and still answers the simulated page", async () => {
    const { call, kyozo, server } = await boot({ KYOZO_EDGE: "inprocess" })
    expect((await server.get("/readyz")).body.edge).toMatchObject({
      kind: "inprocess",
      survivesRestart: false
    })
    await deployService(call, "app", "app")
    const ps = await kyozo(["ps"])
    expect(ps.stdout).toContain("in-process fallback")
    const [view] = JSON.parse((await kyozo(["ps", "--json"])).stdout)
    expect(view).toMatchObject({ edge: "inprocess", hostUrl: null })
    const page = await waitFor("the simulated page", 15_000, async () => {
      const r = await get(portOf(view.url))
      return r.status === 200 ? r : undefined
    })
    expect(page.headers["kyozo-runtime"]).toBe("mock")
  }, 120_000)
})

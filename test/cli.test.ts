/**
 * The `kyozo` CLI as a user runs it (`pnpm --silent kyozo …`) against a real server process on the
 * mock runtime. The CLI finds the server and its key through `<KYOZO_DATA_DIR>/credentials.json`.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freePort, repoRoot, type ServerProcess, startServer, waitFor } from "./support/server.js"

let server: ServerProcess
let dataDir: string

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-cli-"))
  server = await startServer({ KYOZO_RUNTIME: "mock", KYOZO_DATA_DIR: dataDir })
  await waitFor("credentials file", 60_000, async () =>
    fs.existsSync(path.join(dataDir, "credentials.json")) && (await server.get("/healthz")).status === 200
      ? true
      : undefined
  ).catch((e) => {
    throw new Error(`${e}\n${server.log()}`)
  })
})

afterAll(async () => {
  await server?.stop()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const kyozo = (
  args: ReadonlyArray<string>,
  env: Record<string, string> = {},
  timeout = 60_000
): Promise<Run> => {
  const full: Record<string, string> = { ...(process.env as Record<string, string>) }
  delete full.KYOZO_URL
  delete full.KYOZO_TOKEN
  Object.assign(full, { KYOZO_DATA_DIR: dataDir }, env)
  return new Promise((resolve) => {
    execFile(
      "pnpm",
      ["--silent", "kyozo", ...args],
      { cwd: repoRoot, env: full, timeout },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr })
    )
  })
}

describe("kyozo CLI", () => {
  it("ps --json prints a JSON array, using the credentials file", async () => {
    const run = await kyozo(["ps", "--json"])
    expect(run.stderr).toBe("")
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual([])
  })

  it("whoami --json names the bootstrap owner", async () => {
    const run = await kyozo(["whoami", "--json"])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ role: "owner", teamName: "default" })
  })

  it("an unknown service exits 1 with the typed error's message", async () => {
    const run = await kyozo(["stop", "no-such-service"])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain("No service no-such-service in your team")
  })

  it("a bad flag is a usage error: exit 2", async () => {
    const run = await kyozo(["ps", "--no-such-flag"])
    expect(run.code).toBe(2)
  })

  it("a bad token exits 1 with Unauthorized's message", async () => {
    const run = await kyozo(["ps"], { KYOZO_TOKEN: `kz_aaaaaaaa_${"b".repeat(32)}` })
    expect(run.code).toBe(1)
    expect(run.stderr).toContain("Invalid, revoked or expired API key")
  })

  it("no server at the URL: exit 1 and how to start one", async () => {
    const port = await freePort()
    const run = await kyozo(["ps"], { KYOZO_URL: `http://127.0.0.1:${port}` })
    expect(run.code).toBe(1)
    expect(run.stderr).toContain(`no Kyozo server at http://127.0.0.1:${port}: start one with \`pnpm start\``)
  })

  it("deploy of the static fixture prints the service URL", async () => {
    const fixture = path.join(repoRoot, "test", "fixtures", "detect", "static-site")
    const run = await kyozo(["deploy", fixture, "--json"], {}, 170_000)
    const lines = run.stdout
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as { _tag: string; deployment?: { url: string | null; serviceName: string } })
    expect(run.stderr, run.stdout).toBe("")
    expect(run.code).toBe(0)
    expect(lines[0]?._tag).toBe("Detected")
    const deployed = lines.find((l) => l._tag === "Deployed")
    expect(deployed?.deployment?.serviceName).toBe("static-site")
    expect(deployed?.deployment?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+/)
    const ps = JSON.parse((await kyozo(["ps", "--json"])).stdout) as Array<{ name: string; status: string }>
    expect(ps.map((s) => s.name)).toContain("static-site")
  }, 180_000)
})

/**
 * The `kyozo` CLI as a user runs it: the built bin (`node_modules/.bin/kyozo`, the committed shim
 * plus the bundle the install step builds) against a real server process on the mock runtime.
 * The CLI finds the server and its key through `<KYOZO_DATA_DIR>/credentials.json`, or through
 * what `kyozo login` stored. On the mock runtime every command says so on stderr, once.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { buildCli, kyozoBin, runKyozo, spawnKyozo } from "./support/cli.js"
import { caller, doc, expectStatus, memberWithKey } from "./support/rest.js"
import { freePort, repoRoot, type ServerProcess, startServer, waitFor } from "./support/server.js"

let server: ServerProcess
let dataDir: string
let work: string

const mockNotice = /^kyozo: http:\/\/127\.0\.0\.1:\d+ runs on the mock runtime: services are simulated/

beforeAll(async () => {
  buildCli()
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-cli-"))
  work = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-cli-work-"))
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
  for (const d of [dataDir, work]) if (d) fs.rmSync(d, { recursive: true, force: true })
})

const kyozo = (args: ReadonlyArray<string>, env: Record<string, string> = {}, timeout = 60_000) =>
  runKyozo(dataDir, args, { env, timeout })

/** A copy of a fixture in a temp folder, so tests can change it. */
const copyFixture = (fixture: string, as: string): string => {
  const dir = path.join(work, as)
  fs.cpSync(path.join(repoRoot, "test", "fixtures", "detect", fixture), dir, { recursive: true })
  return dir
}

/** Deploys its own copy of the static fixture as service `name` (each test stands alone). */
const deploySite = async (name: string, html: string) => {
  const dir = path.join(work, name)
  if (!fs.existsSync(dir)) copyFixture("static-site", name)
  fs.writeFileSync(path.join(dir, "index.html"), html)
  const run = await kyozo(["deploy", dir, "--name", name, "--json"], {}, 120_000)
  expect(run.code, run.stderr).toBe(0)
  return dir
}

const ndjson = (text: string) =>
  text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, any>)

describe("kyozo CLI (built bin, mock runtime)", () => {
  it("is a real command: node_modules/.bin/kyozo prints its version", async () => {
    expect(fs.existsSync(kyozoBin)).toBe(true)
    const run = await kyozo(["--version"])
    expect(run.code).toBe(0)
    expect(run.stdout.trim()).toBe("0.1.0")
  })

  it("the shim builds the bundle when it is missing (pnpm links bins before build scripts run)", async () => {
    const dist = path.join(repoRoot, "packages", "cli", "dist")
    fs.rmSync(dist, { recursive: true, force: true })
    const run = await kyozo(["--version"], {}, 120_000)
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout.trim()).toBe("0.1.0")
    expect(fs.existsSync(path.join(dist, "kyozo.mjs"))).toBe(true)
  }, 120_000)

  it("ps --json prints a JSON array on stdout; the mock notice is one line on stderr", async () => {
    const run = await kyozo(["ps", "--json"])
    expect(run.code).toBe(0)
    expect(Array.isArray(JSON.parse(run.stdout))).toBe(true)
    const lines = run.stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(mockNotice)
  })

  it("whoami --json names the bootstrap owner", async () => {
    const run = await kyozo(["whoami", "--json"])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ role: "owner", teamName: "default" })
    expect(run.stderr).toMatch(mockNotice)
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

  it("deploy --json: NDJSON from upload to Deployed, marked simulated; ps shows the mock runtime", async () => {
    const dir = copyFixture("static-site", "static-site")
    const run = await kyozo(["deploy", dir, "--json"], {}, 170_000)
    expect(run.code, run.stderr).toBe(0)
    expect(run.stderr.trim()).toMatch(mockNotice)
    const lines = ndjson(run.stdout)
    expect(lines.map((l) => l._tag).slice(0, 3)).toEqual(["Packed", "Uploaded", "Detected"])
    expect(lines[0]).toMatchObject({ files: 2 })
    const deployed = lines.find((l) => l._tag === "Deployed")
    expect(deployed?.deployment?.serviceName).toBe("static-site")
    expect(deployed?.deployment?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+/)
    expect(lines.some((l) => l._tag === "Step" && l.step === "deploy.health-attempt")).toBe(true)
    expect(lines.at(-1)).toMatchObject({ _tag: "Simulated", runtime: "mock", services: ["static-site"] })

    const ps = JSON.parse((await kyozo(["ps", "--json"])).stdout) as Array<{ name: string; runtime: string }>
    expect(ps.find((s) => s.name === "static-site")?.runtime).toBe("mock")
    const table = await kyozo(["ps"])
    expect(table.stdout.split("\n")[0]).toMatch(/NAME\s+STATUS\s+RUNTIME/)
    expect(table.stdout).toMatch(/static-site\s+running\s+mock \(simulated\)/)
  }, 180_000)

  it("a viewer with a deploy grant deploys that service's folder; another name is refused, saying why", async () => {
    const dir = await deploySite("granted-site", "<h1>one</h1>\n")
    const creds = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
    const owner = caller(server.port, creds.token)
    const viewer = await memberWithKey(owner, `cli-viewer-${Date.now()}@example.com`, "viewer")
    const serviceId = (await owner("GET", "/v1/services/granted-site")).body.data.id as string
    expectStatus(
      await owner(
        "POST",
        `/v1/services/${serviceId}/permissions`,
        doc("service-permissions", { userId: viewer.userId, permission: "deploy" })
      ),
      201,
      "grant deploy"
    )
    const asViewer = { KYOZO_URL: `http://127.0.0.1:${server.port}`, KYOZO_TOKEN: viewer.token }
    fs.writeFileSync(path.join(dir, "index.html"), "<h1>two</h1>\n")
    const ok = await runKyozo(dataDir, ["deploy", dir, "--name", "granted-site", "--json"], {
      env: asViewer,
      timeout: 120_000
    })
    expect(ok.code, ok.stderr).toBe(0)
    expect(ndjson(ok.stdout).find((l) => l._tag === "Deployed")?.deployment?.serviceName).toBe("granted-site")
    const refused = await runKyozo(dataDir, ["deploy", dir, "--name", "other-site"], { env: asViewer })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain("it needs a deploy grant on that service")
  }, 180_000)

  it("deploy without --json prints plain progress lines and says the service is simulated", async () => {
    const dir = copyFixture("static-site", "site-plain")
    const run = await kyozo(["deploy", dir], {}, 170_000)
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).not.toContain("\x1b[")
    expect(run.stdout).toMatch(/^uploaded 2 files \(\d+ B\) in/m)
    expect(run.stdout).toMatch(/site-plain: build step \d+\/\d+: /)
    expect(run.stdout).toMatch(/site-plain: health gate attempt 1: /)
    expect(run.stdout).toMatch(/^site-plain → http:\/\/127\.0\.0\.1:\d+ {2}\(simulated: .*mock runtime/m)
  }, 180_000)

  it("rollback goes back to the previous deployment's image", async () => {
    const image = async () =>
      (JSON.parse((await kyozo(["ps", "--json"])).stdout) as Array<{ name: string; image: string }>).find(
        (s) => s.name === "site-rollback"
      )?.image
    await deploySite("site-rollback", "<h1>first</h1>\n")
    const first = await image()
    await deploySite("site-rollback", "<h1>second</h1>\n")
    const second = await image()
    expect(second).not.toBe(first)
    const run = await kyozo(["rollback", "site-rollback"], {}, 120_000)
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^rolled back site-rollback to kyozo\/\S+ \(dep_\w+\): http:/)
    expect(await image()).toBe(first)
    expect(run.stdout).toContain(first!)
  }, 240_000)

  it("logs -f keeps following: new lines arrive after the command started", async () => {
    await deploySite("site-logs", "<h1>logs</h1>\n")
    const live = spawnKyozo(dataDir, ["logs", "site-logs", "-f", "--tail", "0", "--json"], {
      KYOZO_NO_MOCK_NOTICE: "1"
    })
    try {
      // The mock engine writes a heartbeat line every few seconds; tail 0 means each one is new.
      await live.waitFor(/"line"/, 30_000)
      expect(live.child.exitCode).toBe(null)
      expect(live.stderr()).toBe("")
    } finally {
      live.child.kill("SIGTERM")
      await live.exited
    }
  }, 60_000)

  it("events -f streams the events of an operation made while it follows", async () => {
    await deploySite("site-events", "<h1>first</h1>\n")
    const live = spawnKyozo(dataDir, ["events", "-f", "--json", "--service", "site-events"])
    try {
      await live.waitFor(/deploy\.succeeded/, 20_000)
      const before = live.stdout().split("\n").filter(Boolean).length
      await deploySite("site-events", "<h1>second</h1>\n")
      const fresh = () =>
        ndjson(live.stdout())
          .slice(before)
          .map((e) => String(e.type))
      await waitFor("the new deploy's events", 20_000, async () =>
        fresh().includes("deploy.succeeded") ? true : undefined
      )
      expect(fresh()).toContain("deploy.building")
    } finally {
      live.child.kill("SIGTERM")
      await live.exited
    }
  }, 60_000)

  it("stop, start, restart and rm operate a service by name", async () => {
    await deploySite("site-ops", "<h1>ops</h1>\n")
    expect((await kyozo(["stop", "site-ops", "--json"])).stdout).toContain('"desiredState": "stopped"')
    expect((await kyozo(["start", "site-ops"])).stdout).toMatch(/^site-ops {2}/)
    const restarted = await kyozo(["restart", "site-ops", "--json"])
    expect(restarted.code, restarted.stderr).toBe(0)
    expect(JSON.parse(restarted.stdout)).toMatchObject({ name: "site-ops", desiredState: "running" })
    const rm = await kyozo(["rm", "site-ops"])
    expect(rm.code, rm.stderr).toBe(0)
    const ps = JSON.parse((await kyozo(["ps", "--json"])).stdout) as Array<{ name: string }>
    expect(ps.map((x) => x.name)).not.toContain("site-ops")
  }, 120_000)

  it("server runs a Kyozo server in this process, which stops on SIGTERM", async () => {
    const own = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-cli-server-"))
    const port = await freePort()
    // The in-process edge: this test is about the server command, and leaves no Caddy behind.
    const live = spawnKyozo(own, ["server"], {
      KYOZO_RUNTIME: "mock",
      KYOZO_PORT: String(port),
      KYOZO_EDGE: "inprocess"
    })
    try {
      const health = await waitFor("kyozo server /healthz", 90_000, async () => {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined)
        return res?.ok ? ((await res.json()) as { status: string; runtime: string }) : undefined
      })
      expect(health).toMatchObject({ status: "ok", runtime: "mock" })
      expect(fs.existsSync(path.join(own, "credentials.json"))).toBe(true)
      live.child.kill("SIGTERM")
      await live.exited
      expect(await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => "closed")).toBe("closed")
    } finally {
      if (live.child.exitCode === null) live.child.kill("SIGKILL")
      fs.rmSync(own, { recursive: true, force: true })
    }
  }, 120_000)

  it("login stores a server and key by name; later commands use it; use switches servers", async () => {
    const own = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-login-"))
    try {
      const token = (
        JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8")) as { token: string }
      ).token
      const url = `http://127.0.0.1:${server.port}`
      // A data folder without credentials: nothing to talk to yet.
      const before = await runKyozo(own, ["ps"])
      expect(before.code).toBe(1)
      expect(before.stderr).toContain("kyozo login <url>")
      // The key arrives on stdin, never on the command line.
      const login = await runKyozo(own, ["login", url, "--name", "local"], { input: `${token}\n` })
      expect(login.code, login.stderr).toBe(0)
      expect(login.stdout).toContain(`logged in to local (${url}) as admin@kyozo.local`)
      const stored = path.join(own, "servers.json")
      expect(fs.statSync(stored).mode & 0o777).toBe(0o600)
      expect(JSON.parse(fs.readFileSync(stored, "utf8"))).toEqual({
        current: "local",
        servers: { local: { url, token } }
      })
      const ps = await runKyozo(own, ["ps", "--json"])
      expect(ps.code, ps.stderr).toBe(0)
      expect(Array.isArray(JSON.parse(ps.stdout))).toBe(true)
      // A second server by name; the current one switches with `use`.
      const bad = await runKyozo(own, [
        "login",
        url,
        "--name",
        "other",
        "--token",
        `kz_aaaaaaaa_${"b".repeat(32)}`
      ])
      expect(bad.code).toBe(1)
      expect(bad.stderr).toContain("Invalid, revoked or expired API key")
      const second = await runKyozo(own, ["login", url, "--name", "second", "--token", token])
      expect(second.code, second.stderr).toBe(0)
      expect((await runKyozo(own, ["servers"])).stdout).toMatch(/^ {2}local .*\n\* second /m)
      expect((await runKyozo(own, ["use", "local"])).code).toBe(0)
      expect((await runKyozo(own, ["servers", "--json"])).stdout).toContain('"current": true')
      const unknown = await runKyozo(own, ["use", "nope"])
      expect(unknown.code).toBe(1)
      expect(unknown.stderr).toContain("no server named nope")
      const named = await runKyozo(own, ["whoami"], { env: { KYOZO_SERVER: "second" } })
      expect(named.code, named.stderr).toBe(0)
    } finally {
      fs.rmSync(own, { recursive: true, force: true })
    }
  }, 60_000)

  it("init writes kyozo.json from detection; deploys read it; a bad field is named with its line", async () => {
    const dir = copyFixture("node-http", "node-http")
    const init = await kyozo(["init", dir])
    expect(init.code, init.stderr).toBe(0)
    const file = path.join(dir, "kyozo.json")
    const written = JSON.parse(fs.readFileSync(file, "utf8"))
    expect(written.services).toHaveLength(1)
    expect(written.services[0]).toMatchObject({
      path: ".",
      port: 8090,
      replicas: 1,
      healthCheck: { type: "http" }
    })
    expect(written.services[0].env).toEqual([])

    // Corrected once by the user: detection now reports the corrected name and port.
    written.services[0].name = "renamed"
    written.services[0].port = 9099
    fs.writeFileSync(file, JSON.stringify(written, null, 2))
    const detect = JSON.parse((await kyozo(["detect", dir, "--json"])).stdout)
    expect(detect.services[0]).toMatchObject({ name: "renamed", port: 9099 })

    written.services[0].replicas = "two"
    fs.writeFileSync(file, JSON.stringify(written, null, 2))
    const lineOfReplicas =
      fs
        .readFileSync(file, "utf8")
        .split("\n")
        .findIndex((l) => l.includes('"replicas"')) + 1
    for (const args of [
      ["init", dir],
      ["detect", dir],
      ["deploy", dir]
    ]) {
      const bad = await kyozo(args)
      expect(bad.code).toBe(1)
      expect(bad.stderr).toContain(`${file}:${lineOfReplicas}: services[0].replicas`)
    }
    fs.writeFileSync(file, '{ "services": [ { "name": "x", } ] }')
    const withEnv = copyFixture("node-env-backing", "node-env")
    fs.writeFileSync(path.join(withEnv, "worker.js"), "const key = process.env.API_KEY\n")
    expect((await kyozo(["init", withEnv])).code).toBe(0)
    const envs = JSON.parse(fs.readFileSync(path.join(withEnv, "kyozo.json"), "utf8")).services[0].env
    expect(envs).toEqual(["API_KEY", "DATABASE_URL", "REDIS_URL"])
    expect(fs.readFileSync(path.join(withEnv, "kyozo.json"), "utf8")).not.toContain("mysql://")

    const syntax = await kyozo(["detect", dir])
    expect(syntax.code).toBe(1)
    expect(syntax.stderr).toMatch(/kyozo\.json:1: not valid JSON/)
  }, 120_000)
})

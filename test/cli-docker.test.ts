/**
 * The built `kyozo` bin against a server on the REAL Docker engine: the live progress display of a
 * real build captured through a pseudo-terminal (`script`, util-linux), `logs -f` of a real
 * container, and `kyozo dev`: an edit is served within seconds, ten rapid saves are one redeploy,
 * Ctrl-C stops cleanly.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { cliEnv, kyozoBin, runKyozo, spawnKyozo, startCliServer, stopCliServer } from "./support/cli.js"
import { dockerSuite, requireBaseImages } from "./support/docker.js"
import { type ServerProcess, waitFor } from "./support/server.js"

const docker = await dockerSuite("cli-docker")
if (docker.available) await requireBaseImages(docker.client)

let server: ServerProcess
let dataDir: string
let work: string

const app = (dir: string, reply: string) => {
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(
    path.join(dir, "package.json"),
    JSON.stringify({ name: "cli-app", version: "1.0.0", main: "server.js" })
  )
  fs.writeFileSync(
    path.join(dir, "server.js"),
    `const http = require("node:http")
const port = Number(process.env.PORT) || 8090
http.createServer((req, res) => { console.log("request " + req.url); res.end(${JSON.stringify(reply)}) }).listen(port)
`
  )
}
const setReply = (dir: string, reply: string) => {
  const file = path.join(dir, "server.js")
  fs.writeFileSync(
    file,
    fs.readFileSync(file, "utf8").replace(/res\.end\(".*?"\)/, `res.end(${JSON.stringify(reply)})`)
  )
}

const body = async (url: string): Promise<string | undefined> => {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) }).catch(() => undefined)
  return res ? await res.text() : undefined
}

let teamId: string

beforeAll(async () => {
  if (!docker.available) return
  ;({ server, dataDir, work, teamId } = await startCliServer("cli-docker"))
}, 90_000)

afterAll(async () => {
  if (docker.available) await stopCliServer(docker, { server, dataDir, work, teamId })
}, 60_000)

describe.skipIf(!docker.available)("kyozo CLI on the real Docker engine", () => {
  it("a terminal sees a live progress display of a real build: step N/M, current layer, elapsed", async () => {
    const dir = path.join(work, "tty-app")
    app(dir, "tty")
    // `script` gives the command a pseudo-terminal, as a person's shell would.
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        "script",
        ["-qfec", `${kyozoBin} deploy ${dir}`, "/dev/null"],
        { env: { ...cliEnv(dataDir), COLUMNS: "120", TERM: "xterm" }, timeout: 150_000 },
        (error, stdout) => (error ? reject(new Error(`${error.message}\n${stdout}`)) : resolve(stdout))
      )
    )
    // Redraws: cursor up and clear, then the live line for the service with the build step.
    expect(out).toContain("\x1b[1F\x1b[J")
    expect(out).toMatch(
      /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] tty-app {2}build step \d+\/\d+ {2}\d+\.\ds {2}(FROM|COPY|RUN|WORKDIR|USER|EXPOSE|CMD|LABEL)/
    )
    expect(out).toMatch(/tty-app {2}health gate {2}(waiting|attempt \d+)/)
    expect(out).toMatch(/uploaded 2 files \(\d+ B\)/)
    expect(out).toMatch(/tty-app → http:\/\/127\.0\.0\.1:\d+\r?\n/)
    // The real engine: no mock notice, nothing simulated.
    expect(out).not.toContain("mock runtime")
    expect(out).not.toContain("simulated")
  }, 180_000)

  it("logs -f of a real container shows a request made while it follows", async () => {
    const dir = path.join(work, "logs-app")
    app(dir, "logs")
    const deployed = await runKyozo(dataDir, ["deploy", dir, "--json"], { timeout: 150_000 })
    expect(deployed.code, deployed.stderr).toBe(0)
    const ps = JSON.parse((await runKyozo(dataDir, ["ps", "--json"])).stdout) as Array<{
      name: string
      url: string
    }>
    const svc = ps.find((s) => s.name === "logs-app")!
    expect(svc.url).toMatch(/^http:/)
    const live = spawnKyozo(dataDir, ["logs", "logs-app", "-f", "--tail", "0"])
    try {
      await new Promise((r) => setTimeout(r, 1500))
      const marker = `/marker-${Date.now()}`
      expect(await body(svc.url + marker)).toBe("logs")
      await live.waitFor(new RegExp(`request ${marker}`), 20_000)
    } finally {
      live.child.kill("SIGTERM")
      await live.exited
    }
  }, 60_000)

  it("deploy again unchanged: nothing changed, the same container serves; --force replaces it", async () => {
    const dir = path.join(work, "same-app")
    app(dir, "same")
    const containerOf = async () => {
      const ps = JSON.parse((await runKyozo(dataDir, ["ps", "--json"])).stdout) as Array<{
        name: string
        containerId: string
        url: string
      }>
      return ps.find((s) => s.name === "same-app")!
    }
    const first = await runKyozo(dataDir, ["deploy", dir], { timeout: 150_000 })
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).not.toContain("nothing changed")
    const before = await containerOf()
    const again = await runKyozo(dataDir, ["deploy", dir], { timeout: 60_000 })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toMatch(/same-app: nothing changed/)
    expect(again.stdout).toMatch(/same-app → http:\/\/127\.0\.0\.1:\d+ {2}\(unchanged/)
    expect((await containerOf()).containerId).toBe(before.containerId)
    expect(await body(before.url)).toBe("same")
    const forced = await runKyozo(dataDir, ["deploy", dir, "--force"], { timeout: 60_000 })
    expect(forced.code, forced.stderr).toBe(0)
    expect(forced.stdout).not.toContain("nothing changed")
    expect(forced.stdout).toMatch(/same-app: Now serving/)
    expect((await containerOf()).containerId).not.toBe(before.containerId)
    expect(await body(before.url)).toBe("same")
  }, 240_000)

  it("a manifest-less static folder deployed twice through the CLI upload is unchanged the second time", async () => {
    const dir = path.join(work, "plain-site")
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(path.join(dir, "index.html"), "<h1>plain</h1>\n")
    const serving = async () => {
      const ps = JSON.parse((await runKyozo(dataDir, ["ps", "--json"])).stdout) as Array<{
        name: string
        containerId: string
        url: string
      }>
      return ps.find((s) => s.name === "plain-site")!
    }
    const first = await runKyozo(dataDir, ["deploy", dir], { timeout: 150_000 })
    expect(first.code, first.stderr).toBe(0)
    const before = await serving()
    expect(await body(before.url)).toContain("plain")
    const again = await runKyozo(dataDir, ["deploy", dir], { timeout: 60_000 })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toMatch(/plain-site: nothing changed/)
    expect((await serving()).containerId).toBe(before.containerId)
    const containers = await docker.client.listContainers({
      all: true,
      filters: JSON.stringify({ label: [`kyozo.service`], name: ["plain-site"] })
    })
    expect(containers.length).toBe(1)
    expect(await body(before.url)).toContain("plain")
  }, 240_000)

  it("dev: an edit is served within seconds, ten rapid saves are one redeploy, Ctrl-C stops cleanly", async () => {
    const dir = path.join(work, "dev-app")
    app(dir, "v1")
    const dev = spawnKyozo(dataDir, ["dev", dir, "--json"], { KYOZO_DEV_DEBOUNCE_MS: "300" })
    try {
      const deployed = await dev.waitFor(/"_tag":"Deployed".*?"url":"(http:\/\/127\.0\.0\.1:\d+)"/, 150_000)
      const url = deployed[1]!
      await dev.waitFor(/"_tag":"Watching"/, 20_000)
      expect(await body(url)).toBe("v1")
      // The service's logs stream into the dev session.
      await dev.waitFor(/"_tag":"Log","service":"dev-app".*"line":"request \/"/, 20_000)
      const redeploys = () => (dev.stdout().match(/"_tag":"Redeploy"/g) ?? []).length

      // One save: the new content is served within a few seconds.
      const saved = Date.now()
      setReply(dir, "v2")
      await waitFor("v2 served", 120_000, async () => ((await body(url)) === "v2" ? true : undefined))
      const servedAfterMs = Date.now() - saved
      expect(servedAfterMs).toBeLessThan(30_000)
      expect(redeploys()).toBe(1)

      // A save that changes nothing the build sees (an ignored file) redeploys nothing.
      fs.mkdirSync(path.join(dir, "node_modules"), { recursive: true })
      fs.writeFileSync(path.join(dir, "node_modules", "noise.txt"), "x")
      // Ten saves within a second: one redeploy, serving the last.
      for (let i = 1; i <= 10; i++) {
        setReply(dir, `v3-${i}`)
        await new Promise((r) => setTimeout(r, 80))
      }
      await waitFor("v3-10 served", 120_000, async () => ((await body(url)) === "v3-10" ? true : undefined))
      await new Promise((r) => setTimeout(r, 2000))
      expect(redeploys()).toBe(2)
      expect(dev.stdout()).not.toMatch(/"_tag":"RedeployFailed"/)

      // A save that breaks the service: the redeploy fails with what to do, the old version serves on.
      const file = path.join(dir, "server.js")
      fs.writeFileSync(file, "process.exit(3)\n" + fs.readFileSync(file, "utf8"))
      await dev.waitFor(/"_tag":"RedeployFailed","error":"[^"]*failed at health[^"]*"/, 90_000)
      expect(dev.stdout()).toContain("The previous version keeps serving")
      expect(await body(url)).toBe("v3-10")
      // A failed state is not retried in a loop: it waits for the next save.
      await new Promise((r) => setTimeout(r, 2000))
      expect(redeploys()).toBe(3)

      dev.child.kill("SIGINT")
      expect(await dev.exited).toBe(0)
      expect(dev.stdout()).toMatch(/"_tag":"Stopped","redeploys":3/)
    } finally {
      if (dev.child.exitCode === null) dev.child.kill("SIGKILL")
    }
  }, 420_000)
})

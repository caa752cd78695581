/**
 * dockerd stopped while Kyozo runs: the breaker opens after its threshold and calls fail fast with
 * CircuitOpen; dockerd started again: half-open, then closed. A real Kyozo server process watches
 * the same outage through its schedules and never exits. Prints time to open and time to close.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import * as CircuitBreaker from "@kyozo/core/engine/CircuitBreaker"
import * as DockerRuntime from "@kyozo/core/engine/DockerRuntime"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"

import { dockerdPids, dockerReachable, dockerSuite, startDocker } from "./support/docker.js"
import { freePort, sleep, stopEdge, waitFor } from "./support/server.js"

const suite = await dockerSuite("docker outage (stops and restarts dockerd)")
const root = path.resolve(import.meta.dirname, "..")

const readyz = async (port: number): Promise<any> => {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) })
  return res.json()
}

const restartDocker = () => startDocker(90_000)

describe.skipIf(!suite.available)("Docker engine outage", () => {
  let server: ChildProcess | undefined
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-outage-"))

  afterAll(async () => {
    // Whatever happened, leave an engine running for the suites after this one.
    if (!(await dockerReachable())) restartDocker()
    server?.kill("SIGTERM")
    await sleep(500)
    // The server's edge (Caddy) outlives it by design: stop it.
    await stopEdge(dataDir)
    fs.rmSync(dataDir, { recursive: true, force: true })
  }, 120_000)

  it("opens the breaker, fails fast, recovers through half-open, and the server never exits", async () => {
    const port = await freePort()
    const env: Record<string, string> = { ...(process.env as Record<string, string>) }
    delete env.DATABASE_URL
    Object.assign(env, {
      KYOZO_DATA_DIR: dataDir,
      KYOZO_PORT: String(port),
      KYOZO_RUNTIME: "docker",
      KYOZO_BREAKER_THRESHOLD: "3",
      KYOZO_BREAKER_RESET: "2 seconds",
      KYOZO_DOCKER_TIMEOUT: "2 seconds",
      KYOZO_METRICS_INTERVAL: "500 millis",
      KYOZO_HEALTH_INTERVAL: "1 second",
      KYOZO_CLEANUP_INTERVAL: "1 second",
      KYOZO_EDGE_PORT: "0"
    })
    let serverLog = ""
    server = spawn(process.execPath, ["--import", "tsx", "packages/server/src/main.ts"], { cwd: root, env })
    server.stdout?.on("data", (d) => (serverLog += d))
    server.stderr?.on("data", (d) => (serverLog += d))

    const ready = await waitFor("the server to be ready", 180_000, async () => {
      const body = await readyz(port)
      return body.status === "ready" ? body : undefined
    })
    expect(ready.runtime.mode).toBe("docker")
    expect(ready.runtime.breaker.state).toBe("closed")

    // The same outage seen in-process, with typed errors.
    const breaker = await Effect.runPromise(
      CircuitBreaker.make({
        name: "docker",
        failureThreshold: 3,
        resetAfter: "2 seconds",
        isFailure: CircuitBreaker.isRuntimeEngineFailure
      })
    )
    const docker = await Effect.runPromise(
      DockerRuntime.make({ dockerHost: process.env.DOCKER_HOST, timeout: "2 seconds" })
    )
    const guarded = CircuitBreaker.guardRuntime(breaker, docker)
    await Effect.runPromise(guarded.ping)

    // Stop dockerd.
    const pids = dockerdPids()
    expect(pids.length).toBeGreaterThan(0)
    const stoppedAt = Date.now()
    for (const pid of pids) process.kill(pid, "SIGTERM")
    await waitFor("dockerd to stop", 60_000, async () =>
      dockerdPids().length === 0 && !(await dockerReachable(500)) ? true : undefined
    )

    const failures: Array<string> = []
    for (let i = 0; i < 3; i++) {
      const exit = await Effect.runPromise(Effect.either(guarded.ping))
      failures.push(exit._tag === "Left" ? exit.left._tag : "ok")
    }
    expect(failures).toEqual(["DockerUnavailable", "DockerUnavailable", "DockerUnavailable"])
    const fastStart = performance.now()
    const fast = await Effect.runPromise(Effect.either(guarded.listContainers()))
    const fastMs = performance.now() - fastStart
    expect(fast._tag === "Left" && fast.left._tag).toBe("CircuitOpen")
    expect(fastMs).toBeLessThan(100)
    expect((await Effect.runPromise(breaker.status)).state).toBe("open")

    // The server's schedules trip its own breaker; it keeps answering.
    const opened = await waitFor("the server's breaker to open", 30_000, async () => {
      const body = await readyz(port)
      return body.runtime.breaker.state === "open" ? body : undefined
    })
    const timeToOpenMs = Date.now() - stoppedAt
    expect(opened.runtime.breaker.consecutiveFailures).toBeGreaterThanOrEqual(3)
    await waitFor("calls rejected fast while open", 15_000, async () => {
      const body = await readyz(port)
      return body.runtime.breaker.totals.rejections > 0 ? true : undefined
    })
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200)

    // Start dockerd again.
    const restartAt = Date.now()
    restartDocker()
    await sleep(2100) // past retryAt: the next call is a trial
    await Effect.runPromise(guarded.ping)
    const status = await Effect.runPromise(breaker.status)
    expect(status.state).toBe("closed")
    expect(status.lastChange).toMatchObject({ from: "half-open", to: "closed" })

    const closed = await waitFor("the server's breaker to close", 60_000, async () => {
      const body = await readyz(port)
      return body.runtime.breaker.state === "closed" ? body : undefined
    })
    const timeToCloseMs = Date.now() - restartAt
    expect(closed.runtime.breaker.lastChange).toMatchObject({ from: "half-open", to: "closed" })
    expect(server.exitCode).toBeNull()
    expect(server.signalCode).toBeNull()

    console.log(
      `docker outage figures: in-process fast-fail ${fastMs.toFixed(1)} ms; server breaker open ${timeToOpenMs} ms after dockerd stop; ` +
        `closed ${timeToCloseMs} ms after restart began (dockerd start included)`
    )
    if (server.exitCode !== null) console.log(serverLog)
  }, 420_000)
})

/**
 * A Kyozo process is SIGKILLed in the middle of a deploy (during the health gate); the next process
 * resumes the durable workflow from the database: the deploy finishes (or is compensated) and
 * exactly one container labelled for the service is left, serving behind the same URL.
 *
 * The processes are `test/support/deploy-runner.ts` (the deploy layers as a server builds them).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

import { makeTeamId } from "@kyozo/api/domain/Ids"
import { describe, expect, it } from "vitest"

import { makeTempDir } from "./support/database.js"
import {
  dockerSuite,
  NodeImage,
  removeTeamAfterAll,
  requireBaseImages,
  StaticImage
} from "./support/docker.js"
import { repoRoot } from "./support/server.js"

const docker = await dockerSuite("deploy-crash")
if (docker.available) await requireBaseImages(docker.client)

const dataDir = makeTempDir("kyozo-crash-data-")
const workspaces = makeTempDir("kyozo-crash-ws-")
const teamId = makeTeamId()

removeTeamAfterAll(docker, teamId)

interface Runner {
  readonly child: ChildProcess
  readonly lines: Array<string>
  readonly exited: Promise<number | null>
  /** Resolves with the first line starting with `prefix` (rejects when the process ends first). */
  readonly waitLine: (prefix: string, timeoutMs: number) => Promise<string>
}

const run = (...args: Array<string>): Runner => {
  const env: Record<string, string> = { ...(process.env as Record<string, string>) }
  delete env.DATABASE_URL
  env.KYOZO_BASE_IMAGES = JSON.stringify({ node: NodeImage, static: StaticImage })
  const child = spawn(process.execPath, ["--import", "tsx", "test/support/deploy-runner.ts", ...args], {
    cwd: repoRoot,
    env
  })
  const lines: Array<string> = []
  let partial = ""
  const waiters: Array<() => void> = []
  child.stdout!.on("data", (d: Buffer) => {
    partial += d.toString()
    const parts = partial.split("\n")
    partial = parts.pop() ?? ""
    lines.push(...parts)
    for (const w of waiters.splice(0)) w()
  })
  let stderr = ""
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const waitLine = (prefix: string, timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
      const deadline = setTimeout(
        () => reject(new Error(`no ${prefix} line within ${timeoutMs} ms:\n${lines.join("\n")}\n${stderr}`)),
        timeoutMs
      )
      const check = () => {
        const found = lines.find((l) => l.startsWith(prefix))
        if (found) {
          clearTimeout(deadline)
          resolve(found)
        } else waiters.push(check)
      }
      void exited.then(() =>
        setTimeout(() => {
          if (!lines.some((l) => l.startsWith(prefix))) {
            clearTimeout(deadline)
            reject(new Error(`process ended without ${prefix}:\n${lines.join("\n")}\n${stderr}`))
          }
        }, 50)
      )
      check()
    })
  return { child, lines, exited, waitLine }
}

const writeApp = (text: string, listenAfterMs: number) => {
  const dir = path.join(workspaces, "app")
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(
    path.join(dir, "package.json"),
    JSON.stringify({ name: "app", version: "1.0.0", main: "server.js", scripts: { start: "node server.js" } })
  )
  fs.writeFileSync(
    path.join(dir, "server.js"),
    [
      "const http = require('node:http')",
      `setTimeout(() => http.createServer((req, res) => res.end(${JSON.stringify(text)})).listen(Number(process.env.PORT) || 3000), ${listenAfterMs})`,
      ""
    ].join("\n")
  )
}

const payload = (line: string) => JSON.parse(line.slice(line.indexOf(" ") + 1))

describe.skipIf(!docker.available)("A deploy survives SIGKILL of its process", () => {
  it("resumes after a restart: the deploy finishes and exactly one container serves", async () => {
    // v1: a normal deploy, so an old version is serving when the crash comes.
    writeApp("v1", 0)
    const first = run("deploy", dataDir, workspaces, teamId, "app", "app")
    const done = payload(await first.waitLine("DONE", 120_000))
    expect(await first.exited).toBe(0)
    const t0 = Date.now()
    const url: string = done.deployment.url
    const serviceId: string = done.deployment.serviceId
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)

    // v2 listens only after 6 s: the process is killed while its health gate waits.
    writeApp("v2", 6000)
    const second = run("deploy", dataDir, workspaces, teamId, "app", "app")
    const started = await waitForStep(second, "deploy.started", 120_000)
    const deploymentId: string = payload(started).deploymentId
    second.child.kill("SIGKILL")
    await second.exited
    const t1 = Date.now()

    const resumed = run("resume", dataDir, workspaces, teamId, "app")
    const settled = payload(await resumed.waitLine("SETTLED", 120_000))
    expect(await resumed.exited).toBe(0)
    console.log(
      `[deploy-crash] killed ${t1 - t0} ms into the second deploy; settled ${Date.now() - t1} ms after: ${JSON.stringify(settled.deployments)} body=${settled.body}`
    )

    const crashed = settled.deployments.find((d: { id: string }) => d.id === deploymentId)
    expect(["succeeded", "compensated"]).toContain(crashed.status)
    expect(
      settled.deployments.every((d: { status: string }) => ["succeeded", "compensated"].includes(d.status))
    ).toBe(true)
    expect(settled.containers).toHaveLength(1)
    expect(settled.containers[0].state).toBe("running")
    expect(settled.service.url).toBe(url)
    expect(settled.body).toBe(crashed.status === "succeeded" ? "v2" : "v1")
    expect(settled.service.currentDeploymentId).toBe(settled.containers[0].deployment)

    // And the engine agrees: exactly one container labelled for the service.
    const owned = await docker.client.listContainers({
      all: true,
      filters: JSON.stringify({ label: [`kyozo.service=${serviceId}`] })
    })
    expect(owned).toHaveLength(1)
  }, 300_000)
})

const waitForStep = (runner: Runner, step: string, timeoutMs: number) =>
  runner.waitLine(`PROGRESS {"_tag":"Step"`, timeoutMs).then(async () => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = runner.lines.find((l) => l.startsWith("PROGRESS") && payload(l).step === step)
      if (found) return found
      if (Date.now() > deadline) throw new Error(`no step ${step}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  })

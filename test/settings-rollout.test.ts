/**
 * Settings take effect, on the REAL Docker engine through a real server process: a
 * PATCH of a deployed service's env rolls out behind the health gate (the URL serves the new
 * value, no request fails while a client polls); `kyozo env set|unset|ls` does the same through
 * the CLI, and `ls` never shows values; a restart-policy-only PATCH starts no deployment;
 * settings that fail the health gate leave the old container serving.
 */
import * as fs from "node:fs"
import * as path from "node:path"

import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { runKyozo, startCliServer, stopCliServer } from "./support/cli.js"
import { dockerSuite, requireBaseImages } from "./support/docker.js"
import { type ServerProcess, waitFor } from "./support/server.js"

const docker = await dockerSuite("settings-rollout")
if (docker.available) await requireBaseImages(docker.client)

let server: ServerProcess
let dataDir: string
let work: string
let token: string

/** A node app whose page shows $GREETING. */
const app = (dir: string) => {
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(
    path.join(dir, "package.json"),
    JSON.stringify({ name: "env-app", version: "1.0.0", main: "server.js" })
  )
  fs.writeFileSync(
    path.join(dir, "server.js"),
    `const http = require("node:http")
const port = Number(process.env.PORT) || 8090
if (process.env.CRASH === "1") process.exit(3)
http.createServer((req, res) => res.end("greeting=" + (process.env.GREETING ?? "none"))).listen(port)
`
  )
}

const rest = async (method: string, route: string, body?: unknown) => {
  const res = await fetch(`http://127.0.0.1:${server.port}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/vnd.api+json" })
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000)
  })
  const text = await res.text()
  return { status: res.status, body: text.length > 0 ? JSON.parse(text) : undefined }
}

/** Polls the URL until `until` resolves; every answer must be a 200 from the app. */
const poll = (url: string) => {
  const answers: Array<string> = []
  const failures: Array<string> = []
  let stopped = false
  let n = 0
  const loop = (async () => {
    while (!stopped) {
      // Both kinds of client a user has: a kept-alive connection (browsers, fetch) and a fresh one per
      // request. The edge's public listeners are not reloaded by a rollout, so neither may see a reset.
      const fresh = (n++ & 1) === 1
      const res = await fetch(url, {
        signal: AbortSignal.timeout(3000),
        ...(fresh ? { headers: { connection: "close" } } : {})
      }).catch((e: unknown) => e)
      if (res instanceof Response) {
        const text = await res.text()
        if (res.status === 200 && text.startsWith("greeting=")) answers.push(text)
        else failures.push(`${res.status} ${text}`)
      } else {
        // Say which failure it was (refused, reset, timed out), not only "fetch failed".
        const cause = (res as { cause?: { code?: string; message?: string } }).cause
        failures.push(`${String(res)}${cause ? ` (${cause.code ?? cause.message})` : ""}`)
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  })()
  return {
    answers,
    failures,
    stop: async () => {
      stopped = true
      await loop
    }
  }
}

const page = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(3000) })).text()

let teamId: string

beforeAll(async () => {
  if (!docker.available) return
  ;({ server, dataDir, work, token, teamId } = await startCliServer("settings"))
}, 90_000)

afterAll(async () => {
  if (docker.available) await stopCliServer(docker, { server, dataDir, work, teamId })
}, 60_000)

describe.skipIf(!docker.available)("settings take effect on the real Docker engine", () => {
  it("PATCH env rolls out behind the health gate; kyozo env set|unset|ls the same through the CLI", async () => {
    const dir = path.join(work, "env-app")
    app(dir)
    const deployed = await runKyozo(dataDir, ["deploy", dir, "--wait", "--json"], { timeout: 150_000 })
    expect(deployed.code, deployed.stderr).toBe(0)
    const listed = await rest("GET", "/v1/services")
    const svc = (listed.body.data as Array<any>).find((s) => s.attributes.name === "env-app")
    const url: string = svc.attributes.url
    expect(await page(url)).toBe("greeting=none")
    const before = svc.relationships.currentDeployment.data.id as string
    // hostUrl in the REST document: the same as the RPC view (`kyozo ps --json`) computes from the edge.
    const ps = JSON.parse((await runKyozo(dataDir, ["ps", "--json"])).stdout) as Array<{
      name: string
      hostUrl?: string | null
    }>
    const rpcHostUrl = ps.find((s) => s.name === "env-app")!.hostUrl
    expect(rpcHostUrl).toMatch(/^http:\/\/env-app\.[a-z0-9-]+\.localhost:\d+$/)
    expect(svc.attributes.hostUrl).toBe(rpcHostUrl)
    expect((await rest("GET", `/v1/services/${svc.id}`)).body.data.attributes.hostUrl).toBe(rpcHostUrl)

    // REST: PATCH env, polled all along the rollout.
    const polling = poll(url)
    const patched = await rest("PATCH", `/v1/services/${svc.id}`, {
      data: { type: "services", attributes: { env: { GREETING: "rest" } } }
    })
    expect(patched.status, JSON.stringify(patched.body)).toBe(200)
    expect(patched.body.data.attributes.envKeys).toEqual(["GREETING"])
    const rollout = patched.body.meta.rollout.deploymentId as string
    expect(rollout).toMatch(/^dep_/)
    expect(rollout).not.toBe(before)
    await waitFor("the new env served", 90_000, async () =>
      (await page(url)) === "greeting=rest" ? true : undefined
    )
    const done = await waitFor("the rollout's deployment finished", 30_000, async () => {
      const d = await rest("GET", `/v1/deployments/${rollout}`)
      return d.body.data.attributes.status === "succeeded" ? d : undefined
    })
    expect(done.body.data.attributes.status).toBe("succeeded")
    await new Promise((r) => setTimeout(r, 500))
    await polling.stop()
    expect(polling.failures).toEqual([])
    expect(polling.answers).toContain("greeting=none")
    expect(polling.answers.at(-1)).toBe("greeting=rest")
    const after = await rest("GET", `/v1/services/${svc.id}`)
    expect(after.body.data.relationships.currentDeployment.data.id).toBe(rollout)

    // A restart policy alone needs no new containers.
    const policyOnly = await rest("PATCH", `/v1/services/${svc.id}`, {
      data: { type: "services", attributes: { restartPolicy: "always" } }
    })
    expect(policyOnly.status).toBe(200)
    expect(policyOnly.body.meta?.rollout).toBeUndefined()

    // CLI: env set waits for the rollout; URL serves the new value; nothing failed meanwhile.
    const cliPolling = poll(url)
    const set = await runKyozo(
      dataDir,
      ["env", "set", "GREETING=cli", "SECRET_TOKEN=hunter2", "env-app", "--wait"],
      {
        timeout: 120_000
      }
    )
    expect(set.code, set.stderr).toBe(0)
    expect(set.stdout).toMatch(/rolled out \(dep_/)
    expect(await page(url)).toBe("greeting=cli")
    await cliPolling.stop()
    expect(cliPolling.failures).toEqual([])

    const ls = await runKyozo(dataDir, ["env", "ls", "env-app"])
    expect(ls.code, ls.stderr).toBe(0)
    expect(ls.stdout.trim().split("\n")).toEqual(["GREETING", "SECRET_TOKEN"])
    expect(ls.stdout).not.toContain("hunter2")

    const unset = await runKyozo(dataDir, ["env", "unset", "GREETING", "env-app", "--wait", "--json"], {
      timeout: 120_000
    })
    expect(unset.code, unset.stderr).toBe(0)
    expect(JSON.parse(unset.stdout).envKeys).toEqual(["SECRET_TOKEN"])
    expect(await page(url)).toBe("greeting=none")

    // Settings that fail the health gate (the app exits): the old container keeps serving, the
    // rollout's deployment says failed, the CLI says so and exits 1.
    const failPolling = poll(url)
    const crash = await runKyozo(dataDir, ["env", "set", "CRASH=1", "GREETING=never", "env-app", "--wait"], {
      timeout: 120_000
    })
    expect(crash.code).toBe(1)
    expect(crash.stderr).toMatch(/did not roll out \(dep_\w+\).*previous containers keep serving/s)
    const failedId = /\((dep_\w+)\)/.exec(crash.stderr)![1]!
    const failedDep = await rest("GET", `/v1/deployments/${failedId}`)
    expect(failedDep.body.data.attributes.status).toMatch(/failed|compensated/)
    expect(await page(url)).toBe("greeting=none")
    // The row keeps the settings that worked: new replicas and restarts do not get the broken ones.
    const lsAfter = await runKyozo(dataDir, ["env", "ls", "env-app"])
    expect(lsAfter.stdout.trim().split("\n")).toEqual(["SECRET_TOKEN"])
    await failPolling.stop()
    expect(failPolling.failures).toEqual([])
    expect(failPolling.answers.every((a) => a === "greeting=none")).toBe(true)

    // Usage errors are exit 2 and change nothing.
    const bad = await runKyozo(dataDir, ["env", "set", "1BAD=x", "env-app"])
    expect(bad.code).toBe(2)
  }, 360_000)

  it("kyozo deploy --replicas 2 runs two replicas behind the URL", async () => {
    const dir = path.join(work, "replica-app")
    app(dir)
    const deployed = await runKyozo(dataDir, ["deploy", dir, "--replicas", "2", "--wait", "--json"], {
      timeout: 150_000
    })
    expect(deployed.code, deployed.stderr).toBe(0)
    const last = JSON.parse(deployed.stdout.trim().split("\n").at(-1)!) as {
      service: { name: string; replicas: number; url: string }
    }
    expect(last.service.name).toBe("replica-app")
    expect(last.service.replicas).toBe(2)
    expect(await page(last.service.url)).toBe("greeting=none")
    const bad = await runKyozo(dataDir, ["deploy", dir, "--replicas", "0"], { timeout: 150_000 })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("must be 1 to 20")
  }, 240_000)
})

/**
 * The data plane as a user meets it, on the real engine and a real Caddy, through a real Kyozo
 * server process (KYOZO_EDGE=caddy) and its REST API:
 * - Kyozo SIGKILLed while a service serves: every request through the URL succeeds while Kyozo is
 *   down and while it starts again; after the restart on the same data dir, one container and the
 *   same URL.
 * - dockerd SIGKILLed under the serving service and started again (scripts/start-docker.sh): the
 *   URL answers again within 10 s of the engine's return with no redeploy, and the service's status
 *   is never `running` while the URL fails.
 * The server's Caddy is stopped at the end (`stopEdge`), whatever happened.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import * as CaddyAdmin from "@kyozo/core/edge/CaddyAdmin"
import { parseRoutes } from "@kyozo/core/edge/CaddyConfig"
import { Effect, Option } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { dockerdPids, dockerSuite, startDockerAsync } from "./support/docker.js"
import { caddySuite } from "./support/edge.js"
import { bootServer, engineEnv, hit, staticSiteDockerfile, workspaceFolder } from "./support/engine-server.js"
import { type Call, doc, expectStatus } from "./support/rest.js"
import { type ServerProcess, sleep, stopEdge, waitFor } from "./support/server.js"

const docker = await dockerSuite("data-plane")
const caddy = caddySuite("data-plane")

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-dp-"))
const env = engineEnv(dataDir, {
  KYOZO_EDGE: "caddy",
  KYOZO_HEALTH_INTERVAL: "1 second",
  KYOZO_BREAKER_THRESHOLD: "2",
  KYOZO_BREAKER_RESET: "1 second",
  KYOZO_DOCKER_TIMEOUT: "5 seconds"
})

let server: ServerProcess | undefined
let call: Call
let serviceId = ""
let url = ""

const boot = async () => {
  ;({ call, server } = await bootServer(env))
}

/** One request through the URL on a fresh connection (6 s: the engine may be restarting). */
const hitUrl = (target: string) => hit(target, 6000)

const serviceRow = async () => (await call("GET", `/v1/services/${serviceId}`)).body?.data?.attributes

const managedContainers = () =>
  docker.client.listContainers({ all: true, filters: { label: [`kyozo.service=${serviceId}`] } })

describe.skipIf(!docker.available || !caddy.available)("data plane on Docker and Caddy", () => {
  beforeAll(async () => {
    await boot()
    // Deploys by path read only the team's own folder of the workspaces root.
    const { teamId } = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
    workspaceFolder(dataDir, teamId, "dp-site", {
      "index.html": "data plane\n",
      Dockerfile: staticSiteDockerfile
    })
    const created = expectStatus(
      await call("POST", "/v1/services", doc("services", { source: { path: "dp-site" }, name: "dp-site" })),
      202,
      "deploy dp-site"
    )
    serviceId = created.body.data[0].relationships.service.data.id
    const deploymentId: string = created.body.data[0].id
    await waitFor("the deployment", 120_000, async () => {
      const r = await call("GET", `/v1/deployments/${deploymentId}`)
      return r.body?.data?.attributes?.finishedAt ? r.body.data.attributes : undefined
    })
    url = (await serviceRow()).url
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(await hitUrl(url)).toBe("data plane\n")
  }, 180_000)

  afterAll(async () => {
    await server?.stop()
    await stopEdge(dataDir)
    for (const c of await docker.client
      .listContainers({ all: true, filters: { label: [`kyozo.service=${serviceId}`] } })
      .catch(() => []))
      await docker.client
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {})
    // The team's network too: each run is a new team, and Docker's address pools are few.
    const creds = fs.existsSync(path.join(dataDir, "credentials.json"))
      ? JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
      : null
    if (creds?.teamId)
      for (const n of await docker.client
        .listNetworks({ filters: { label: [`kyozo.team=${creds.teamId}`] } })
        .catch(() => []))
        await docker.client
          .getNetwork(n.Id)
          .remove()
          .catch(() => {})
    fs.rmSync(dataDir, { recursive: true, force: true })
  }, 60_000)

  it("the edge is Caddy, and says so in /readyz", async () => {
    const ready = await server!.get("/readyz")
    expect(ready.body.edge).toMatchObject({ kind: "caddy", survivesRestart: true })
  })

  it("Kyozo SIGKILLed: every request through the URL succeeds while it is down; same URL after", async () => {
    const results: Array<string> = []
    let polling = true
    const poller = (async () => {
      while (polling) {
        results.push(await hitUrl(url))
        await sleep(50)
      }
    })()
    await sleep(500)
    server!.child.kill("SIGKILL")
    await server!.exited
    const down = results.length
    await sleep(3000)
    const whileDown = results.length - down
    await boot()
    await waitFor("the service row after restart", 30_000, async () =>
      (await serviceRow())?.url ? true : undefined
    )
    await sleep(2000)
    polling = false
    await poller
    const failed = results.filter((r) => r !== "data plane\n")
    console.info(
      `[data-plane] Kyozo SIGKILL: ${results.length} requests, ${whileDown} while Kyozo was down, ${failed.length} failed`
    )
    expect(whileDown).toBeGreaterThan(10)
    expect(failed).toEqual([])
    expect((await serviceRow()).url).toBe(url)
    const containers = await managedContainers()
    expect(containers.filter((c) => c.State === "running")).toHaveLength(1)
    expect(containers).toHaveLength(1)
  }, 120_000)

  it("dockerd SIGKILLed and started again: the URL answers within 10 s, never `running` while it fails", async () => {
    const pids = dockerdPids()
    expect(pids.length).toBeGreaterThan(0)
    // `start`: when the request and the status read were sent; `at`: when both had answered.
    const statuses: Array<{ start: number; at: number; url: string; status: string }> = []
    let watching = true
    const watcher = (async () => {
      while (watching) {
        const start = Date.now()
        const [body, row] = await Promise.all([hitUrl(url), serviceRow().catch(() => undefined)])
        statuses.push({ start, at: Date.now(), url: body, status: row?.status ?? "?" })
        await sleep(200)
      }
    })()
    // Diagnostics only: the status on its own, every 100 ms (a request the edge holds for its retry
    // window spaces the samples above by seconds), kept as its changes.
    const changes: Array<{ at: number; status: string }> = []
    const statusWatcher = (async () => {
      while (watching) {
        const status = (await serviceRow().catch(() => undefined))?.status ?? "?"
        if (changes.at(-1)?.status !== status) changes.push({ at: Date.now(), status })
        await sleep(100)
      }
    })()
    const killed = Date.now()
    let back = 0
    let answered = 0
    try {
      for (const pid of pids) process.kill(pid, "SIGKILL")
      await sleep(3000)
      // Not blocking: the record goes on while dockerd starts (and restores its containers).
      await startDockerAsync()
      back = Date.now()
      answered = await waitFor("the URL to answer again", 30_000, async () =>
        (await hitUrl(url)) === "data plane\n" ? Date.now() : undefined
      )
      // Let the health pass catch up, then look at the whole record.
      await waitFor("status running again", 30_000, async () =>
        (await serviceRow())?.status === "running" ? true : undefined
      )
      await sleep(1500)
    } finally {
      // The samplers stop whatever happened (a failed wait must not leave them polling).
      watching = false
      await watcher
      await statusWatcher
    }
    const recoverMs = answered - back
    const failing = statuses.filter((s) => s.url !== "data plane\n")
    // A status read in the same instant as a failed request may predate the failure by one health
    // interval (1 s here) plus a probe; beyond that, "running" while the URL fails is a lie.
    const lies = failing.filter(
      (s) =>
        s.status === "running" &&
        statuses.some((o) => o.url !== "data plane\n" && o.at <= s.at - 3000 && o.at >= s.at - 60_000) &&
        statuses.filter((o) => o.at > s.at - 3000 && o.at <= s.at).every((o) => o.url !== "data plane\n")
    )
    console.info(
      `[data-plane] dockerd SIGKILL: URL answered ${recoverMs} ms after the engine was back; ${failing.length} failed samples; statuses seen: ${[...new Set(statuses.map((s) => s.status))].join(", ")}; status changes (ms after the kill, dockerd back at ${back - killed}): ${changes.map((c) => `${c.at - killed} ${c.status}`).join(", ")}`
    )
    // On failure: every sample against the kill (ms), the health rows the server stored, its log.
    const timeline = async () => {
      const rel = (t: number) => String(t - killed).padStart(6)
      const health = await call("GET", `/v1/services/${serviceId}/health?page[size]=40`).catch(
        () => undefined
      )
      const rows: Array<any> = health?.body?.data ?? []
      return [
        `kill at 0, dockerd started at ${back - killed}, URL answered at ${answered - killed}`,
        ...statuses.map(
          (s) =>
            `${rel(s.start)}→${rel(s.at)}  ${s.status.padEnd(10)} ${s.url === "data plane\n" ? "ok" : s.url}${lies.includes(s) ? "   <- lie" : ""}`
        ),
        `status changes: ${changes.map((c) => `${c.at - killed} ${c.status}`).join(", ")}`,
        "health rows (newest first):",
        ...rows.map(
          (r) =>
            `${rel(new Date(r.attributes.checkedAt).getTime())}  ${r.attributes.status} ${r.attributes.detail}`
        ),
        "server log (health, recovery, engine, edge):",
        ...server!
          .log()
          .split("\n")
          .filter((l) => /health|recover|restart|circuit|engine|edge|reconcile/i.test(l))
          .slice(-60)
      ].join("\n")
    }
    // An outage the URL felt for longer than the detection bound must show as unhealthy; a brief
    // one (the containers often keep serving while dockerd is away) may pass unseen.
    let streak = 0
    let longest = 0
    for (let i = 1; i < statuses.length; i++) {
      const bothFailed = statuses[i]!.url !== "data plane\n" && statuses[i - 1]!.url !== "data plane\n"
      streak = bothFailed ? streak + (statuses[i]!.at - statuses[i - 1]!.at) : 0
      longest = Math.max(longest, streak)
    }
    const unseen = longest >= 3000 && !failing.some((s) => s.status === "unhealthy")
    if (recoverMs >= 10_000 || lies.length > 0 || unseen)
      console.info(`[data-plane] timeline (longest failing streak ${longest} ms):\n${await timeline()}`)
    expect(recoverMs).toBeLessThan(10_000)
    expect(lies).toEqual([])
    if (longest >= 3000) expect(failing.some((s) => s.status === "unhealthy")).toBe(true)
    expect((await serviceRow()).url).toBe(url)
    const containers = await managedContainers()
    expect(containers.filter((c) => c.State === "running")).toHaveLength(1)
  }, 180_000)

  const pollWhile = async (during: () => Promise<void>) => {
    const results: Array<string> = []
    let polling = true
    const poller = (async () => {
      while (polling) {
        results.push(await hitUrl(url))
        await sleep(20)
      }
    })()
    await sleep(300)
    await during()
    polling = false
    await poller
    return results
  }

  const runningReplicas = async () =>
    (await managedContainers()).filter(
      (c) => c.State === "running" && c.Labels["kyozo.deployment"] === current()
    )

  let currentDeployment = ""
  const current = () => currentDeployment

  /** The service at 3 running replicas (scaled here, so each test below also runs alone). */
  const threeReplicas = async () => {
    const row = expectStatus(
      await call("PATCH", `/v1/services/${serviceId}`, doc("services", { replicas: 3 })),
      200,
      "scale to 3"
    )
    expect(row.body.data.attributes.replicas).toBe(3)
    currentDeployment = row.body.data.relationships.currentDeployment.data.id
    await waitFor("3 running replicas", 30_000, async () =>
      (await runningReplicas()).length === 3 ? true : undefined
    )
  }

  it("3 replicas: one docker-killed while a client polls → zero failed, back to 3 by the next pass", async () => {
    await threeReplicas()
    const ready = await server!.get("/readyz")
    expect(ready.body.edge.kind).toBe("caddy")
    let victim = ""
    const results = await pollWhile(async () => {
      const replicas = await runningReplicas()
      victim =
        replicas.find((c) => !c.Names[0]!.endsWith(replicas[0]!.Names[0]!.slice(-3)))?.Id ?? replicas[1]!.Id
      await docker.client.getContainer(victim).kill()
      await waitFor("back to 3 replicas", 30_000, async () =>
        (await runningReplicas()).length === 3 ? true : undefined
      )
      await sleep(1000)
    })
    const failed = results.filter((r) => r !== "data plane\n")
    console.info(`[data-plane] replica killed: ${results.length} requests, ${failed.length} failed`)
    expect(results.length).toBeGreaterThan(20)
    expect(failed).toEqual([])
    expect((await runningReplicas()).length).toBe(3)
  }, 120_000)

  /** The upstream ports Caddy itself serves the service with now (its live config). */
  const caddyUpstreams = async (): Promise<Array<number>> => {
    const [config, back] = await Effect.runPromise(
      Effect.all([
        CaddyAdmin.currentConfig(CaddyAdmin.defaultAdmin(dataDir)),
        CaddyAdmin.currentConfig(CaddyAdmin.backAdmin(dataDir))
      ])
    )
    const route = parseRoutes(Option.getOrNull(config), Option.getOrUndefined(back)).find(
      (r) => r.serviceId === serviceId
    )
    return (route?.upstreams ?? []).map((u) => u.port).sort((a, b) => a - b)
  }

  it("a rolling redeploy of 3 replicas under polling: zero failed requests, one replica at a time", async () => {
    await threeReplicas()
    const before = (await runningReplicas()).map((c) => c.Id)
    expect(before).toHaveLength(3)
    const initial = await caddyUpstreams()
    expect(initial).toHaveLength(3)
    // Route snapshots straight from Caddy while the redeploy runs, and the containers the engine holds.
    const snapshots: Array<Array<number>> = [initial]
    const containerCounts: Array<{ old: number; all: number }> = []
    let watching = true
    const watcher = (async () => {
      while (watching) {
        // An empty read is the admin API between two loads (the route always has an upstream).
        const ports = await caddyUpstreams().catch(() => [])
        if (ports.length > 0 && ports.join() !== snapshots.at(-1)!.join()) snapshots.push(ports)
        await sleep(5)
      }
    })()
    const counter = (async () => {
      while (watching) {
        const all = await managedContainers().catch(() => undefined)
        if (all !== undefined)
          containerCounts.push({ old: all.filter((c) => before.includes(c.Id)).length, all: all.length })
        await sleep(50)
      }
    })()
    const results = await pollWhile(async () => {
      const started = expectStatus(
        await call("POST", `/v1/services/${serviceId}/deployments`),
        202,
        "redeploy"
      )
      const deploymentId: string = started.body.data[0].id
      const done = await waitFor("the redeploy", 120_000, async () => {
        const r = await call("GET", `/v1/deployments/${deploymentId}`)
        return r.body?.data?.attributes?.finishedAt ? r.body.data.attributes : undefined
      })
      expect(done.status).toBe("succeeded")
      currentDeployment = deploymentId
      await waitFor("old replicas retired", 60_000, async () => {
        const all = await managedContainers()
        return all.every((c) => c.Labels["kyozo.deployment"] === deploymentId) ? true : undefined
      })
    })
    const failed = results.filter((r) => r !== "data plane\n")
    watching = false
    await watcher
    await counter
    const final = await caddyUpstreams()
    if (final.join() !== snapshots.at(-1)!.join()) snapshots.push(final)
    console.info(
      `[data-plane] rolling redeploy of 3: ${results.length} requests, ${failed.length} failed; routes: ${snapshots.map((p) => `[${p.join(",")}]`).join(" → ")}`
    )
    expect(failed).toEqual([])
    // Traffic moved replica by replica: each change routes one new replica in or one old one out
    // (a change between two samples may show as both), never fewer than 3 serving, never the whole
    // set at once; it ends on 3 new replicas and none of the old.
    const old = new Set(initial)
    expect(final).toHaveLength(3)
    expect(final.some((p) => old.has(p))).toBe(false)
    for (let i = 1; i < snapshots.length; i++) {
      const prev = new Set(snapshots[i - 1])
      const next = new Set(snapshots[i])
      const added = [...next].filter((p) => !prev.has(p))
      const removed = [...prev].filter((p) => !next.has(p))
      expect(added.length).toBeLessThanOrEqual(1)
      expect(removed.length).toBeLessThanOrEqual(1)
      expect(next.size).toBeGreaterThanOrEqual(3)
      expect(next.size).toBeLessThanOrEqual(4)
    }
    expect(snapshots.length).toBeGreaterThanOrEqual(4)
    // Old replicas leave one by one as their replacements come in (not all at the end): never more
    // than one container beyond the count, and old ones are gone while the rollout still runs.
    const peak = Math.max(...containerCounts.map((c) => c.all))
    console.info(
      `[data-plane] rolling redeploy of 3: at most ${peak} containers; old/all seen: ${[...new Set(containerCounts.map((c) => `${c.old}/${c.all}`))].join(" ")}`
    )
    expect(peak).toBeLessThanOrEqual(4)
    expect(containerCounts.some((c) => c.old === 1 && c.all >= 3)).toBe(true)
    const after = await runningReplicas()
    expect(after).toHaveLength(3)
    expect(after.some((c) => before.includes(c.Id))).toBe(false)
    expect((await serviceRow()).url).toBe(url)
  }, 180_000)
})

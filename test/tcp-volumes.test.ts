/**
 * TCP services and their data, as a user meets them on the real engine with Caddy as the edge
 * (Debian's Caddy 2.6 has no layer4 module, so it cannot carry raw TCP):
 * - a compose service on a TCP port (6379, the redis port, speaking a line protocol) answers on its
 *   stable URL port, which Docker itself publishes on 127.0.0.1 for the container;
 * - it keeps answering while Kyozo is SIGKILLed;
 * - what it wrote to its compose named volume survives a forced redeploy (a new container, same
 *   URL port);
 * - deleting the service keeps the volume (and says so); `?volumes=true` removes it.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { dockerSuite, NodeImage, requireBaseImages } from "./support/docker.js"
import { caddySuite } from "./support/edge.js"
import { bootServer, engineEnv } from "./support/engine-server.js"
import { type Call, doc, expectStatus } from "./support/rest.js"
import { type ServerProcess, stopEdge, waitFor } from "./support/server.js"
import { openSse } from "./support/sse.js"

const docker = await dockerSuite("tcp-volumes")
const caddy = caddySuite("tcp-volumes")
if (docker.available) await requireBaseImages(docker.client)

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-tcpvol-"))
const env = engineEnv(dataDir, { KYOZO_EDGE: "caddy", KYOZO_HEALTH_INTERVAL: "1 second" })

let server: ServerProcess | undefined
let call: Call
let teamId = ""

const boot = async () => {
  ;({ call, server, teamId } = await bootServer(env))
}

/** A tiny key-value server on 6379: `SET k v` → OK, `GET k` → v, kept in /data/kv.json. */
const kvServer = `const net = require("node:net")
const fs = require("node:fs")
const file = "/data/kv.json"
const load = () => { try { return JSON.parse(fs.readFileSync(file, "utf8")) } catch { return {} } }
net.createServer((socket) => {
  let buffer = ""
  socket.on("data", (chunk) => {
    buffer += chunk
    let i
    while ((i = buffer.indexOf("\\n")) >= 0) {
      const [cmd, key, value] = buffer.slice(0, i).trim().split(" ")
      buffer = buffer.slice(i + 1)
      const db = load()
      if (cmd === "SET") { db[key] = value; fs.writeFileSync(file, JSON.stringify(db)); socket.write("OK\\n") }
      else if (cmd === "GET") socket.write((db[key] ?? "(nil)") + " from " + process.env.HOSTNAME + "\\n")
      else socket.write("ERR\\n")
    }
  })
}).listen(6379)
`

/** One command over a fresh TCP connection to 127.0.0.1:port: the answer line, or an error string. */
const tcp = (port: number, line: string): Promise<string> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    let data = ""
    const done = (s: string) => {
      socket.destroy()
      resolve(s)
    }
    socket.setTimeout(3000, () => done("ERROR timeout"))
    socket.on("connect", () => socket.write(`${line}\n`))
    socket.on("data", (d) => {
      data += d
      if (data.includes("\n")) done(data.trim())
    })
    socket.on("error", (e) => done(`ERROR ${e.message}`))
    socket.on("end", () => done(data.trim() || "ERROR closed"))
  })

const deployAndWait = async (force: boolean) => {
  const created = expectStatus(
    await call(
      "POST",
      "/v1/services",
      doc("services", { source: { path: "kvstack" }, name: "kv", ...(force ? { force: true } : {}) })
    ),
    202,
    "deploy kv"
  )
  const deploymentId: string = created.body.data[0].id
  const finished = await waitFor("the deployment", 120_000, async () => {
    const r = await call("GET", `/v1/deployments/${deploymentId}`)
    return r.body?.data?.attributes?.finishedAt ? r.body.data.attributes : undefined
  })
  expect(finished.status).toBe("succeeded")
  return created.body.data[0].relationships.service.data.id as string
}

const volumeName = () => `kyozo-${teamId}-kv-kvdata`
const volumeExists = () =>
  docker.client
    .getVolume(volumeName())
    .inspect()
    .then(
      () => true,
      () => false
    )

describe.skipIf(!docker.available || !caddy.available)("TCP services and named volumes", () => {
  beforeAll(async () => {
    await boot()
    const stack = path.join(dataDir, "workspaces", teamId, "kvstack")
    fs.mkdirSync(path.join(stack, "kv"), { recursive: true })
    fs.writeFileSync(
      path.join(stack, "compose.yaml"),
      [
        "services:",
        "  kv:",
        "    build: ./kv",
        '    ports: ["6379"]',
        "    volumes:",
        "      - kvdata:/data",
        "volumes:",
        "  kvdata: {}",
        ""
      ].join("\n")
    )
    fs.writeFileSync(path.join(stack, "kv", "server.js"), kvServer)
    fs.writeFileSync(
      path.join(stack, "kv", "Dockerfile"),
      [`FROM ${NodeImage}`, "COPY server.js /app/server.js", 'CMD ["node", "/app/server.js"]', ""].join("\n")
    )
  }, 120_000)

  afterAll(async () => {
    await server?.stop()
    await stopEdge(dataDir)
    const filters = JSON.stringify({ label: [`kyozo.team=${teamId}`] })
    for (const c of await docker.client.listContainers({ all: true, filters }).catch(() => []))
      await docker.client
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {})
    for (const v of (await docker.client.listVolumes({ filters }).catch(() => ({ Volumes: [] }))).Volumes ??
      [])
      await docker.client
        .getVolume(v.Name)
        .remove()
        .catch(() => {})
    for (const i of await docker.client.listImages({ filters }).catch(() => []))
      await docker.client
        .getImage(i.Id)
        .remove({ force: true })
        .catch(() => {})
    await docker.client
      .getNetwork(`kyozo-${teamId}`)
      .remove()
      .catch(() => {})
    fs.rmSync(dataDir, { recursive: true, force: true })
  }, 60_000)

  it("a TCP compose service answers on its URL port, through Kyozo's death, and keeps its volume's data across a redeploy", async () => {
    const serviceId = await deployAndWait(false)
    const row = (await call("GET", `/v1/services/${serviceId}`)).body.data.attributes
    const port = Number(new URL(row.url).port)
    expect(port).toBeGreaterThan(0)

    // Docker publishes the stable port for the container itself (Caddy cannot carry raw TCP).
    const first = (
      await docker.client.listContainers({ filters: { label: [`kyozo.service=${serviceId}`] } })
    )[0]!
    expect(first.Ports.some((p) => p.PublicPort === port && p.IP === "127.0.0.1")).toBe(true)
    expect(first.Mounts.some((m) => m.Name === volumeName() && m.Destination === "/data")).toBe(true)

    expect(await tcp(port, "SET answer 42")).toBe("OK")
    expect(await tcp(port, "GET answer")).toMatch(/^42 from /)

    // Kyozo SIGKILLed: the URL port still answers (no Kyozo process in the path).
    server!.child.kill("SIGKILL")
    await server!.exited
    const whileDown: Array<string> = []
    for (let i = 0; i < 10; i++) whileDown.push(await tcp(port, "GET answer"))
    expect(whileDown.filter((a) => !a.startsWith("42 from "))).toEqual([])
    await boot()

    // A forced redeploy: a new container on the same URL port, the volume's data still there.
    await deployAndWait(true)
    const after = (await call("GET", `/v1/services/${serviceId}`)).body.data.attributes
    expect(after.url).toBe(row.url)
    const running = await docker.client.listContainers({ filters: { label: [`kyozo.service=${serviceId}`] } })
    expect(running).toHaveLength(1)
    expect(running[0]!.Id).not.toBe(first.Id)
    const answer = await waitFor("the new container to answer", 20_000, async () => {
      const a = await tcp(port, "GET answer")
      return a.startsWith("42 from ") ? a : undefined
    })
    // Answered by the new container (its host name is its id's prefix), from the old one's data.
    expect(answer).toBe(`42 from ${running[0]!.Id.slice(0, 12)}`)

    // Deleting keeps the data volume, and the event says so.
    expectStatus(await call("DELETE", `/v1/services/${serviceId}`), 204, "delete")
    expect(await volumeExists()).toBe(true)
    const creds = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
    const sse = await openSse(`http://127.0.0.1:${server!.port}/v1/events?after=0`, {
      authorization: `Bearer ${creds.token}`
    })
    try {
      await sse.waitUntil("the service.removed event", () => sse.raw().includes("service.removed"), 10_000)
      expect(sse.raw()).toContain(`kept its volumes ${volumeName()} (remove them with kyozo rm --volumes)`)
    } finally {
      sse.close()
    }
  }, 300_000)

  it("deployed again under its name, the service finds its data; DELETE ?volumes=true removes the volume", async () => {
    const serviceId = await deployAndWait(false)
    const port = Number(
      new URL((await call("GET", `/v1/services/${serviceId}`)).body.data.attributes.url).port
    )
    const answer = await waitFor("the service to answer", 20_000, async () => {
      const a = await tcp(port, "GET answer")
      return a.startsWith("42 from ") ? a : undefined
    })
    expect(answer).toMatch(/^42 from /)

    // Its URL port taken by another program while it is down: a clear event, not a silent dead URL;
    // once the port is free again it serves again, with its data.
    const [container] = await docker.client.listContainers({
      filters: { label: [`kyozo.service=${serviceId}`] }
    })
    await docker.client.getContainer(container!.Id).stop({ t: 0 })
    const squatter = net.createServer((s) => s.destroy())
    await new Promise<void>((resolve, reject) => {
      squatter.once("error", reject)
      squatter.listen(port, "127.0.0.1", () => resolve())
    })
    try {
      await waitFor("status failed", 30_000, async () =>
        (await call("GET", `/v1/services/${serviceId}`)).body.data.attributes.status === "failed"
          ? true
          : undefined
      )
      const creds = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
      const sse = await openSse(`http://127.0.0.1:${server!.port}/v1/events?after=0`, {
        authorization: `Bearer ${creds.token}`
      })
      try {
        await sse.waitUntil("service.port-taken", () => sse.raw().includes("service.port-taken"), 10_000)
        expect(sse.raw()).toContain(`its URL port 127.0.0.1:${port} is taken by another program`)
      } finally {
        sse.close()
      }
    } finally {
      await new Promise((r) => squatter.close(r))
    }
    await waitFor("the service answering once the port is free", 30_000, async () =>
      (await tcp(port, "GET answer")).startsWith("42 from ") ? true : undefined
    )

    expectStatus(await call("DELETE", `/v1/services/${serviceId}?volumes=true`), 204, "delete with volumes")
    expect(await volumeExists()).toBe(false)
  }, 240_000)
})

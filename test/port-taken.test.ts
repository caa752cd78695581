/**
 * A pinned port taken by something else while the container was down (issue 10), on the real
 * engine with Caddy: the container is stopped behind Kyozo's back and another program binds its
 * 127.0.0.1 port; the recovery pass cannot start it there, so it re-creates it on a free port, the
 * edge follows, the URL answers again, and a `service.port-moved` event says what happened.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

import { afterAll, beforeAll, describe, expect, it } from "vitest"

import {
  dockerSuite,
  NodeImage,
  removeTeamObjects,
  requireBaseImages,
  StaticImage
} from "./support/docker.js"
import { caddySuite } from "./support/edge.js"
import { type Call, caller, doc, expectStatus } from "./support/rest.js"
import { type ServerProcess, sleep, startServer, stopEdge, waitFor } from "./support/server.js"
import { openSse } from "./support/sse.js"

const docker = await dockerSuite("port-taken")
const caddy = caddySuite("port-taken")
if (docker.available) await requireBaseImages(docker.client)

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-pt-"))
let server: ServerProcess | undefined
let call: Call
let creds: { token: string; teamId: string }
let squatter: net.Server | undefined

const hit = async (url: string): Promise<string> => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) })
    const text = await res.text()
    return res.status === 200 ? text : `HTTP ${res.status}`
  } catch (e) {
    return `ERROR ${(e as Error).message}`
  }
}

describe.skipIf(!docker.available || !caddy.available)("a pinned port taken on restart", () => {
  beforeAll(async () => {
    server = await startServer({
      KYOZO_RUNTIME: "docker",
      KYOZO_EDGE: "caddy",
      KYOZO_DATA_DIR: dataDir,
      KYOZO_RATE_LIMIT: "off",
      KYOZO_HEALTH_INTERVAL: "1 second",
      KYOZO_BASE_IMAGES: JSON.stringify({ node: NodeImage, static: StaticImage })
    })
    await waitFor("server /healthz", 60_000, async () =>
      fs.existsSync(path.join(dataDir, "credentials.json")) && (await server!.get("/healthz")).status === 200
        ? true
        : undefined
    ).catch((e) => {
      throw new Error(`${e}\n${server!.log()}`)
    })
    creds = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
    call = caller(server.port, creds.token)
  }, 120_000)

  afterAll(async () => {
    await Promise.race([new Promise((r) => (squatter ? squatter.close(r) : r(undefined))), sleep(2000)])
    await server?.stop()
    await stopEdge(dataDir)
    if (creds?.teamId) await removeTeamObjects(docker.client, creds.teamId)
    fs.rmSync(dataDir, { recursive: true, force: true })
  }, 60_000)

  it("re-created on a free port: the URL answers again, and the event says which ports", async () => {
    const site = path.join(dataDir, "workspaces", creds.teamId, "pt-site")
    fs.mkdirSync(site, { recursive: true })
    fs.writeFileSync(path.join(site, "index.html"), "still here\n")
    fs.writeFileSync(
      path.join(site, "Dockerfile"),
      [
        `FROM ${StaticImage}`,
        "COPY index.html /site/index.html",
        "EXPOSE 8080",
        `CMD ["httpd", "-f", "-p", "8080", "-h", "/site"]`,
        ""
      ].join("\n")
    )
    const created = expectStatus(
      await call("POST", "/v1/services", doc("services", { source: { path: "pt-site" }, name: "pt-site" })),
      202,
      "deploy"
    )
    const serviceId: string = created.body.data[0].relationships.service.data.id
    await waitFor("the deployment", 120_000, async () => {
      const r = await call("GET", `/v1/deployments/${created.body.data[0].id}`)
      return r.body?.data?.attributes?.finishedAt ? true : undefined
    })
    const url: string = (await call("GET", `/v1/services/${serviceId}`)).body.data.attributes.url
    expect(await hit(url)).toBe("still here\n")
    const [container] = await docker.client.listContainers({
      filters: { label: [`kyozo.service=${serviceId}`] }
    })
    const pinned = container!.Ports.find((p) => p.PrivatePort === 8080)!.PublicPort

    // Behind Kyozo's back: stopped, and its port taken by another program at once.
    await docker.client.getContainer(container!.Id).stop({ t: 0 })
    squatter = net.createServer((s) => s.destroy())
    await new Promise<void>((resolve, reject) => {
      squatter!.once("error", reject)
      squatter!.listen(pinned, "127.0.0.1", () => resolve())
    })

    await waitFor("the URL answering again", 60_000, async () =>
      (await hit(url)) === "still here\n" ? true : undefined
    )
    const [now] = await docker.client.listContainers({ filters: { label: [`kyozo.service=${serviceId}`] } })
    const moved = now!.Ports.find((p) => p.PrivatePort === 8080)!.PublicPort
    expect(moved).not.toBe(pinned)
    expect(now!.Names[0]).toBe(container!.Names[0])
    expect((await call("GET", `/v1/services/${serviceId}`)).body.data.attributes.url).toBe(url)

    const sse = await openSse(`http://127.0.0.1:${server!.port}/v1/events?after=0`, {
      authorization: `Bearer ${creds.token}`
    })
    try {
      await sse.waitUntil(
        "the service.port-moved event",
        () => sse.raw().includes("service.port-moved"),
        10_000
      )
      expect(sse.raw()).toContain(
        `127.0.0.1:${pinned} was taken by another program: re-created on 127.0.0.1:${moved}`
      )
    } finally {
      sse.close()
    }
  }, 240_000)
})

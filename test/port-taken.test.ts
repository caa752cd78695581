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

import { dockerSuite, requireBaseImages } from "./support/docker.js"
import { caddySuite } from "./support/edge.js"
import {
  type BootedServer,
  bootServer,
  deployFolder,
  engineEnv,
  hit,
  staticSiteDockerfile,
  tearDown,
  workspaceFolder
} from "./support/engine-server.js"
import { sleep, waitFor } from "./support/server.js"
import { openSse } from "./support/sse.js"

const docker = await dockerSuite("port-taken")
const caddy = caddySuite("port-taken")
if (docker.available) await requireBaseImages(docker.client)

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-pt-"))
let booted: BootedServer | undefined
let squatter: net.Server | undefined

describe.skipIf(!docker.available || !caddy.available)("a pinned port taken on restart", () => {
  beforeAll(async () => {
    booted = await bootServer(engineEnv(dataDir, { KYOZO_EDGE: "caddy", KYOZO_HEALTH_INTERVAL: "1 second" }))
  }, 120_000)

  afterAll(async () => {
    await Promise.race([new Promise((r) => (squatter ? squatter.close(r) : r(undefined))), sleep(2000)])
    await tearDown(docker, dataDir, booted)
  }, 60_000)

  it("re-created on a free port: the URL answers again, and the event says which ports", async () => {
    const { call, server, teamId, token } = booted!
    workspaceFolder(dataDir, teamId, "pt-site", {
      "index.html": "still here\n",
      Dockerfile: staticSiteDockerfile
    })
    const { serviceId } = await deployFolder(call, "pt-site", "pt-site")
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

    const sse = await openSse(`http://127.0.0.1:${server.port}/v1/events?after=0`, {
      authorization: `Bearer ${token}`
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

/**
 * Every replica is probed, and one that fails gets no traffic (issue 10), on the real engine with
 * Caddy as the edge: of 2 replicas, one starts answering 500 while its container keeps running
 * (Docker and Caddy's passive checks both think it fine); within a route sync the URL answers only
 * from the healthy one, and once the sick one recovers it takes traffic again.
 */
import * as fs from "node:fs"
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
  nodeServerDockerfile,
  tearDown,
  workspaceFolder
} from "./support/engine-server.js"
import { doc, expectStatus } from "./support/rest.js"
import { waitFor } from "./support/server.js"

const docker = await dockerSuite("replica-health")
const caddy = caddySuite("replica-health")
if (docker.available) await requireBaseImages(docker.client)

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-rh-"))
let booted: BootedServer | undefined

const app = `const http = require("node:http")
const fs = require("node:fs")
http.createServer((req, res) => {
  if (fs.existsSync("/tmp/sick")) { res.statusCode = 500; return res.end("sick") }
  res.end("ok " + process.env.HOSTNAME)
}).listen(Number(process.env.PORT) || 8080)
`

const answers = async (url: string, n: number) => {
  const out: Array<string> = []
  for (let i = 0; i < n; i++) out.push(await hit(url))
  return out
}

const exec = async (containerId: string, code: string) => {
  const run = await docker.client.getContainer(containerId).exec({ Cmd: ["node", "-e", code] })
  const stream = await run.start({})
  await new Promise((resolve) => {
    stream.on("end", resolve)
    stream.on("close", resolve)
    stream.resume()
  })
}

describe.skipIf(!docker.available || !caddy.available)("replica probes on the real engine and Caddy", () => {
  beforeAll(async () => {
    booted = await bootServer(engineEnv(dataDir, { KYOZO_EDGE: "caddy" }))
  }, 120_000)

  afterAll(() => tearDown(docker, dataDir, booted), 60_000)

  it("a replica answering 500 gets no traffic while the other answers; it gets traffic again once well", async () => {
    const { call, teamId } = booted!
    workspaceFolder(dataDir, teamId, "sickly", { "server.js": app, Dockerfile: nodeServerDockerfile })
    const { serviceId } = await deployFolder(call, "sickly", "sickly")
    expectStatus(
      await call("PATCH", `/v1/services/${serviceId}`, doc("services", { replicas: 2 })),
      200,
      "scale to 2"
    )
    const url: string = (await call("GET", `/v1/services/${serviceId}`)).body.data.attributes.url
    const containers = await waitFor("2 running replicas", 60_000, async () => {
      const list = await docker.client.listContainers({ filters: { label: [`kyozo.service=${serviceId}`] } })
      return list.length === 2 ? list : undefined
    })
    // Both take traffic.
    await waitFor("both replicas answering through the URL", 30_000, async () =>
      new Set((await answers(url, 10)).filter((a) => a.startsWith("ok "))).size === 2 ? true : undefined
    )

    const sick = containers[0]!
    const well = containers[1]!
    await exec(sick.Id, "require('fs').writeFileSync('/tmp/sick', '1')")
    // Within a route sync (5 s) the sick one is out of the upstreams.
    await waitFor("only the healthy replica answering", 20_000, async () =>
      (await answers(url, 6)).every((a) => a === `ok ${well.Id.slice(0, 12)}`) ? true : undefined
    )
    const steady = await answers(url, 30)
    console.info(
      `[replica-health] one replica sick: ${steady.filter((a) => a !== `ok ${well.Id.slice(0, 12)}`).length} of 30 not from the healthy one`
    )
    expect(steady.every((a) => a === `ok ${well.Id.slice(0, 12)}`)).toBe(true)

    await exec(sick.Id, "require('fs').unlinkSync('/tmp/sick')")
    await waitFor("the recovered replica answering again", 20_000, async () =>
      (await answers(url, 10)).includes(`ok ${sick.Id.slice(0, 12)}`) ? true : undefined
    )
  }, 300_000)
})

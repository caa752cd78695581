/**
 * A Dockerfile's `VOLUME /data`, as a user meets it on the real engine: the path is a named,
 * labelled Kyozo volume (never an anonymous one, which a redeploy loses and which is left behind),
 * so what the service wrote there survives a forced redeploy and is shared by its replicas;
 * `DELETE ?volumes=true` removes it.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { dockerSuite, removeTeamVolumes, requireBaseImages, volumeExists } from "./support/docker.js"
import {
  bootCounterFiles,
  type BootedServer,
  bootServer,
  deployFolder,
  engineEnv,
  hit,
  tearDown,
  workspaceFolder
} from "./support/engine-server.js"
import { doc, expectStatus } from "./support/rest.js"
import { waitFor } from "./support/server.js"

const docker = await dockerSuite("image-volumes")
if (docker.available) await requireBaseImages(docker.client)

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-imgvol-"))
let booted: BootedServer | undefined

const deploy = async (force: boolean) => {
  const deployed = await deployFolder(booted!.call, "volapp", "vol", 120_000, force ? { force: true } : {})
  expect(deployed.attributes.status, deployed.attributes.error ?? "").toBe("succeeded")
  return deployed.serviceId
}

const containersOf = (serviceId: string) =>
  docker.client.listContainers({ filters: { label: [`kyozo.service=${serviceId}`] } })

describe.skipIf(!docker.available)("an image's VOLUME keeps its data", () => {
  beforeAll(async () => {
    booted = await bootServer(engineEnv(dataDir, { KYOZO_EDGE: "inprocess" }))
    workspaceFolder(dataDir, booted.teamId, "volapp", bootCounterFiles)
  }, 120_000)

  afterAll(async () => {
    const teamId = booted?.teamId
    await tearDown(docker, dataDir, booted)
    if (teamId !== undefined) await removeTeamVolumes(docker.client, teamId)
  }, 60_000)

  it("a redeploy and a second replica see what the first container wrote; no anonymous volume", async () => {
    const serviceId = await deploy(false)
    const volume = `kyozo-${booted!.teamId}-vol-image-data`
    const url: string = (await booted!.call("GET", `/v1/services/${serviceId}`)).body.data.attributes.url
    const [first] = await containersOf(serviceId)
    // Every mount is the named Kyozo volume: the engine made no anonymous one for /data.
    expect(first!.Mounts.map((m) => [m.Type, m.Name, m.Destination])).toEqual([["volume", volume, "/data"]])
    const labels = (await docker.client.getVolume(volume).inspect()).Labels
    expect(labels["kyozo.service"]).toBe(serviceId)
    expect(labels["kyozo.volume"]).toBe("image-data")
    const once = await waitFor("the service to answer", 30_000, async () => {
      const body = await hit(url)
      return body.includes(first!.Id.slice(0, 12)) ? body : undefined
    })
    expect(once.trim().split("\n")).toHaveLength(1)

    // A forced redeploy: a new container, the first one's write still there.
    await deploy(true)
    const [second] = await containersOf(serviceId)
    expect(second!.Id).not.toBe(first!.Id)
    expect(second!.Mounts.map((m) => [m.Type, m.Name, m.Destination])).toEqual([["volume", volume, "/data"]])
    const twice = await waitFor("the new container to answer", 30_000, async () => {
      const body = await hit(url)
      return body.includes(second!.Id.slice(0, 12)) ? body : undefined
    })
    expect(twice.trim().split("\n")).toEqual([first!.Id.slice(0, 12), second!.Id.slice(0, 12)])

    // Scaled to 2: the new replica mounts the same volume.
    expectStatus(
      await booted!.call("PATCH", `/v1/services/${serviceId}`, doc("services", { replicas: 2 })),
      200,
      "scale to 2"
    )
    const both = await waitFor("2 running replicas", 60_000, async () => {
      const list = await containersOf(serviceId)
      return list.length === 2 ? list : undefined
    })
    for (const c of both) expect(c.Mounts.map((m) => m.Name)).toEqual([volume])

    expectStatus(await booted!.call("DELETE", `/v1/services/${serviceId}?volumes=true`), 204, "delete")
    await waitFor("the volume removed", 30_000, async () =>
      (await volumeExists(docker.client, volume)) ? undefined : true
    )
  }, 300_000)
})

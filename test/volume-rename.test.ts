/**
 * A renamed service keeps its data, on the real engine (PostgreSQL, so the test renames the row
 * while the server runs): its volume belongs to it by id, so a redeploy under the new name mounts
 * the same volume, and `DELETE ?volumes=true` under the new name removes it.
 */
import { ServiceId, type TeamId } from "@kyozo/api/domain/Ids"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import {
  dockerSuite,
  NodeImage,
  removeTeamObjects,
  removeTeamVolumes,
  requireBaseImages,
  StaticImage,
  volumeExists
} from "./support/docker.js"
import { bootCounterFiles, deployFolder, hit, workspaceFolder } from "./support/engine-server.js"
import { type Call, caller, expectStatus } from "./support/rest.js"
import { waitFor } from "./support/server.js"
import { startTenantServer, type TenantServer } from "./support/tenants.js"

const docker = await dockerSuite("volume-rename")
if (docker.available) await requireBaseImages(docker.client)

let ts: TenantServer | undefined
let call: Call

const deploy = async (name: string, force: boolean) => {
  const deployed = await deployFolder(call, "keeper", name, 120_000, force ? { force: true } : {})
  expect(deployed.attributes.status, deployed.attributes.error ?? "").toBe("succeeded")
  return deployed.serviceId
}

describe.skipIf(!docker.available)("a renamed service keeps its volume", () => {
  beforeAll(async () => {
    ts = await startTenantServer({
      KYOZO_RUNTIME: "docker",
      KYOZO_EDGE: "inprocess",
      KYOZO_RATE_LIMIT: "off",
      KYOZO_BASE_IMAGES: JSON.stringify({ node: NodeImage, static: StaticImage })
    })
    call = caller(ts.server.port, ts.owner.token)
    workspaceFolder(ts.dataDir, ts.owner.teamId, "keeper", bootCounterFiles)
  }, 120_000)

  afterAll(async () => {
    const teamId = ts?.owner.teamId
    await ts?.close()
    if (teamId === undefined) return
    await removeTeamObjects(docker.client, teamId)
    await removeTeamVolumes(docker.client, teamId)
  }, 60_000)

  it("renamed, then redeployed under the new name: the same volume, the old data", async () => {
    const teamId = ts!.owner.teamId
    const serviceId = await deploy("keeper", false)
    const volume = `kyozo-${teamId}-keeper-image-data`
    const url: string = (await call("GET", `/v1/services/${serviceId}`)).body.data.attributes.url
    const [first] = await docker.client.listContainers({ filters: { label: [`kyozo.service=${serviceId}`] } })
    await waitFor("the first container to answer", 30_000, async () =>
      (await hit(url)).includes(first!.Id.slice(0, 12)) ? true : undefined
    )

    // Renamed (the row's name, as a rename does), then deployed under its new name.
    await ts!.run(
      Effect.flatMap(ServiceRepo, (repo) =>
        repo.update(teamId as TeamId, ServiceId.make(serviceId), { name: "kept" })
      )
    )
    expect(await deploy("kept", true)).toBe(serviceId)
    const [second] = await docker.client.listContainers({
      filters: { label: [`kyozo.service=${serviceId}`] }
    })
    expect(second!.Id).not.toBe(first!.Id)
    expect(second!.Mounts.map((m) => [m.Name, m.Destination])).toEqual([[volume, "/data"]])
    const body = await waitFor("the new container to answer", 30_000, async () => {
      const b = await hit(url)
      return b.includes(second!.Id.slice(0, 12)) ? b : undefined
    })
    expect(body.trim().split("\n")).toEqual([first!.Id.slice(0, 12), second!.Id.slice(0, 12)])
    // No volume was made for the new name.
    const team = await docker.client.listVolumes({
      filters: JSON.stringify({ label: [`kyozo.team=${teamId}`] })
    })
    expect((team.Volumes ?? []).map((v) => v.Name)).toEqual([volume])

    expectStatus(await call("DELETE", `/v1/services/${serviceId}?volumes=true`), 204, "delete with volumes")
    await waitFor("the volume removed", 30_000, async () =>
      (await volumeExists(docker.client, volume)) ? undefined : true
    )
  }, 300_000)
})

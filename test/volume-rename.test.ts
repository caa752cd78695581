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
  requireBaseImages,
  StaticImage
} from "./support/docker.js"
import { hit, workspaceFolder } from "./support/engine-server.js"
import { type Call, caller, doc, expectStatus } from "./support/rest.js"
import { waitFor } from "./support/server.js"
import { startTenantServer, type TenantServer } from "./support/tenants.js"

const docker = await dockerSuite("volume-rename")
if (docker.available) await requireBaseImages(docker.client)

let ts: TenantServer | undefined
let call: Call

/** Counts its starts in /data (the image's VOLUME) and answers with every start so far. */
const server = `const fs = require("node:fs")
fs.appendFileSync("/data/boots.txt", process.env.HOSTNAME + "\\n")
require("node:http").createServer((req, res) => res.end(fs.readFileSync("/data/boots.txt", "utf8"))).listen(8080)
`

const deploy = async (name: string, force: boolean) => {
  const created = expectStatus(
    await call(
      "POST",
      "/v1/services",
      doc("services", { source: { path: "keeper" }, name, ...(force ? { force: true } : {}) })
    ),
    202,
    `deploy ${name}`
  )
  const deploymentId: string = created.body.data[0].id
  const finished = await waitFor("the deployment", 120_000, async () => {
    const r = await call("GET", `/v1/deployments/${deploymentId}`)
    return r.body?.data?.attributes?.finishedAt ? r.body.data.attributes : undefined
  })
  expect(finished.status, finished.error ?? "").toBe("succeeded")
  return created.body.data[0].relationships.service.data.id as string
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
    workspaceFolder(ts.dataDir, ts.owner.teamId, "keeper", {
      "server.js": server,
      Dockerfile: [
        `FROM ${NodeImage}`,
        "COPY server.js /app/server.js",
        "VOLUME /data",
        "EXPOSE 8080",
        'CMD ["node", "/app/server.js"]',
        ""
      ].join("\n")
    })
  }, 120_000)

  afterAll(async () => {
    const teamId = ts?.owner.teamId
    await ts?.close()
    if (teamId === undefined) return
    await removeTeamObjects(docker.client, teamId)
    const filters = JSON.stringify({ label: [`kyozo.team=${teamId}`] })
    for (const v of (await docker.client.listVolumes({ filters }).catch(() => ({ Volumes: [] }))).Volumes ??
      [])
      await docker.client
        .getVolume(v.Name)
        .remove()
        .catch(() => {})
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
      (await docker.client
        .getVolume(volume)
        .inspect()
        .then(
          () => false,
          () => true
        ))
        ? true
        : undefined
    )
  }, 300_000)
})

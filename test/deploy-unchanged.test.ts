/**
 * An unchanged redeploy on the REAL engine is a no-op: the same folder and config answer
 * `unchanged`, the same container keeps serving and no container is created; `force` replaces
 * it; a changed file, or a running container that is gone, deploys normally.
 */
import { afterAll, describe, expect, layer } from "@effect/vitest"
import * as DockerRuntime from "@kyozo/core/DockerRuntime"
import { DeploymentEventRepo } from "@kyozo/core/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/DeploymentRepo"
import { DeploymentId, makeTeamId, type TeamId } from "@kyozo/core/domain/Ids"
import { ImageBuilder } from "@kyozo/core/ImageBuilder"
import { ServiceRepo } from "@kyozo/core/ServiceRepo"
import { TeamRepo } from "@kyozo/core/TeamRepo"
import { TopologyRepo } from "@kyozo/core/TopologyRepo"
import { Chunk, Effect, Layer, Option, Stream } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { type DeployProgress, Deployer } from "@kyozo/workers/Deployer"
import * as DeployerLive from "@kyozo/workers/DeployerLive"
import * as DurableEngine from "@kyozo/workers/DurableEngine"
import { makeTempDir, pgliteLayer } from "./support/database.js"
import {
  dockerSuite,
  NodeImage,
  removeTeamObjects,
  requireBaseImages,
  StaticImage
} from "./support/docker.js"
import { testEdgeLayer } from "./support/edge.js"

const docker = await dockerSuite("deploy-unchanged")
if (docker.available) await requireBaseImages(docker.client)

process.env.KYOZO_BASE_IMAGES = JSON.stringify({ node: NodeImage, static: StaticImage })

const workspaces = makeTempDir("kyozo-unch-ws-")
const dataDir = makeTempDir("kyozo-unch-data-")
const teamId: TeamId = makeTeamId()

afterAll(async () => {
  if (!docker.available) return
  await removeTeamObjects(docker.client, teamId)
}, 60_000)

const write = (folder: string, files: Record<string, string>) => {
  const dir = path.join(workspaces, folder)
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    fs.writeFileSync(path.join(dir, name), content)
  }
  return folder
}

const body = (url: string) =>
  Effect.promise(
    () =>
      new Promise<string>((resolve) => {
        const req = http.get(url, { agent: false, timeout: 3000 }, (res) => {
          let text = ""
          res.setEncoding("utf8")
          res.on("data", (c: string) => (text += c))
          res.on("end", () => resolve(text))
        })
        req.on("timeout", () => req.destroy(new Error("timeout")))
        req.on("error", (e) => resolve(`ERROR ${e.message}`))
      })
  )

const Repos = Layer.mergeAll(
  ServiceRepo.Default,
  DeploymentRepo.Default,
  DeploymentEventRepo.Default,
  TopologyRepo.Default,
  TeamRepo.Default
)

const TestLayer = DeployerLive.layerAll({
  dataDir,
  workspacesRoot: workspaces,
  settings: { healthTimeout: "30 seconds", drainTimeout: "1 second", stopTimeoutSeconds: 1 }
}).pipe(
  Layer.provideMerge(Layer.mergeAll(ImageBuilder.Default, testEdgeLayer(), Repos)),
  Layer.provideMerge(DurableEngine.layer("pglite")),
  Layer.provideMerge(DockerRuntime.layer),
  Layer.provideMerge(pgliteLayer),
  Layer.orDie
)

const deploy = (folder: string, force = false) =>
  Effect.gen(function* () {
    const deployer = yield* Deployer
    const progress = Chunk.toReadonlyArray(
      yield* Stream.runCollect(
        deployer.deploy(teamId, {
          source: { _tag: "Path", path: folder },
          name: "same",
          ...(force ? { force: true } : {})
        })
      )
    )
    const [d] = progress.flatMap((p: DeployProgress) => (p._tag === "Deployed" ? [p.deployment] : []))
    return d!
  })

/** Containers of the service, running or not (ids). */
const containersOf = (serviceId: string) =>
  Effect.promise(() =>
    docker.client.listContainers({
      all: true,
      filters: JSON.stringify({ label: [`kyozo.service=${serviceId}`] })
    })
  ).pipe(Effect.map((list) => list.map((c) => c.Id).sort()))

/** What is stored for the deployment: its row's status. */
const storedStatus = (deploymentId: string) =>
  Effect.flatMap(DeploymentRepo, (repo) => repo.get(teamId, DeploymentId.make(deploymentId))).pipe(
    Effect.map((d) => Option.map(d, (x) => x.status)),
    Effect.orDie
  )

/** Until only the serving container is left (the previous one retires in the background). */
const settled = (serviceId: string, serving: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 100; i++) {
      const ids = yield* containersOf(serviceId)
      if (ids.length === 1 && ids[0] === serving) return ids
      yield* Effect.sleep("100 millis")
    }
    return yield* containersOf(serviceId)
  })

describe.skipIf(!docker.available)("Unchanged redeploys on the real engine", () => {
  layer(TestLayer, { excludeTestServices: true, timeout: "240 seconds" })((it) => {
    it.effect("the same folder twice: unchanged, same container; force replaces it; a change deploys", () =>
      Effect.gen(function* () {
        const teams = yield* TeamRepo
        yield* teams.create({ id: teamId, name: `unch-${teamId}` })
        yield* DurableEngine.awaitReady({ timeout: "20 seconds" })
        const deployer = yield* Deployer
        const folder = write("same", { "index.html": "one\n" })

        const first = yield* deploy(folder)
        expect(first.status).toBe("succeeded")
        const firstView = yield* deployer.get(teamId, "same")
        const serving = firstView.containerId!
        expect(yield* body(first.url!)).toBe("one\n")
        const before = yield* containersOf(first.serviceId)
        expect(before).toEqual([serving])

        const again = yield* deploy(folder)
        expect(again.status).toBe("unchanged")
        expect(again.deploymentId).not.toBe(first.deploymentId)
        expect(yield* storedStatus(again.deploymentId)).toEqual(Option.some("unchanged"))
        expect((yield* deployer.get(teamId, "same")).containerId).toBe(serving)
        expect((yield* deployer.get(teamId, "same")).currentDeploymentId).toBe(first.deploymentId)
        expect(yield* containersOf(first.serviceId)).toEqual(before)
        expect(again.url).toBe(first.url)
        expect(yield* body(again.url!)).toBe("one\n")
        console.log(`[deploy-unchanged] unchanged redeploy: ${again.durationMs} ms server-side`)

        const forced = yield* deploy(folder, true)
        expect(forced.status).toBe("succeeded")
        const forcedView = yield* deployer.get(teamId, "same")
        expect(forcedView.containerId).not.toBe(serving)
        expect(forcedView.currentDeploymentId).toBe(forced.deploymentId)
        expect(yield* settled(first.serviceId, forcedView.containerId!)).toEqual([forcedView.containerId])
        expect(yield* body(forced.url!)).toBe("one\n")

        write("same", { "index.html": "two\n" })
        const changed = yield* deploy(folder)
        expect(changed.status).toBe("succeeded")
        expect(changed.built).toBe(true)
        const changedView = yield* deployer.get(teamId, "same")
        expect(changedView.containerId).not.toBe(forcedView.containerId)
        expect(yield* body(changed.url!)).toBe("two\n")
        yield* settled(first.serviceId, changedView.containerId!)

        // The running container is gone (killed and removed behind Kyozo's back): not unchanged.
        yield* Effect.promise(() =>
          docker.client.getContainer(changedView.containerId!).remove({ force: true })
        )
        const recovered = yield* deploy(folder)
        expect(recovered.status).toBe("succeeded")
        const recoveredView = yield* deployer.get(teamId, "same")
        expect(recoveredView.containerId).not.toBe(changedView.containerId)
        expect(yield* body(recovered.url!)).toBe("two\n")
      })
    )
  })
})

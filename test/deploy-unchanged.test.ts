/**
 * An unchanged redeploy on the REAL engine is a no-op: the same folder and config answer
 * `unchanged`, the same container keeps serving and no container is created; `force` replaces
 * it; a changed file, or a running container that is gone, deploys normally.
 */
import { describe, expect, layer } from "@effect/vitest"
import { DeploymentId, makeTeamId, type TeamId } from "@kyozo/api/domain/Ids"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { Deployer } from "@kyozo/workers/deploy/Deployer"
import { Effect, Option } from "effect"

import { bodyOf as body, deployFolder, deployStack, workspace } from "./support/deployer.js"
import {
  dockerSuite,
  NodeImage,
  removeTeamAfterAll,
  requireBaseImages,
  StaticImage
} from "./support/docker.js"

const docker = await dockerSuite("deploy-unchanged")
if (docker.available) await requireBaseImages(docker.client)

process.env.KYOZO_BASE_IMAGES = JSON.stringify({ node: NodeImage, static: StaticImage })

const ws = workspace("kyozo-unch-ws-")
const teamId: TeamId = makeTeamId()
removeTeamAfterAll(docker, teamId)

const TestLayer = deployStack({ workspaces: ws.root, team: { id: teamId, name: `unch-${teamId}` } })

const deploy = (folder: string, force = false) =>
  deployFolder(teamId, folder, { name: "same", force }).pipe(Effect.map((deployed) => deployed[0]!))

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
        const deployer = yield* Deployer
        const folder = ws.write("same", { "index.html": "one\n" })

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

        ws.write("same", { "index.html": "two\n" })
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

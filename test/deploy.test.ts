/**
 * Deploys on the mock runtime and the embedded database: the whole path (detection → rows →
 * ServiceEntity → DeployWorkflow → proxy) runs for real; only the container engine is in memory and
 * the health probe is a switch the tests flip (nothing listens on a mock container's port).
 */
import * as fs from "node:fs"
import * as path from "node:path"

import { describe, expect, layer } from "@effect/vitest"
import { type DeployProgress } from "@kyozo/api/domain/Deploy"
import { makeTeamId, type TeamId } from "@kyozo/api/domain/Ids"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import { EdgeRouter } from "@kyozo/core/edge/EdgeRouter"
import * as InProcessEdge from "@kyozo/core/edge/InProcessEdge"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as MockRuntime from "@kyozo/core/engine/MockRuntime"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { TopologyRepo } from "@kyozo/core/store/TopologyRepo"
import { Deployer } from "@kyozo/workers/deploy/Deployer"
import * as DeployerLive from "@kyozo/workers/deploy/DeployerLive"
import * as DurableEngine from "@kyozo/workers/deploy/DurableEngine"
import * as Reconciler from "@kyozo/workers/maintenance/Reconciler"
import { Chunk, Effect, Layer, Option, Schedule, Stream } from "effect"

import { makeTempDir, pgliteLayer } from "./support/database.js"

let healthy = true
/** Runs at each probe: a test can make the engine fail at the worst moment. */
let probeHook: Effect.Effect<void> = Effect.void
const probeCalls: Array<number> = []

const workspaces = makeTempDir("kyozo-deploy-ws-")
const dataDir = makeTempDir("kyozo-deploy-data-")

const writeSite = (name: string, body: string) => {
  const dir = path.join(workspaces, name)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, "index.html"), `<h1>${body}</h1>\n`)
  return name
}

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
  settings: {
    healthTimeout: "1500 millis",
    healthPollInterval: "20 millis",
    drainTimeout: "100 millis",
    compensationRetries: 1,
    probe: (target) =>
      Effect.suspend(() => probeHook).pipe(
        Effect.zipRight(
          Effect.sync(() => {
            probeCalls.push(target.port)
            return healthy
          })
        )
      )
  }
}).pipe(
  Layer.provideMerge(Layer.mergeAll(ImageBuilder.Default, InProcessEdge.layer({ reason: "test" }), Repos)),
  Layer.provideMerge(DurableEngine.layerTest),
  Layer.provideMerge(MockRuntime.layer),
  Layer.provideMerge(pgliteLayer),
  Layer.orDie
)

const newTeam = Effect.gen(function* () {
  const teams = yield* TeamRepo
  const id = makeTeamId()
  yield* teams.create({ id, name: `deploy-${id}` })
  return id
})

const deployAll = (teamId: TeamId, folder: string, name?: string, force = false) =>
  Effect.gen(function* () {
    const deployer = yield* Deployer
    const progress = yield* Stream.runCollect(
      deployer.deploy(teamId, {
        source: { _tag: "Path", path: folder },
        ...(name ? { name } : {}),
        ...(force ? { force: true } : {})
      })
    )
    return Chunk.toReadonlyArray(progress)
  })

const deployedOf = (progress: ReadonlyArray<DeployProgress>) => {
  const last = progress[progress.length - 1]
  if (last?._tag !== "Deployed") throw new Error(`no Deployed at the end: ${JSON.stringify(last)}`)
  return last.deployment
}

const listOwned = (serviceId: string) =>
  Effect.flatMap(ContainerRuntime, (runtime) =>
    runtime.listContainers({ all: true, labels: { "kyozo.service": serviceId } })
  )

/** The service's containers once the background retire left exactly one (or none when removed). */
const runningFor = (serviceId: string, expected = 1) =>
  listOwned(serviceId).pipe(
    Effect.filterOrFail((list) => list.length === expected),
    Effect.retry(Schedule.spaced("20 millis")),
    Effect.timeout("5 seconds"),
    Effect.orElse(() => listOwned(serviceId))
  )

/**
 * A new team with its service "web" deployed from a folder of its own: v1, then v2 when asked.
 * Each test starts from one, so any test runs alone.
 */
const webService = (versions: 1 | 2 = 1) =>
  Effect.gen(function* () {
    const team = yield* newTeam
    const folder = writeSite(`site-${team}`, "v1")
    const first = deployedOf(yield* deployAll(team, folder, "web"))
    const second =
      versions === 2 ? deployedOf(yield* deployAll(team, writeSite(folder, "v2"), "web")) : undefined
    return { team, folder, serviceId: first.serviceId, firstImage: first.image!, secondImage: second?.image }
  })

describe("Deployer on the mock runtime", () => {
  layer(TestLayer, { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.effect("deploys a folder: the service runs behind its URL and every step is recorded in order", () =>
      Effect.gen(function* () {
        const team = yield* newTeam
        const folder = writeSite(`site-${team}`, "v1")
        const progress = yield* deployAll(team, folder, "web")
        expect(progress[0]?._tag).toBe("Detected")
        const deployed = deployedOf(progress)
        expect(deployed.serviceName).toBe("web")
        expect(deployed.built).toBe(true)
        expect(deployed.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
        expect(progress.some((p) => p._tag === "BuildLog")).toBe(true)
        const serviceId = deployed.serviceId

        const deployer = yield* Deployer
        const view = yield* deployer.get(team, "web")
        expect(view.status).toBe("running")
        expect(view.url).toBe(deployed.url)
        expect(view.currentDeploymentId).toBe(deployed.deploymentId)

        const containers = yield* runningFor(serviceId)
        expect(containers.map((c) => c.state)).toEqual(["running"])
        expect(containers[0]!.name).toMatch(/^kyozo-web-/)
        expect(containers[0]!.labels["kyozo.deployment"]).toBe(deployed.deploymentId)

        const events = yield* DeploymentEventRepo
        const types = (yield* events.listByService(team, view.id)).map((e) => e.type)
        expect(types).toEqual([
          "deploy.building",
          "deploy.built",
          "deploy.created",
          "deploy.started",
          "deploy.healthy",
          "deploy.switched",
          "deploy.succeeded"
        ])
        const deployments = yield* DeploymentRepo
        const row = yield* deployments.get(team, deployed.deploymentId)
        expect(Option.getOrThrow(row).status).toBe("succeeded")
        expect(probeCalls.length).toBeGreaterThan(0)
      })
    )

    it.effect("an unchanged redeploy is a no-op: the same container serves on, nothing is created", () =>
      Effect.gen(function* () {
        const { team, serviceId, firstImage, folder } = yield* webService()
        const deployer = yield* Deployer
        const before = yield* deployer.get(team, "web")
        const deployed = deployedOf(yield* deployAll(team, folder, "web"))
        expect(deployed.status).toBe("unchanged")
        expect(deployed.built).toBe(false)
        expect(deployed.image).toBe(firstImage)
        expect(deployed.url).toBe(before.url)
        const after = yield* deployer.get(team, "web")
        expect(after.containerId).toBe(before.containerId)
        expect(after.currentDeploymentId).toBe(before.currentDeploymentId)
        expect((yield* runningFor(serviceId)).map((c) => c.id)).toEqual([before.containerId])
      })
    )

    it.effect("a forced unchanged redeploy builds nothing, keeps the URL and retires the old container", () =>
      Effect.gen(function* () {
        const { team, serviceId, firstImage, folder } = yield* webService()
        const deployer = yield* Deployer
        const before = yield* deployer.get(team, "web")
        const deployed = deployedOf(yield* deployAll(team, folder, "web", true))
        expect(deployed.status).toBe("succeeded")
        expect(deployed.built).toBe(false)
        expect(deployed.image).toBe(firstImage)
        expect(deployed.url).toBe(before.url)
        const containers = yield* runningFor(serviceId)
        expect(containers).toHaveLength(1)
        expect(containers[0]!.id).not.toBe(before.containerId)
        expect(containers[0]!.labels["kyozo.deployment"]).toBe(deployed.deploymentId)
      })
    )

    it.effect("a changed folder builds a new image", () =>
      Effect.gen(function* () {
        const { team, serviceId, firstImage, folder } = yield* webService()
        writeSite(folder, "v2")
        const deployed = deployedOf(yield* deployAll(team, folder, "web"))
        expect(deployed.built).toBe(true)
        expect(deployed.image).not.toBe(firstImage)
        const secondImage = deployed.image!
        expect((yield* runningFor(serviceId)).map((c) => c.image)).toEqual([secondImage])
      })
    )

    it.effect(
      "after the deploy answered, images beyond the retention count are pruned in the background",
      () =>
        Effect.gen(function* () {
          const { team, serviceId, folder } = yield* webService()
          const builder = yield* ImageBuilder
          let last = ""
          // The default retention keeps 5 images: 7 versions leave 2 to prune.
          for (let v = 2; v <= 7; v++) {
            writeSite(folder, `v${v}`)
            const deployed = deployedOf(yield* deployAll(team, folder, "web"))
            expect(deployed.built).toBe(true)
            last = deployed.image!
          }
          const images = yield* builder.retained(serviceId).pipe(
            Effect.filterOrFail((list) => list.length <= 5),
            Effect.retry(Schedule.spaced("20 millis")),
            Effect.timeout("5 seconds"),
            Effect.orElse(() => builder.retained(serviceId))
          )
          expect(images.length).toBe(5)
          expect(images.flatMap((i) => i.tags)).toContain(last)
          expect((yield* runningFor(serviceId)).map((c) => c.image)).toEqual([last])
        })
    )

    it.effect("a failing health gate compensates: the old container keeps serving", () =>
      Effect.gen(function* () {
        const { team, serviceId, secondImage, folder } = yield* webService(2)
        const deployer = yield* Deployer
        const before = yield* deployer.get(team, "web")
        writeSite(folder, "v3 broken")
        healthy = false
        const failure = yield* Effect.flip(deployAll(team, folder, "web")).pipe(
          Effect.ensuring(Effect.sync(() => (healthy = true)))
        )
        expect(failure._tag).toBe("DeployFailed")
        if (failure._tag === "DeployFailed") {
          expect(failure.compensated).toBe(true)
          expect(failure.step).toBe("health")
        }
        const after = yield* deployer.get(team, "web")
        expect(after.containerId).toBe(before.containerId)
        expect(after.image).toBe(secondImage)
        expect(after.status).toBe("running")
        const containers = yield* runningFor(serviceId)
        expect(containers.map((c) => c.id)).toEqual([before.containerId])
        const deployments = yield* DeploymentRepo
        const latest = (yield* deployments.listByService(team, after.id as never, { limit: 1 }))[0]!
        expect(latest.status).toBe("compensated")
        const events = yield* DeploymentEventRepo
        const types = (yield* events.latestByService(team, after.id as never, 2)).map((e) => e.type)
        expect(types).toEqual(["deploy.compensated", "deploy.failed"])
      })
    )

    it.effect("rollback goes back to the previous retained image, health-gated", () =>
      Effect.gen(function* () {
        const { team, serviceId, firstImage, secondImage } = yield* webService(2)
        const deployer = yield* Deployer
        const images = yield* ImageBuilder
        const retained = (yield* images.retained(serviceId)).map((i) => i.tags[0])
        expect(retained).toContain(firstImage)
        // v2 is retained too; rolling back by name picks exactly v1.
        const summary = yield* deployer.rollback(team, "web", firstImage)
        expect(summary.image).toBe(firstImage)
        expect(summary.built).toBe(false)
        const view = yield* deployer.get(team, "web")
        expect(view.image).toBe(firstImage)
        expect((yield* runningFor(serviceId)).map((c) => c.image)).toEqual([firstImage])
        // And back to the v2 deployment by its deployment id.
        const deployments = yield* DeploymentRepo
        const v2 = (yield* deployments.listByService(team, view.id, { limit: 20 })).find(
          (d) => d.image === secondImage && d.status === "succeeded"
        )!
        const again = yield* deployer.rollback(team, "web", v2.id)
        expect(again.image).toBe(secondImage)
        const missing = yield* Effect.flip(deployer.rollback(team, "web", "kyozo/nope:1"))
        expect(missing._tag).toBe("NoRollbackTarget")
      })
    )

    it.effect("stop and start", () =>
      Effect.gen(function* () {
        const { team, serviceId } = yield* webService()
        const deployer = yield* Deployer
        const runtime = yield* ContainerRuntime
        const stopped = yield* deployer.stop(team, "web")
        expect(stopped.status).toBe("stopped")
        expect(stopped.desiredState).toBe("stopped")
        expect((yield* runtime.inspectContainer(stopped.containerId!)).running).toBe(false)
        const started = yield* deployer.start(team, serviceId)
        // Started, not yet probed: `starting` until the health pass sees it answer.
        expect(started.status).toBe("starting")
        expect((yield* runtime.inspectContainer(started.containerId!)).running).toBe(true)
        const restarted = yield* deployer.restart(team, "web")
        expect(restarted.restartCount).toBe(started.restartCount + 1)
        expect(restarted.status).toBe("starting")
      })
    )

    it.effect("another team sees nothing of it", () =>
      Effect.gen(function* () {
        const { team, serviceId } = yield* webService()
        const teamB = yield* newTeam
        const deployer = yield* Deployer
        for (const op of [
          deployer.get(teamB, "web"),
          deployer.get(teamB, serviceId),
          deployer.stop(teamB, serviceId),
          Effect.asVoid(deployer.remove(teamB, serviceId)),
          deployer.rollback(teamB, serviceId)
        ]) {
          const error = yield* Effect.flip(op)
          expect(error._tag).toBe("ServiceNotFound")
        }
        expect(yield* deployer.list(teamB)).toEqual([])
        expect((yield* deployer.list(team)).map((s) => s.name)).toEqual(["web"])
        const events = yield* Stream.runCollect(deployer.events(teamB))
        expect(Chunk.size(events)).toBe(0)
        const own = yield* Stream.runCollect(deployer.events(team, { service: "web" }))
        // The seven recorded steps of its one deploy.
        expect(Chunk.size(own)).toBeGreaterThanOrEqual(7)
      })
    )

    it.effect("reconcile: orphaned deployments are compensated, strays removed, proxies routed again", () =>
      Effect.gen(function* () {
        const { team } = yield* webService()
        const deployer = yield* Deployer
        const runtime = yield* ContainerRuntime
        const proxy = yield* EdgeRouter
        const deployments = yield* DeploymentRepo
        const view = yield* deployer.get(team, "web")
        // A crash between writing the row and sending to the entity: no stored message.
        const orphan = Option.getOrThrow(yield* deployments.create({ teamId: team, serviceId: view.id }))
        const half = yield* runtime.createContainer({
          name: `kyozo-web-orphan-${Date.now()}`,
          image: view.image!,
          labels: { "kyozo.service": view.id, "kyozo.team": team, "kyozo.deployment": orphan.id }
        })
        const stray = yield* runtime.createContainer({
          name: `kyozo-web-stray-${Date.now()}`,
          image: view.image!,
          labels: { "kyozo.service": view.id, "kyozo.team": team }
        })
        // The process restarted: no proxies.
        yield* proxy.remove(view.id)
        expect(yield* proxy.route(view.id)).toBeUndefined()

        const report = yield* Reconciler.reconcile({ dispatchGrace: 0 })
        expect(report.compensated).toContain(orphan.id)
        expect(report.removed).toEqual(expect.arrayContaining([half.id, stray.id]))
        expect(report.routed).toContain(view.id)
        expect(Option.getOrThrow(yield* deployments.get(team, orphan.id)).status).toBe("compensated")
        expect((yield* listOwned(view.id)).map((c) => c.id)).toEqual([view.containerId])
        const status = yield* proxy.route(view.id)
        expect(`http://127.0.0.1:${status!.hostPort}`).toBe(view.url)
        const info = yield* runtime.inspectContainer(view.containerId!)
        expect(status!.upstreams[0]?.port).toBe(info.ports[0]!.hostPort)

        // Level-driven: a second pass finds nothing left to fix.
        const again = yield* Reconciler.reconcile({ dispatchGrace: 0 })
        expect(again.compensated).toEqual([])
        expect(again.removed).toEqual([])
      })
    )

    it.effect("an engine that dies during a failing health gate still ends the deployment compensated", () =>
      Effect.gen(function* () {
        const { team, folder } = yield* webService()
        const deployer = yield* Deployer
        const control = yield* MockRuntime.MockRuntimeControl
        const runtime = yield* ContainerRuntime
        const before = yield* deployer.get(team, "web")
        writeSite(folder, "v5 broken while the engine goes away")
        healthy = false
        probeHook = control.setDown(true)
        const failure = yield* Effect.flip(deployAll(team, folder, "web")).pipe(
          Effect.ensuring(
            Effect.sync(() => {
              healthy = true
              probeHook = Effect.void
            })
          ),
          Effect.ensuring(control.setDown(false))
        )
        expect(failure._tag).toBe("DeployFailed")
        if (failure._tag === "DeployFailed") expect(failure.compensated).toBe(true)
        // The deployment is finished, not left at "health-check", and says the removal was deferred.
        const deployments = yield* DeploymentRepo
        const latest = (yield* deployments.listByService(team, before.id as never, { limit: 1 }))[0]!
        expect(latest.status).toBe("compensated")
        const events = yield* DeploymentEventRepo
        const types = (yield* events.latestByService(team, before.id as never, 3)).map((e) => e.type)
        expect(types).toContain("deploy.cleanup-deferred")
        expect(types[0]).toBe("deploy.compensated")
        // The old version still serves; the deferred container is what a cleanup pass removes.
        const after = yield* deployer.get(team, "web")
        expect(after.containerId).toBe(before.containerId)
        const leftovers = yield* runtime.listContainers({
          all: true,
          labels: { "kyozo.deployment": latest.id }
        })
        expect(leftovers).toHaveLength(1)
        yield* Effect.forEach(leftovers, (c) => runtime.removeContainer(c.id, { force: true }))
      })
    )

    it.effect("replicas: scale out brings up n, a redeploy replaces all n, scale in removes the extra", () =>
      Effect.gen(function* () {
        const team = yield* newTeam
        const deployer = yield* Deployer
        const edge = yield* EdgeRouter
        const folder = writeSite("replicated", "r1")
        const first = deployedOf(yield* deployAll(team, folder, "rep"))
        // The scale answers with the new desired count at once; the replicas follow in the background.
        expect((yield* deployer.scale(team, "rep", 3)).replicas).toBe(3)
        const current = (deploymentId: string) =>
          Effect.map(listOwned(first.serviceId), (all) =>
            all.filter((c) => c.state === "running" && c.labels["kyozo.deployment"] === deploymentId)
          )
        /** Until the containers and the route show `n` replicas (or fail after about 5 s). */
        const converged = (deploymentId: string, n: number) =>
          Effect.gen(function* () {
            const running = (yield* current(deploymentId)).length
            const routed = (yield* edge.route(first.serviceId))?.upstreams.length
            if (running !== n || routed !== n)
              return yield* Effect.fail(`${running} running, ${routed} routed`)
          }).pipe(Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(250)))))
        yield* converged(first.deploymentId, 3)
        expect(yield* current(first.deploymentId)).toHaveLength(3)
        expect((yield* deployer.get(team, "rep")).replicas).toBe(3)
        expect((yield* edge.route(first.serviceId))?.upstreams).toHaveLength(3)

        const second = deployedOf(yield* deployAll(team, writeSite("replicated", "r2"), "rep"))
        expect(second.url).toBe(first.url)
        expect(yield* current(second.deploymentId)).toHaveLength(3)
        expect(yield* runningFor(first.serviceId, 3)).toHaveLength(3)

        const scaled = yield* deployer.scale(team, "rep", 1)
        expect(scaled.replicas).toBe(1)
        yield* converged(second.deploymentId, 1)
        expect(yield* current(second.deploymentId)).toHaveLength(1)
        expect((yield* edge.route(first.serviceId))?.upstreams).toHaveLength(1)
      })
    )

    it.effect("scale answers with the new count at once while the engine hangs; the replicas follow", () =>
      Effect.gen(function* () {
        const team = yield* newTeam
        const deployer = yield* Deployer
        const control = yield* MockRuntime.MockRuntimeControl
        const first = deployedOf(yield* deployAll(team, writeSite("hanging", "h1"), "hang"))
        // Every engine call waits from now on (a busy or restarting dockerd): the answer does not.
        yield* control.hang(true)
        const scaled = yield* deployer
          .scale(team, "hang", 2)
          .pipe(
            Effect.timeoutFail({ duration: "3 seconds", onTimeout: () => "scale waited for the engine" }),
            Effect.ensuring(control.hang(false))
          )
        expect(scaled.replicas).toBe(2)
        yield* Effect.map(listOwned(first.serviceId), (all) =>
          all.filter((c) => c.state === "running" && c.labels["kyozo.deployment"] === first.deploymentId)
        ).pipe(
          Effect.filterOrFail((running) => running.length === 2),
          Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(250))))
        )
      })
    )

    it.effect("remove takes the container, the proxy and the images away", () =>
      Effect.gen(function* () {
        const { team, serviceId } = yield* webService()
        const deployer = yield* Deployer
        const proxy = yield* EdgeRouter
        expect(yield* proxy.route(serviceId)).toBeDefined()
        yield* deployer.remove(team, "web")
        expect((yield* Effect.flip(deployer.get(team, "web")))._tag).toBe("ServiceNotFound")
        expect(yield* runningFor(serviceId, 0)).toEqual([])
        expect(yield* proxy.route(serviceId)).toBeUndefined()
        const images = yield* ImageBuilder
        expect(yield* images.retained(serviceId)).toEqual([])
      })
    )

    it.effect("a compose folder deploys its services in dependency order", () =>
      Effect.gen(function* () {
        const team = yield* newTeam
        const dir = path.join(workspaces, "stack")
        for (const svc of ["api", "web"]) {
          fs.mkdirSync(path.join(dir, svc), { recursive: true })
          fs.writeFileSync(
            path.join(dir, svc, "Dockerfile"),
            `FROM busybox:latest\nEXPOSE 80\nCMD ["httpd","-f"]\n`
          )
        }
        fs.writeFileSync(
          path.join(dir, "compose.yaml"),
          [
            "services:",
            "  web:",
            "    build: ./web",
            "    ports: ['8080:80']",
            "    depends_on: [api]",
            "  api:",
            "    build: ./api",
            "    ports: ['9000:80']",
            ""
          ].join("\n")
        )
        const progress = yield* deployAll(team, "stack")
        const order = progress.flatMap((p) => (p._tag === "Deployed" ? [p.deployment.serviceName] : []))
        expect(order).toEqual(["api", "web"])
        const runtime = yield* ContainerRuntime
        const deployer = yield* Deployer
        const web = yield* deployer.get(team, "web")
        const info = yield* runtime.inspectContainer(web.containerId!)
        expect(info.networks).toContain(`kyozo-${team}`)
      })
    )
  })
})

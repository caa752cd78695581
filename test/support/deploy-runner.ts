/**
 * A Kyozo process for the crash test, run with `node --import tsx`: the deploy layers exactly as a
 * server builds them (PGlite in a data folder, the durable engine on it, the real Docker engine).
 *
 *   deploy <dataDir> <workspaces> <teamId> <folder> <name>   deploys, printing PROGRESS/DONE lines
 *   resume <dataDir> <workspaces> <teamId> <name>            reconciles, waits for in-flight work
 *                                                             to settle, prints SETTLED
 */
import * as http from "node:http"

import type { TeamId } from "@kyozo/api/domain/Ids"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
// In-process edge: this runner is SIGKILLed by the crash tests, and a Caddy it started would outlive it.
import * as InProcessEdge from "@kyozo/core/edge/InProcessEdge"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as DockerRuntime from "@kyozo/core/engine/DockerRuntime"
import * as Database from "@kyozo/core/store/Database"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { TopologyRepo } from "@kyozo/core/store/TopologyRepo"
import { Deployer } from "@kyozo/workers/deploy/Deployer"
import * as DeployerLive from "@kyozo/workers/deploy/DeployerLive"
import * as DurableEngine from "@kyozo/workers/deploy/DurableEngine"
import * as Reconciler from "@kyozo/workers/maintenance/Reconciler"
import { Effect, Layer, Logger, LogLevel, Stream } from "effect"

const [mode, dataDir, workspaces, team, ...rest] = process.argv.slice(2)
const teamId = team as TeamId
const say = (tag: string, value: unknown) => process.stdout.write(`${tag} ${JSON.stringify(value)}\n`)

const Repos = Layer.mergeAll(
  ServiceRepo.Default,
  DeploymentRepo.Default,
  DeploymentEventRepo.Default,
  TopologyRepo.Default,
  TeamRepo.Default
)

const AppLayer = DeployerLive.layerAll({
  dataDir: dataDir!,
  workspacesRoot: workspaces!,
  settings: { healthTimeout: "40 seconds", drainTimeout: "1 second", stopTimeoutSeconds: 1 }
}).pipe(
  Layer.provideMerge(mode === "resume" ? Reconciler.layer({ dispatchGrace: 0 }) : Layer.empty),
  Layer.provideMerge(
    Layer.mergeAll(ImageBuilder.Default, InProcessEdge.layer({ reason: "deploy-runner" }), Repos)
  ),
  Layer.provideMerge(DurableEngine.layer("pglite")),
  Layer.provideMerge(DockerRuntime.layer),
  Layer.provideMerge(Database.migrated(Database.layerPglite(dataDir!)))
)

const get = (url: string): Promise<string> =>
  new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 3000 }, (res) => {
      let body = ""
      res.on("data", (c) => (body += c))
      res.on("end", () => resolve(body))
    })
    req.on("error", (e) => resolve(`ERROR ${e.message}`))
  })

const deploy = Effect.gen(function* () {
  const [folder, name] = rest
  const teams = yield* TeamRepo
  yield* teams
    .create({ id: teamId, name: `crash-${teamId}` })
    .pipe(Effect.catchTag("TeamNameTaken", () => Effect.void))
  const deployer = yield* Deployer
  yield* deployer
    .deploy(teamId, { source: { _tag: "Path", path: folder! }, name: name! })
    .pipe(Stream.runForEach((p) => Effect.sync(() => say(p._tag === "Deployed" ? "DONE" : "PROGRESS", p))))
})

const resume = Effect.gen(function* () {
  const [name] = rest
  const deployer = yield* Deployer
  const deployments = yield* DeploymentRepo
  const runtime = yield* ContainerRuntime
  const svc = yield* deployer.get(teamId, name!)
  // In-flight deploys finish (or compensate), then the old container is retired.
  const settled = Effect.gen(function* () {
    const unfinished = yield* deployments.listUnfinished(svc.id)
    const owned = yield* runtime.listContainers({ all: true, labels: { "kyozo.service": svc.id } })
    return unfinished.length === 0 && owned.length === 1
  })
  for (let i = 0; i < 300 && !(yield* settled); i++) yield* Effect.sleep("200 millis")
  const view = yield* deployer.get(teamId, name!)
  const history = yield* deployments.listByService(teamId, view.id, { limit: 10 })
  const owned = yield* runtime.listContainers({ all: true, labels: { "kyozo.service": view.id } })
  const body = view.url === null ? null : yield* Effect.promise(() => get(view.url!))
  say("SETTLED", {
    service: view,
    deployments: history.map((d) => ({ id: d.id, status: d.status, error: d.error })),
    containers: owned.map((c) => ({ id: c.id, state: c.state, deployment: c.labels["kyozo.deployment"] })),
    body
  })
})

const program: Effect.Effect<void, unknown, Deployer | TeamRepo | DeploymentRepo | ContainerRuntime> =
  mode === "deploy" ? deploy : resume

Effect.runPromise(
  program.pipe(Effect.provide(AppLayer), Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Warning))
).then(
  () => process.exit(0),
  (e) => {
    say("FAILED", String(e))
    process.exit(1)
  }
)

/**
 * The deploy stack of the suites that deploy folders on the REAL engine, as a server builds it: the
 * Deployer and its workflow, the durable engine on PGlite, the repositories, the image builder, the
 * test edge and the Docker runtime, on the shared PGlite test database.
 *
 *   const ws = workspace("kyozo-e2e-")                         // folders to deploy
 *   const Stack = deployStack({ workspaces: ws.root, team: { id: teamId, name: "e2e" } })
 *   layer(Stack)((it) => it.effect("...", () => deployFolder(teamId, ws.write("site", files))))
 *
 * The team is created and the durable engine awaited while the layer is built, so every test of the
 * suite runs alone (`vitest -t`) as well as with the others.
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"

import { type DeploymentSummary, type DeployProgress } from "@kyozo/api/domain/Deploy"
import type { TeamId } from "@kyozo/api/domain/Ids"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import * as DockerRuntime from "@kyozo/core/engine/DockerRuntime"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { TopologyRepo } from "@kyozo/core/store/TopologyRepo"
import { Deployer } from "@kyozo/workers/deploy/Deployer"
import * as DeployerLive from "@kyozo/workers/deploy/DeployerLive"
import * as DurableEngine from "@kyozo/workers/deploy/DurableEngine"
import { Chunk, Effect, Layer, Stream } from "effect"

import { makeTempDir, pgliteLayer } from "./database.js"
import { testEdgeLayer } from "./edge.js"

/** The repositories the Deployer reads and writes. */
const DeployRepos = Layer.mergeAll(
  ServiceRepo.Default,
  DeploymentRepo.Default,
  DeploymentEventRepo.Default,
  TopologyRepo.Default,
  TeamRepo.Default
)

/** A folder of folders to deploy, removed with the temp dir. */
export interface Workspace {
  readonly root: string
  /**
   * Writes `files` into `<root>/<folder>` and returns `folder` (a deploy's source path, relative to
   * the workspaces root). `fresh` (the default) empties the folder first.
   */
  readonly write: (
    folder: string,
    files: Record<string, string | Uint8Array>,
    options?: { readonly fresh?: boolean }
  ) => string
}

export const workspace = (prefix: string): Workspace => {
  const root = makeTempDir(prefix)
  return {
    root,
    write: (folder, files, options = {}) => {
      const dir = path.join(root, folder)
      if (options.fresh !== false) fs.rmSync(dir, { recursive: true, force: true })
      for (const [name, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
        fs.writeFileSync(path.join(dir, name), content)
      }
      return folder
    }
  }
}

export interface DeployStackOptions {
  /** The workspaces root deploys resolve their `Path` sources in. */
  readonly workspaces: string
  /** Created (if new) while the layer is built, with the durable engine awaited. */
  readonly team: { readonly id: TeamId; readonly name: string }
  readonly settings?: DeployerLive.DeployerOptions["settings"]
}

/** The team exists and the durable engine holds its shards: deploys can start. */
const teamReady = (team: DeployStackOptions["team"]) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      yield* (yield* TeamRepo).create(team).pipe(Effect.catchTag("TeamNameTaken", () => Effect.void))
      yield* DurableEngine.awaitReady({ timeout: "20 seconds" })
    })
  )

export const deployStack = (options: DeployStackOptions) =>
  teamReady(options.team).pipe(
    Layer.provideMerge(
      DeployerLive.layerAll({
        dataDir: makeTempDir("kyozo-deploy-data-"),
        workspacesRoot: options.workspaces,
        settings: options.settings ?? {
          healthTimeout: "30 seconds",
          drainTimeout: "1 second",
          stopTimeoutSeconds: 1
        }
      })
    ),
    Layer.provideMerge(Layer.mergeAll(ImageBuilder.Default, testEdgeLayer(), DeployRepos)),
    Layer.provideMerge(DurableEngine.layer("pglite")),
    Layer.provideMerge(DockerRuntime.layer),
    Layer.provideMerge(pgliteLayer),
    Layer.orDie
  )

/** Deploys a folder of the workspace: the whole progress stream, collected. */
export const deployProgress = (
  teamId: TeamId,
  folder: string,
  options: { readonly name?: string; readonly force?: boolean } = {}
) =>
  Effect.flatMap(Deployer, (deployer) =>
    Stream.runCollect(
      deployer.deploy(teamId, {
        source: { _tag: "Path", path: folder },
        ...(options.name ? { name: options.name } : {}),
        ...(options.force ? { force: true } : {})
      })
    )
  ).pipe(Effect.map((chunk): ReadonlyArray<DeployProgress> => Chunk.toReadonlyArray(chunk)))

/** Deploys a folder of the workspace: the summaries of the services it deployed. */
export const deployFolder = (
  teamId: TeamId,
  folder: string,
  options: { readonly name?: string; readonly force?: boolean } = {}
) =>
  deployProgress(teamId, folder, options).pipe(
    Effect.map((progress): ReadonlyArray<DeploymentSummary> =>
      progress.flatMap((p) => (p._tag === "Deployed" ? [p.deployment] : []))
    )
  )

/** One GET on a fresh connection: status and body, or the error text. */
export const httpGet = (
  url: string,
  timeoutMs = 3000
): Promise<{ status: number; body: string } | { error: string }> =>
  new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => (body += c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
      res.on("error", (e) => resolve({ error: e.message }))
    })
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", (e) => resolve({ error: e.message }))
  })

/** The body a GET of `url` answers, or `ERROR <reason>`. */
export const bodyOf = (url: string, timeoutMs = 3000): Effect.Effect<string> =>
  Effect.promise(() => httpGet(url, timeoutMs)).pipe(
    Effect.map((r) => ("body" in r ? r.body : `ERROR ${r.error}`))
  )

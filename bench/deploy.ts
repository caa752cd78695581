/**
 * bench/deploy: the first deploy of a small Node folder through Kyozo (in-process Deployer, PGlite,
 * durable engine, real Docker engine, the local base images) against the raw path a person would
 * type for the same folder: `docker build` of the Dockerfile Kyozo generates, `docker run -d -p
 * 127.0.0.1::3000`, then polling the published port until it answers. A second baseline builds the
 * same folder with BuildKit (its tar POSTed to the engine's `/build?version=2`, as Kyozo's builder
 * does), because a docker CLI without the buildx plugin still runs the classic builder. Rounds alternate which side
 * goes first; every round uses fresh folder content so neither side hits an image cache. Also times
 * an unchanged redeploy (a no-op: status `unchanged`, nothing created) and, for comparison in the
 * same run, a forced one (a new container, health gate, proxy switch, retire).
 *
 *   pnpm bench:deploy        (KYOZO_BENCH_ROUNDS=5 for more rounds; needs scripts/base-images.sh)
 *
 * Everything created carries the bench's labels/tags and is removed at the end. Traffic goes only to
 * ports published on 127.0.0.1.
 */
import { execFile, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { promisify } from "node:util"

import { type DeploymentSummary } from "@kyozo/api/domain/Deploy"
import { makeTeamId } from "@kyozo/api/domain/Ids"
import { resolveBaseImages } from "@kyozo/core/build/dockerfile/BaseImages"
import { DEFAULT_DOCKERIGNORE, generateDockerfile } from "@kyozo/core/build/dockerfile/DockerfileGenerator"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
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
import { Chunk, Effect, Layer, Logger, LogLevel, ManagedRuntime, Stream, Tracer } from "effect"

const ROUNDS = Number(process.env.KYOZO_BENCH_ROUNDS ?? 3)
const NODE_IMAGE = "kyozo-local/node:20"
const STATIC_IMAGE = "kyozo-local/static:latest"
const READY_TIMEOUT_MS = 60_000
const POLL_MS = 50

const runId = randomBytes(4).toString("hex")
const BenchLabel = "kyozo.bench"
const rawRepository = `kyozo-bench/raw-${runId}`
const root = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-bench-deploy-"))
const dataDir = path.join(root, "data")
const workspaces = path.join(root, "workspaces")
const rawRoot = path.join(root, "raw")
const teamId = makeTeamId()

// Kyozo's generated Dockerfiles take FROM lines from here (read when the layer is built).
process.env.KYOZO_BASE_IMAGES = JSON.stringify({ node: NODE_IMAGE, static: STATIC_IMAGE })
const baseImages = resolveBaseImages({ node: NODE_IMAGE, static: STATIC_IMAGE })

// ---------------------------------------------------------------------------------------------
// Helpers

const exec = promisify(execFile)
const docker = async (...args: ReadonlyArray<string>): Promise<string> =>
  (await exec("docker", [...args], { maxBuffer: 16 * 1024 * 1024 })).stdout.trim()

/** One GET on a fresh connection: the body, or undefined when nothing (or not HTTP) answers. */
const get = (url: string, timeoutMs = 2000): Promise<string | undefined> =>
  new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => (body += c))
      res.on("end", () => resolve(res.statusCode === 200 ? body : undefined))
      res.on("error", () => resolve(undefined))
    })
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", () => resolve(undefined))
  })

/** Polls until the URL answers "hello" (Docker's port proxy accepts before the app listens). */
const waitForHello = async (url: string): Promise<void> => {
  const deadline = Date.now() + READY_TIMEOUT_MS
  for (;;) {
    if ((await get(url)) === "hello") return
    if (Date.now() > deadline) throw new Error(`${url} did not answer "hello" within ${READY_TIMEOUT_MS} ms`)
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
}

/**
 * A small Node app without dependencies. The random line changes the build context, so every
 * folder is a cache miss for both sides.
 */
const writeApp = (dir: string, name: string): void => {
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(
    path.join(dir, "package.json"),
    JSON.stringify(
      { name, version: "1.0.0", main: "server.js", scripts: { start: "node server.js" } },
      null,
      2
    )
  )
  fs.writeFileSync(
    path.join(dir, "server.js"),
    [
      `// build ${randomBytes(8).toString("hex")}`,
      "const http = require('node:http')",
      "const port = Number(process.env.PORT) || 3000",
      "http.createServer((req, res) => res.end('hello')).listen(port)",
      ""
    ].join("\n")
  )
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const fmt = (ms: number): string => `${Math.round(ms)} ms`

// ---------------------------------------------------------------------------------------------
// Baseline: the docker CLI on the same generated Dockerfile

let rawCount = 0

interface RawRun {
  readonly ms: number
  readonly buildMs: number
  /** `docker run -d` (create + start) and `docker port`. */
  readonly runMs: number
  readonly readyMs: number
}

/**
 * `docker build` as BuildKit does it, which this host's CLI cannot (no buildx plugin): the folder's
 * tar POSTed to the engine's `/build?version=2`, the request Kyozo's builder sends.
 */
const buildkitBuild = (dir: string, tag: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const host = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock"
    if (!host.startsWith("unix://"))
      return reject(new Error(`the BuildKit baseline needs a unix DOCKER_HOST, not ${host}`))
    const query = new URLSearchParams({
      t: tag,
      version: "2",
      labels: JSON.stringify({ [BenchLabel]: runId })
    })
    const req = http.request(
      {
        socketPath: host.slice("unix://".length),
        method: "POST",
        path: `/build?${query.toString()}`,
        headers: { "Content-Type": "application/x-tar" }
      },
      (res) => {
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (c: string) => (body += c))
        res.on("end", () =>
          res.statusCode !== 200 || body.includes('"errorDetail"')
            ? reject(new Error(`BuildKit baseline build failed: ${body.slice(-400)}`))
            : resolve()
        )
      }
    )
    req.on("error", reject)
    const tarProc = spawn("tar", ["-cf", "-", "-C", dir, "."], { stdio: ["ignore", "pipe", "inherit"] })
    tarProc.on("error", reject)
    tarProc.stdout.pipe(req)
  })

const rawDeploy = async (builder: "cli" | "buildkit" = "cli"): Promise<RawRun> => {
  const n = rawCount++
  const dir = path.join(rawRoot, `app${n}`)
  writeApp(dir, "benchapp")
  // The Dockerfile Kyozo would generate, written where the CLI expects it (not timed: a person
  // running the raw path already has a Dockerfile).
  const plan = await Effect.runPromise(detectPlan(dir))
  const generated = generateDockerfile(plan.services[0]!, baseImages)
  if (!generated) throw new Error("the generator produced no Dockerfile for the bench app")
  fs.writeFileSync(path.join(dir, "Dockerfile"), generated.content)
  fs.writeFileSync(path.join(dir, ".dockerignore"), DEFAULT_DOCKERIGNORE)
  const tag = `${rawRepository}:${n}`

  const started = performance.now()
  if (builder === "cli") await docker("build", "-q", "--label", `${BenchLabel}=${runId}`, "-t", tag, dir)
  else await buildkitBuild(dir, tag)
  const built = performance.now()
  const id = await docker("run", "-d", "--label", `${BenchLabel}=${runId}`, "-p", "127.0.0.1::3000", tag)
  const published = (await docker("port", id, "3000/tcp")).split("\n")[0]!
  const port = published.slice(published.lastIndexOf(":") + 1)
  const running = performance.now()
  await waitForHello(`http://127.0.0.1:${port}`)
  const done = performance.now()

  // Out of the timed window: stop it so rounds do not pile up running containers.
  await docker("rm", "-f", id)
  return { ms: done - started, buildMs: built - started, runMs: running - built, readyMs: done - running }
}

// ---------------------------------------------------------------------------------------------
// Where Kyozo's time goes: every span (activities, Docker calls, SQL statements) is recorded, and
// the median first deploy's are printed as a timeline from the API call.

interface Recorded {
  readonly name: string
  readonly start: number
  end: number
  statement?: string
}
const recorded: Array<Recorded> = []
let spanSeq = 0
const recordingTracer = Tracer.make({
  span: (name, parent, context, links, startTime, kind) => {
    const rec: Recorded = { name, start: Number(startTime) / 1e6, end: Number.NaN }
    recorded.push(rec)
    if (recorded.length > 200_000) recorded.splice(0, 100_000)
    const attributes = new Map<string, unknown>()
    let status: Tracer.SpanStatus = { _tag: "Started", startTime }
    const id = String(++spanSeq)
    return {
      _tag: "Span",
      name,
      spanId: id,
      traceId: "bench",
      parent,
      context,
      get status() {
        return status
      },
      attributes,
      links: [...links],
      sampled: true,
      kind,
      end: (endTime, exit) => {
        status = { _tag: "Ended", startTime, endTime, exit }
        rec.end = Number(endTime) / 1e6
      },
      attribute: (key, value) => {
        attributes.set(key, value)
        if (key === "db.query.text") rec.statement = String(value)
      },
      event: () => undefined,
      addLinks: () => undefined
    }
  },
  context: (f) => f()
})

/** Spans that started within [from, to] (wall-clock ms): steps with offsets, SQL as count and sum. */
const spanReport = (from: number, to: number): string => {
  const inside = recorded.filter((r) => r.start >= from && r.start <= to && !Number.isNaN(r.end))
  const sql = inside.filter((r) => r.name.startsWith("sql."))
  const sqlMs = sql.reduce((n, r) => n + (r.end - r.start), 0)
  const steps = inside
    .filter((r) => !r.name.startsWith("sql.") && r.end - r.start >= 2)
    .map((r) => `${r.name}@${Math.round(r.start - from)}+${Math.round(r.end - r.start)}`)
  // KYOZO_BENCH_SQL=1: which statements, in order (the first words of each).
  const statements =
    process.env.KYOZO_BENCH_SQL === "1"
      ? `\n  SQL: ${sql.map((r) => `${Math.round(r.start - from)}:${(r.statement ?? r.name).replace(/\s+/g, " ").slice(0, 48)}`).join("\n  SQL: ")}`
      : ""
  return `${sql.length} SQL statements (${Math.round(sqlMs)} ms in total); spans (name@start+duration ms): ${steps.join(" ")}${statements}`
}

// ---------------------------------------------------------------------------------------------
// Kyozo: the Deployer in-process, as a server builds it

const Repos = Layer.mergeAll(
  ServiceRepo.Default,
  DeploymentRepo.Default,
  DeploymentEventRepo.Default,
  TopologyRepo.Default,
  TeamRepo.Default
)

// Production deploy settings except the drain and graceful stop of retired containers: those run
// in the background after the deploy has answered, and are shortened so rounds do not overlap them.
const AppLayer = DeployerLive.layerAll({
  dataDir,
  workspacesRoot: workspaces,
  settings: { drainTimeout: "1 second", stopTimeoutSeconds: 1 }
}).pipe(
  Layer.provideMerge(Layer.mergeAll(ImageBuilder.Default, InProcessEdge.layer({ reason: "bench" }), Repos)),
  Layer.provideMerge(DurableEngine.layer("pglite")),
  Layer.provideMerge(DockerRuntime.layer),
  Layer.provideMerge(Database.migrated(Database.layerPglite(dataDir))),
  Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)),
  Layer.provide(Layer.setTracer(recordingTracer))
)

type App = ManagedRuntime.ManagedRuntime<
  Layer.Layer.Success<typeof AppLayer>,
  Layer.Layer.Error<typeof AppLayer>
>

const deployThrough = (app: App, folder: string, name: string, force = false): Promise<DeploymentSummary> =>
  app.runPromise(
    Effect.gen(function* () {
      const deployer = yield* Deployer
      const progress = yield* Stream.runCollect(
        deployer.deploy(teamId, { source: { _tag: "Path", path: folder }, name, ...(force ? { force } : {}) })
      )
      const deployed = Chunk.toReadonlyArray(progress).flatMap((p) =>
        p._tag === "Deployed" ? [p.deployment] : []
      )
      if (deployed.length !== 1)
        return yield* Effect.dieMessage(`expected one deployment, got ${deployed.length}`)
      return deployed[0]!
    })
  )

/** Until the retired container of a redeploy is gone: background work must not overlap the next timing. */
const settle = (app: App, serviceId: string): Promise<void> =>
  app.runPromise(
    Effect.gen(function* () {
      const runtime = yield* ContainerRuntime
      for (let i = 0; i < 100; i++) {
        const owned = yield* runtime.listContainers({ all: true, labels: { "kyozo.service": serviceId } })
        if (owned.length <= 1) return
        yield* Effect.sleep("100 millis")
      }
    }).pipe(Effect.orDie)
  )

interface KyozoRound {
  readonly firstMs: number
  readonly first: DeploymentSummary
  readonly spans: string
  readonly redeployMs: number
  readonly redeploy: DeploymentSummary
  readonly forcedMs: number
}

let kyozoCount = 0

const kyozoFirstDeploy = async (
  app: App
): Promise<{ ms: number; summary: DeploymentSummary; folder: string; name: string; spans: string }> => {
  const name = `bench${kyozoCount++}`
  const folder = path.join(workspaces, name)
  writeApp(folder, name)
  const started = performance.now()
  const summary = await deployThrough(app, folder, name)
  if (summary.url === null) throw new Error(`deployment ${summary.deploymentId} has no URL`)
  await waitForHello(summary.url)
  const ended = performance.now()
  const spans = spanReport(performance.timeOrigin + started, performance.timeOrigin + ended)
  return { ms: ended - started, summary, folder, name, spans }
}

const kyozoRedeploy = async (
  app: App,
  folder: string,
  name: string,
  force = false
): Promise<{ ms: number; summary: DeploymentSummary }> => {
  const started = performance.now()
  const summary = await deployThrough(app, folder, name, force)
  await waitForHello(summary.url!)
  const ms = performance.now() - started
  if (summary.built)
    throw new Error("the unchanged redeploy built an image: the content-addressed cache missed")
  if (summary.status !== (force ? "succeeded" : "unchanged"))
    throw new Error(`the ${force ? "forced" : "unchanged"} redeploy ended ${summary.status}`)
  await settle(app, summary.serviceId)
  return { ms, summary }
}

/** Step times of a deployment relative to its first event (why the Kyozo side costs what it does). */
const timeline = (app: App, d: DeploymentSummary): Promise<string> =>
  app.runPromise(
    Effect.gen(function* () {
      const events = yield* DeploymentEventRepo
      const steps = (yield* events.listByService(teamId, d.serviceId, { limit: 200 })).filter(
        (e) => e.deploymentId === d.deploymentId
      )
      const t0 = steps[0]?.createdAt.getTime() ?? 0
      return steps.map((e) => `${e.type}+${e.createdAt.getTime() - t0}`).join(" ")
    }).pipe(Effect.orDie)
  )

// ---------------------------------------------------------------------------------------------
// Cleanup: only what this run created

const cleanup = async (): Promise<void> => {
  const quiet = (p: Promise<unknown>) => p.catch(() => undefined)
  for (const filter of [`label=${BenchLabel}=${runId}`, `label=kyozo.team=${teamId}`]) {
    const containers = (await quiet(docker("ps", "-aq", "--filter", filter))) as string | undefined
    const ids = (containers ?? "").split("\n").filter((s) => s !== "")
    if (ids.length > 0) await quiet(docker("rm", "-f", "-v", ...ids))
  }
  for (const filter of [
    `label=${BenchLabel}=${runId}`,
    `label=kyozo.team=${teamId}`,
    `reference=${rawRepository}`
  ]) {
    const images = (await quiet(docker("images", "-q", "--filter", filter))) as string | undefined
    const ids = [...new Set((images ?? "").split("\n").filter((s) => s !== ""))]
    if (ids.length > 0) await quiet(docker("rmi", "-f", ...ids))
  }
  await quiet(docker("network", "rm", `kyozo-${teamId}`))
  fs.rmSync(root, { recursive: true, force: true })
}

// ---------------------------------------------------------------------------------------------

const main = async () => {
  for (const image of [NODE_IMAGE, STATIC_IMAGE]) {
    await docker("image", "inspect", image).catch(() => {
      throw new Error(`missing base image ${image}: run scripts/base-images.sh`)
    })
  }
  fs.mkdirSync(workspaces, { recursive: true })
  fs.mkdirSync(rawRoot, { recursive: true })
  console.log(`bench/deploy: ${ROUNDS} rounds, run ${runId}, team ${teamId}, base ${NODE_IMAGE}`)

  const setupStart = performance.now()
  const app: App = ManagedRuntime.make(AppLayer)
  try {
    await app.runPromise(
      Effect.gen(function* () {
        const teams = yield* TeamRepo
        yield* teams.create({ id: teamId, name: `bench-${runId}` })
        yield* DurableEngine.awaitReady({ timeout: "30 seconds" })
      })
    )
    console.log(`setup (PGlite, migrations, durable engine): ${fmt(performance.now() - setupStart)}`)

    // Warm-up, not counted: the first build of a process pays JIT and the engine's first look at
    // the base image on both sides.
    const warmRaw = await rawDeploy()
    const warm = await kyozoFirstDeploy(app)
    console.log(`warm-up (not counted): raw ${fmt(warmRaw.ms)}, kyozo ${fmt(warm.ms)}`)

    await rawDeploy("buildkit")
    const raw: Array<RawRun> = []
    const rawBuildkit: Array<RawRun> = []
    const rounds: Array<KyozoRound> = []
    for (let i = 0; i < ROUNDS; i++) {
      // Alternate who goes first, so neither side always runs on a machine still busy with the other.
      let rawRun: RawRun
      let bkRun: RawRun
      let first: Awaited<ReturnType<typeof kyozoFirstDeploy>>
      if (i % 2 === 0) {
        rawRun = await rawDeploy()
        bkRun = await rawDeploy("buildkit")
        first = await kyozoFirstDeploy(app)
      } else {
        first = await kyozoFirstDeploy(app)
        bkRun = await rawDeploy("buildkit")
        rawRun = await rawDeploy()
      }
      rawBuildkit.push(bkRun)
      if (!first.summary.built)
        throw new Error("a fresh folder was not built: the bench measured a cache hit")
      const again = await kyozoRedeploy(app, first.folder, first.name)
      const forced = await kyozoRedeploy(app, first.folder, first.name, true)
      raw.push(rawRun)
      rounds.push({
        firstMs: first.ms,
        first: first.summary,
        spans: first.spans,
        redeployMs: again.ms,
        redeploy: again.summary,
        forcedMs: forced.ms
      })
      console.log(
        `round ${i + 1}: raw ${fmt(rawRun.ms)} (build ${fmt(rawRun.buildMs)}, run ${fmt(rawRun.runMs)}, ready ${fmt(rawRun.readyMs)}) | raw BuildKit ${fmt(bkRun.ms)} (build ${fmt(bkRun.buildMs)}) | kyozo first ${fmt(first.ms)} (engine-reported ${fmt(first.summary.durationMs)}) | kyozo unchanged redeploy ${fmt(again.ms)} (server-side ${fmt(again.summary.durationMs)}) | forced ${fmt(forced.ms)}`
      )
    }

    const rawMedian = median(raw.map((r) => r.ms))
    const firstMedian = median(rounds.map((r) => r.firstMs))
    const redeployMedian = median(rounds.map((r) => r.redeployMs))
    const mid = [...rounds].sort((a, b) => a.firstMs - b.firstMs)[Math.floor(rounds.length / 2)]!
    console.log("")
    console.log(`raw docker build + run + wait   median ${fmt(rawMedian)}`)
    console.log(`kyozo first deploy (to answer)  median ${fmt(firstMedian)}`)
    console.log(
      `raw split (medians)             build ${fmt(median(raw.map((r) => r.buildMs)))}, run ${fmt(median(raw.map((r) => r.runMs)))}, ready ${fmt(median(raw.map((r) => r.readyMs)))}`
    )
    const bkMedian = median(rawBuildkit.map((r) => r.ms))
    console.log(
      `raw with BuildKit (API build)   median ${fmt(bkMedian)} (build ${fmt(median(rawBuildkit.map((r) => r.buildMs)))}; this host's docker CLI has no buildx, so \`docker build\` above is the classic builder)`
    )
    console.log(`ratio kyozo/raw (first deploy)  ${(firstMedian / rawMedian).toFixed(2)}x (ratio of medians)`)
    console.log(
      `ratio kyozo/raw BuildKit        ${(firstMedian / bkMedian).toFixed(2)}x (ratio of medians), ${median(rounds.map((r, i) => r.firstMs / rawBuildkit[i]!.ms)).toFixed(2)}x (median of per-round ratios)`
    )
    // Each round's pair ran back to back, so its ratio is less exposed to load drift between rounds.
    const paired = median(rounds.map((r, i) => r.firstMs / raw[i]!.ms))
    console.log(`ratio kyozo/raw (first deploy)  ${paired.toFixed(2)}x (median of per-round ratios)`)
    console.log(
      `kyozo unchanged redeploy        median ${fmt(redeployMedian)} to answering, server-side ${fmt(median(rounds.map((r) => r.redeploy.durationMs)))} (status unchanged, nothing created)`
    )
    console.log(
      `kyozo forced redeploy           median ${fmt(median(rounds.map((r) => r.forcedMs)))} (new container, health gate, switch)`
    )
    console.log(`median first deploy's steps (ms after the first event): ${await timeline(app, mid.first)}`)
    console.log(`median first deploy, from the call: ${mid.spans}`)
    const midRe = [...rounds].sort((a, b) => a.redeployMs - b.redeployMs)[Math.floor(rounds.length / 2)]!
    console.log(`median redeploy's steps (ms after the first event): ${await timeline(app, midRe.redeploy)}`)
  } finally {
    await app.dispose().catch((e) => console.error(`dispose: ${String(e)}`))
    await cleanup()
  }
}

main().then(
  () => process.exit(0),
  async (e) => {
    console.error(e)
    await cleanup().catch(() => undefined)
    process.exit(1)
  }
)

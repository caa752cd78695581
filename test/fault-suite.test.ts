/**
 * The fault suite, on the real Docker engine (skipped with a loud warning without one;
 * KYOZO_REQUIRE_DOCKER=1 makes that a failure in CI). Every figure it measures is printed.
 *
 * (a) a container killed behind Kyozo's back is restarted by the next health pass;
 * (b) a container whose HTTP check fails is restarted with backoff, then marked failed past intensity;
 * (c) cleanup next to foreign containers, images, networks and volumes leaves them alone;
 * (d) 100 concurrent deploy requests for 10 services → exactly 10 serving containers (mock runtime);
 * (e) a Kyozo process SIGKILLed mid-cleanup: after a restart the database agrees with the engine;
 * (f) dockerd SIGKILLed during a deploy: typed failures fast, breaker opens and closes, no orphans.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, describe, expect, it, layer } from "@effect/vitest"
import { type DeployProgress } from "@kyozo/api/domain/Deploy"
import { makeTeamId } from "@kyozo/api/domain/Ids"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import * as InProcessEdge from "@kyozo/core/edge/InProcessEdge"
import * as CircuitBreaker from "@kyozo/core/engine/CircuitBreaker"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as DockerRuntime from "@kyozo/core/engine/DockerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import * as MockRuntime from "@kyozo/core/engine/MockRuntime"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { TopologyRepo } from "@kyozo/core/store/TopologyRepo"
import { MaintenancePasses } from "@kyozo/core/supervision/MaintenancePasses"
import { Deployer } from "@kyozo/workers/deploy/Deployer"
import * as DeployerLive from "@kyozo/workers/deploy/DeployerLive"
import * as DurableEngine from "@kyozo/workers/deploy/DurableEngine"
import * as Reconciler from "@kyozo/workers/maintenance/Reconciler"
import { RecoverySettings } from "@kyozo/workers/maintenance/RestartPolicy"
import * as Workers from "@kyozo/workers/Workers"
import { Chunk, Duration, Effect, Either, Fiber, Layer, Stream } from "effect"

import { makeTempDir, pgliteLayer } from "./support/database.js"
import {
  dockerdPids,
  dockerReachable,
  dockerSuite,
  NodeImage,
  removeTeamObjects,
  requireBaseImages,
  startDocker,
  StaticImage,
  tarOf,
  uniqueName
} from "./support/docker.js"
import { testEdgeLayer } from "./support/edge.js"
import { repoRoot } from "./support/server.js"

const docker = await dockerSuite("fault-suite")
if (docker.available) await requireBaseImages(docker.client)

// Generated Dockerfiles take FROM lines from here (read when a layer is built).
process.env.KYOZO_BASE_IMAGES = JSON.stringify({ node: NodeImage, static: StaticImage })

const TEAM = "team_faults"

const reset = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`TRUNCATE service_recovery, health_checks, metric_samples, container_deployment_events,
             container_service_dependencies, deployments, container_service_instances, teams CASCADE`
  yield* sql`INSERT INTO teams (id, name) VALUES (${TEAM}, 'faults')`
})

const insertService = (
  id: string,
  containerId: string | null,
  options: {
    readonly policy?: string
    readonly healthConfig?: Record<string, unknown>
    readonly port?: number
  } = {}
) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql`INSERT INTO container_service_instances ${sql.insert({
        id,
        team_id: TEAM,
        name: id.replace(/_/g, "-"),
        desired_state: "running",
        status: "running",
        container_id: containerId,
        restart_policy: options.policy ?? "on-failure",
        internal_port: options.port ?? 8080,
        health_config: JSON.stringify(options.healthConfig ?? {})
      })}`
  )

/** A kyozo-labelled busybox httpd on 8080, published on 127.0.0.1 (ephemeral port). */
const httpdContainer = (serviceId: string) =>
  Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const ref = yield* runtime.createContainer({
      name: uniqueName(`kyozo-fault-${serviceId.replace(/_/g, "-")}`),
      image: StaticImage,
      // A shell that exits on SIGTERM: httpd as PID 1 ignores it, and every restart would wait 10 s.
      cmd: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h / & wait"],
      labels: Labels.labelsFor({ teamId: TEAM, serviceId }, docker.labels),
      ports: [{ containerPort: 8080 }]
    })
    yield* runtime.startContainer(ref.id)
    return ref.id
  })

const serviceRow = (id: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ status: string; restart_count: number }>`
        SELECT status, restart_count FROM container_service_instances WHERE id = ${id}`,
      (r) => r[0]!
    )
  )

const eventTypes = (serviceId: string | null, type?: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ type: string; data: Record<string, unknown> }>`
        SELECT type, data FROM container_deployment_events
        WHERE ${serviceId === null ? sql`true` : sql`service_id = ${serviceId}`}
          AND ${type === undefined ? sql`type <> 'health.changed'` : sql`type = ${type}`}
        ORDER BY id`,
      (rows) => rows
    )
  )

const healthPass = Effect.flatMap(MaintenancePasses, (p) => p.health)
const cleanupPass = Effect.flatMap(MaintenancePasses, (p) => p.cleanup)

const Live = Workers.layer.pipe(
  Layer.provideMerge(DockerRuntime.layerWith({ dockerHost: process.env.DOCKER_HOST, timeout: "20 seconds" })),
  Layer.provideMerge(pgliteLayer),
  Layer.orDie
)

const exists = (kind: "container" | "image" | "network" | "volume", id: string) =>
  Effect.promise(async () => {
    try {
      if (kind === "container") await docker.client.getContainer(id).inspect()
      else if (kind === "image") await docker.client.getImage(id).inspect()
      else if (kind === "network") await docker.client.getNetwork(id).inspect()
      else await docker.client.getVolume(id).inspect()
      return true
    } catch {
      return false
    }
  })

describe.skipIf(!docker.available)("fault suite (real engine)", () => {
  layer(Live, { excludeTestServices: true, timeout: "240 seconds" })((it) => {
    it.effect("(a) a container killed behind Kyozo's back (docker kill) is restarted by the next pass", () =>
      Effect.gen(function* () {
        yield* reset
        const c = yield* httpdContainer("svc_killed")
        yield* insertService("svc_killed", c, { healthConfig: { type: "tcp" } })
        const first = yield* healthPass
        expect(first.failures).toBe(0)
        yield* Effect.promise(() => docker.client.getContainer(c).kill())
        const killedAt = performance.now()
        const report = yield* healthPass
        const recoveredMs = performance.now() - killedAt
        expect(report.notes).toContain("svc_killed restarted")
        const info = yield* Effect.promise(() => docker.client.getContainer(c).inspect())
        expect(info.State.Running).toBe(true)
        expect((yield* serviceRow("svc_killed")).restart_count).toBe(1)
        expect((yield* eventTypes("svc_killed")).map((e) => e.type)).toEqual(["service.restarted"])
        console.log(
          `[fault-suite] (a) docker kill → running again after one pass: ${recoveredMs.toFixed(0)} ms`
        )
      })
    )

    it.effect("(b) a failing health check: restarted with backoff, then failed past intensity", () =>
      Effect.gen(function* () {
        yield* reset
        const c = yield* httpdContainer("svc_sick")
        // httpd answers 404 on this path: unhealthy on every probe.
        yield* insertService("svc_sick", c, {
          policy: "always",
          healthConfig: { type: "http", path: "/no-such-page", failureThreshold: 1 }
        })
        const started = performance.now()
        const restarts: Array<number> = []
        let failedAt: number | null = null
        let lastNotes: ReadonlyArray<string> = []
        while (performance.now() - started < 30_000 && failedAt === null) {
          const report = yield* healthPass
          lastNotes = report.notes
          const t = performance.now() - started
          if (report.notes.includes("svc_sick restarted")) restarts.push(t)
          if ((yield* eventTypes("svc_sick")).some((e) => e.type === "service.failed")) failedAt = t
          yield* Effect.sleep("250 millis")
        }
        // MaxR = 3 with a 1 s base: restarts at once, then after 1 s, then after 2 s; the 4th gives up.
        expect(restarts).toHaveLength(3)
        const delays = (yield* eventTypes("svc_sick", "service.restarted")).map((e) => e.data.delaySeconds)
        expect(delays).toEqual([0, 1, 2])
        // The passes saw them spaced at least that far apart (minus one pass of slack).
        const gaps = restarts.slice(1).map((t, i) => t - restarts[i]!)
        expect(gaps[0]!).toBeGreaterThanOrEqual(1000 - 300)
        expect(gaps[1]!).toBeGreaterThanOrEqual(2000 - 300)
        const seen = (yield* eventTypes("svc_sick")).map((e) => e.type)
        expect({ failedAt: failedAt !== null, seen, lastNotes }).toMatchObject({ failedAt: true })
        const types = (yield* eventTypes("svc_sick")).map((e) => e.type)
        expect(types.filter((t) => t === "service.restarted")).toHaveLength(3)
        expect(types).toContain("service.failed")
        expect(types).toContain("alert.fired")
        // Failed means left alone: another pass restarts nothing.
        const after = yield* healthPass
        expect(after.notes).not.toContain("svc_sick restarted")
        console.log(
          `[fault-suite] (b) restarts at ${restarts.map((t) => `${(t / 1000).toFixed(1)} s`).join(", ")}; ` +
            `gaps ${gaps.map((g) => `${(g / 1000).toFixed(1)} s`).join(", ")}; marked failed at ${((failedAt ?? 0) / 1000).toFixed(1)} s`
        )
      }).pipe(
        Effect.provide(
          Layer.succeed(RecoverySettings, {
            backoffBase: Duration.seconds(1),
            backoffMax: Duration.seconds(8),
            backoffResetAfter: Duration.minutes(10),
            maxRestarts: 3,
            maxWindow: Duration.minutes(1)
          })
        )
      )
    )

    it.effect(
      "(c) cleanup next to foreign containers, images, networks and volumes: those are untouched",
      () =>
        Effect.gen(function* () {
          yield* reset
          const runtime = yield* ContainerRuntime
          const sql = yield* SqlClient.SqlClient
          // Foreign objects: no kyozo.managed label, but tempting (exited, service-looking labels).
          const foreignLabels = { ...docker.labels, [Labels.Service]: "svc_gone" }
          const foreignContainer = yield* Effect.promise(() =>
            docker.client.createContainer({
              name: uniqueName("foreign"),
              Image: StaticImage,
              Cmd: ["true"],
              Labels: foreignLabels
            })
          )
          yield* Effect.promise(() => foreignContainer.start().then(() => foreignContainer.wait()))
          const foreignImageTag = `${uniqueName("foreign-image")}:latest`
          yield* Effect.promise(async () => {
            const stream = await docker.client.buildImage(
              (await tarOf({ Dockerfile: `FROM ${StaticImage}\nLABEL foreign=yes\n` })) as any,
              { t: foreignImageTag, labels: foreignLabels }
            )
            await new Promise((resolve, reject) =>
              docker.client.modem.followProgress(stream, (e: unknown) => (e ? reject(e) : resolve(null)))
            )
          })
          docker.track("image", foreignImageTag)
          const foreignNetwork = yield* Effect.promise(() =>
            docker.client.createNetwork({ Name: uniqueName("foreign-net"), Labels: foreignLabels })
          )
          const foreignVolume = uniqueName("foreign-vol")
          yield* Effect.promise(() =>
            docker.client.createVolume({ Name: foreignVolume, Labels: foreignLabels })
          )

          // Kyozo's own leftovers of a deleted service: all of them should go.
          yield* insertService("svc_gone", null)
          yield* sql`UPDATE container_service_instances SET deleted_at = now(), desired_state = 'removed', status = 'removed'
                   WHERE id = 'svc_gone'`
          const owner = { teamId: TEAM, serviceId: "svc_gone", deploymentId: "dep_old" }
          const kyozoContainer = yield* runtime.createContainer({
            name: uniqueName("kyozo-gone"),
            image: StaticImage,
            cmd: ["true"],
            labels: Labels.labelsFor(owner, docker.labels)
          })
          const kyozoImageTag = `${uniqueName("kyozo-gone-image")}:v1`
          yield* runtime
            .buildImage({
              context: Stream.fromEffect(
                Effect.promise(() => tarOf({ Dockerfile: `FROM ${StaticImage}\nLABEL rev=1\n` }))
              ).pipe(Stream.map((b) => new Uint8Array(b))),
              tag: kyozoImageTag,
              labels: Labels.labelsFor(owner, docker.labels)
            })
            .pipe(Stream.runDrain)
          docker.track("image", kyozoImageTag)
          const kyozoNetwork = yield* runtime.createNetwork({
            name: uniqueName("kyozo-gone-net"),
            labels: Labels.labelsFor(owner, docker.labels)
          })
          const kyozoVolume = yield* runtime.createVolume({
            name: uniqueName("kyozo-gone-vol"),
            labels: Labels.labelsFor(owner, docker.labels)
          })

          const started = performance.now()
          const report = yield* cleanupPass
          const cleanupMs = performance.now() - started

          expect(yield* exists("container", foreignContainer.id)).toBe(true)
          expect(yield* exists("image", foreignImageTag)).toBe(true)
          expect(yield* exists("network", foreignNetwork.id)).toBe(true)
          expect(yield* exists("volume", foreignVolume)).toBe(true)
          expect(yield* exists("image", StaticImage)).toBe(true)

          expect(yield* exists("container", kyozoContainer.id)).toBe(false)
          expect(yield* exists("image", kyozoImageTag)).toBe(false)
          expect(yield* exists("network", kyozoNetwork.id)).toBe(false)
          expect(yield* exists("volume", kyozoVolume.name)).toBe(false)

          const removed = (yield* eventTypes("svc_gone", "cleanup.removed")).map((e) => e.data.kind).sort()
          expect(removed).toEqual(["container", "image", "network", "volume"])
          console.log(
            `[fault-suite] (c) cleanup pass ${cleanupMs.toFixed(0)} ms: removed ${removed.join(", ")}; ` +
              `foreign container, image, network, volume untouched; notes: ${report.notes.join("; ")}`
          )
        })
    )
  })
})

// ---------------------------------------------------------------------------------------------
// (d) 100 concurrent deploy requests for 10 services.
//
// On the mock runtime: the in-process Deployer and durable engine are the real ones; only the
// engine is in memory, so the figure measures Kyozo's own serialisation, not build speed on 2 cores.

const workspaces = makeTempDir("kyozo-fault-ws-")
const deployData = makeTempDir("kyozo-fault-data-")

const DeployLayer = DeployerLive.layerAll({
  dataDir: deployData,
  workspacesRoot: workspaces,
  settings: {
    healthTimeout: "2 seconds",
    healthPollInterval: "20 millis",
    drainTimeout: "50 millis",
    probe: () => Effect.succeed(true)
  }
}).pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      ImageBuilder.Default,
      // Mock runtime: nothing listens behind the routes, so the in-process edge (a unit-test tool) suffices.
      InProcessEdge.layer({ reason: "fault-suite (d), mock runtime" }),
      ServiceRepo.Default,
      DeploymentRepo.Default,
      DeploymentEventRepo.Default,
      TopologyRepo.Default,
      TeamRepo.Default
    )
  ),
  Layer.provideMerge(DurableEngine.layerTest),
  Layer.provideMerge(MockRuntime.layer),
  Layer.provideMerge(pgliteLayer),
  Layer.orDie
)

describe("(d) 100 concurrent deploy requests for 10 services", () => {
  layer(DeployLayer, { excludeTestServices: true, timeout: "180 seconds" })((it) => {
    it.effect(
      "exactly 10 serving containers, only typed failures",
      () =>
        Effect.gen(function* () {
          const teams = yield* TeamRepo
          const teamId = makeTeamId()
          yield* teams.create({ id: teamId, name: `faults-${teamId}` })
          const names = Array.from({ length: 10 }, (_, i) => `site-${i}`)
          for (const name of names) {
            const dir = path.join(workspaces, name)
            fs.mkdirSync(dir, { recursive: true })
            fs.writeFileSync(path.join(dir, "index.html"), `<h1>${name}</h1>\n`)
          }
          const deployer = yield* Deployer
          const started = performance.now()
          const outcomes = yield* Effect.forEach(
            Array.from({ length: 100 }, (_, i) => names[i % 10]!),
            (name) =>
              deployer
                .deploy(teamId, { source: { _tag: "Path", path: name }, name })
                .pipe(Stream.runLast, Effect.either),
            { concurrency: "unbounded" }
          )
          const elapsedMs = performance.now() - started
          const failures = outcomes.flatMap((o) => (Either.isLeft(o) ? [o.left] : []))
          // Failures must be typed (tagged) errors, never defects or untagged throwables.
          for (const f of failures) expect(typeof (f as { _tag?: unknown })._tag).toBe("string")
          const succeeded = outcomes.filter((o) => Either.isRight(o)).length
          expect(succeeded).toBeGreaterThanOrEqual(10)
          const runtime = yield* ContainerRuntime
          // Old containers are retired in the background: wait for the count to settle.
          let running: ReadonlyArray<{ labels: Record<string, string> }> = []
          for (let i = 0; i < 100; i++) {
            running = (yield* runtime.listContainers({ labels: { [Labels.Team]: teamId } })).filter(
              (c) => c.state === "running"
            )
            if (running.length === 10) break
            yield* Effect.sleep("50 millis")
          }
          expect(running).toHaveLength(10)
          expect(new Set(running.map((c) => c.labels[Labels.Service])).size).toBe(10)
          const services = yield* Effect.forEach(names, (name) => deployer.get(teamId, name))
          for (const s of services) {
            expect(s.status).toBe("running")
            expect(running.some((c) => c.labels[Labels.Deployment] === s.currentDeploymentId)).toBe(true)
          }
          const failureTags = [...new Set(failures.map((f) => (f as { _tag: string })._tag))]
          console.log(
            `[fault-suite] (d) 100 deploys for 10 services (mock runtime) in ${elapsedMs.toFixed(0)} ms: ` +
              `${succeeded} succeeded, ${failures.length} typed failures ${JSON.stringify(failureTags)}; 10 serving containers`
          )
        }),
      150_000
    )
  })
})

// ---------------------------------------------------------------------------------------------
// (e) Kyozo SIGKILLed mid-cleanup (test/support/cleanup-runner.ts, the deploy-crash pattern).

const runRunner = (args: ReadonlyArray<string>, killOn?: { prefix: string; count: number }) =>
  new Promise<{ lines: Array<string>; code: number | null; killed: boolean }>((resolve) => {
    const env: Record<string, string> = { ...(process.env as Record<string, string>) }
    delete env.DATABASE_URL
    const child = spawn(process.execPath, ["--import", "tsx", "test/support/cleanup-runner.ts", ...args], {
      cwd: repoRoot,
      env
    })
    const lines: Array<string> = []
    let partial = ""
    let killed = false
    child.stdout.on("data", (d: Buffer) => {
      partial += d.toString()
      const parts = partial.split("\n")
      partial = parts.pop() ?? ""
      lines.push(...parts)
      if (killOn && !killed && lines.filter((l) => l.startsWith(killOn.prefix)).length >= killOn.count) {
        killed = true
        child.kill("SIGKILL")
      }
    })
    let stderr = ""
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.once("exit", (code) => {
      if (code !== 0 && !killed) lines.push(`STDERR ${stderr}`)
      resolve({ lines, code, killed })
    })
  })

const payloadOf = (lines: ReadonlyArray<string>, tag: string) => {
  const line = lines.find((l) => l.startsWith(`${tag} `))
  if (!line) throw new Error(`no ${tag} line:\n${lines.join("\n")}`)
  return JSON.parse(line.slice(tag.length + 1))
}

describe.skipIf(!docker.available)("(e) Kyozo SIGKILLed mid-cleanup", () => {
  it("after a restart the cleanup finishes and the database agrees with the engine", async () => {
    const dataDir = makeTempDir("kyozo-fault-crashclean-")
    const team = `team_crash${Date.now().toString(36)}`
    const seeded = payloadOf(
      (await runRunner(["seed", dataDir, team, JSON.stringify(docker.labels), "6"])).lines,
      "SEEDED"
    )
    expect(seeded.old).toHaveLength(6)

    const t0 = performance.now()
    const crashed = await runRunner(["cleanup", dataDir, "400"], { prefix: "REMOVING", count: 3 })
    expect(crashed.killed).toBe(true)
    expect(crashed.lines.some((l) => l.startsWith("DONE"))).toBe(false)
    const killedAfterMs = performance.now() - t0

    const t1 = performance.now()
    const resumed = await runRunner(["cleanup", dataDir, "0"])
    const done = payloadOf(resumed.lines, "DONE")
    const resumeMs = performance.now() - t1
    const state = payloadOf((await runRunner(["check", dataDir, team])).lines, "STATE")

    // The engine holds exactly the current container, and the row points at it.
    expect(state.containers).toHaveLength(1)
    expect(state.containers[0].id).toBe(seeded.current)
    expect(state.containers[0].state).toBe("running")
    expect(state.service).toMatchObject({ container_id: seeded.current, status: "running" })
    // Every removal the second process made is an event; the one the kill interrupted may have
    // landed in the engine without its event, never the other way round.
    expect(done.acted).toBeGreaterThanOrEqual(6 - 3)
    expect(state.removedEvents.length).toBeGreaterThanOrEqual(done.acted)
    expect(state.removedEvents.length).toBeLessThanOrEqual(6)
    console.log(
      `[fault-suite] (e) SIGKILL ${killedAfterMs.toFixed(0)} ms into cleanup (3rd removal in flight); restart finished in ` +
        `${resumeMs.toFixed(0)} ms removing ${done.acted}; ${state.removedEvents.length}/6 removals have events; engine = database`
    )
  }, 120_000)
})

// ---------------------------------------------------------------------------------------------
// (f) dockerd SIGKILLed during a deploy (the docker-outage pattern: pidof, SIGKILL, wait; restart
// with scripts/start-docker.sh). The in-process deployer and the durable engine on PGlite, on the
// real engine behind the runtime breaker; the maintenance passes share that guarded runtime.

const outageWorkspaces = makeTempDir("kyozo-fault-outage-ws-")
const outageData = makeTempDir("kyozo-fault-outage-data-")
const outageTeam = makeTeamId()

const OutageLayer = Layer.mergeAll(
  DeployerLive.layerAll({
    dataDir: outageData,
    workspacesRoot: outageWorkspaces,
    settings: { healthTimeout: "30 seconds", drainTimeout: "1 second", stopTimeoutSeconds: 1 }
  }),
  Workers.layer
).pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      ImageBuilder.Default,
      testEdgeLayer(),
      ServiceRepo.Default,
      DeploymentRepo.Default,
      DeploymentEventRepo.Default,
      TopologyRepo.Default,
      TeamRepo.Default
    )
  ),
  Layer.provideMerge(DurableEngine.layer("pglite")),
  Layer.provideMerge(
    CircuitBreaker.layerRuntime({ failureThreshold: 3, resetAfter: "2 seconds", callTimeout: "10 seconds" })
  ),
  Layer.provideMerge(DockerRuntime.layerWith({ dockerHost: process.env.DOCKER_HOST, timeout: "10 seconds" })),
  Layer.provideMerge(pgliteLayer),
  Layer.orDie
)

const writeSite = (files: Record<string, string>) => {
  const dir = path.join(outageWorkspaces, "outage")
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content)
  return "outage"
}

const getText = (url: string) =>
  Effect.promise(() =>
    fetch(url, { signal: AbortSignal.timeout(2000) })
      .then(async (r) => `${r.status} ${await r.text()}`)
      .catch((e: Error) => `ERROR ${e.message}`)
  )

describe.skipIf(!docker.available)("(f) dockerd SIGKILLed during a deploy", () => {
  afterAll(async () => {
    // Whatever happened, leave an engine running for the suites after this one, and nothing of ours.
    if (!(await dockerReachable())) startDocker()
    await removeTeamObjects(docker.client, outageTeam)
  }, 180_000)

  layer(OutageLayer, { excludeTestServices: true, timeout: "300 seconds" })((it) => {
    it.effect(
      "typed failures fast, the breaker opens and closes, the deploy ends terminal, no orphans",
      () =>
        Effect.gen(function* () {
          const teams = yield* TeamRepo
          yield* teams.create({ id: outageTeam, name: `outage-${outageTeam}` })
          yield* DurableEngine.awaitReady({ timeout: "20 seconds" })
          const deployer = yield* Deployer
          const runtime = yield* ContainerRuntime
          const breaker = yield* CircuitBreaker.RuntimeBreaker
          const sql = yield* SqlClient.SqlClient

          // v1 serves.
          const v1 = yield* deployer
            .deploy(outageTeam, {
              source: { _tag: "Path", path: writeSite({ "index.html": "outage v1\n" }) },
              name: "outage"
            })
            .pipe(Stream.runCollect)
          const served = Chunk.toReadonlyArray(v1).flatMap((p) =>
            p._tag === "Deployed" ? [p.deployment] : []
          )
          expect(served).toHaveLength(1)
          const serviceId = served[0]!.serviceId
          const v1Deployment = served[0]!.deploymentId
          const v1Container = (yield* deployer.get(outageTeam, "outage")).containerId!
          expect(yield* getText(served[0]!.url!)).toBe("200 outage v1\n")

          // v2: its own Dockerfile with a slow step, so dockerd goes down in the middle of the build.
          const folder = writeSite({
            "index.html": "outage v2\n",
            Dockerfile: [
              `FROM ${StaticImage}`,
              "RUN sleep 60",
              "COPY index.html /site/index.html",
              "EXPOSE 8080",
              `CMD ["httpd", "-f", "-p", "8080", "-h", "/site"]`,
              ""
            ].join("\n")
          })
          const progress: Array<DeployProgress> = []
          const deployFiber = yield* deployer
            .deploy(outageTeam, { source: { _tag: "Path", path: folder }, name: "outage" })
            .pipe(
              Stream.runForEach((p) => Effect.sync(() => progress.push(p))),
              Effect.either,
              Effect.fork
            )
          // Wait until the slow step runs inside the build.
          for (let i = 0; i < 600; i++) {
            if (progress.some((p) => p._tag === "BuildLog" && /sleep 60/.test(p.line))) break
            yield* Effect.sleep("100 millis")
          }
          expect(progress.some((p) => p._tag === "BuildLog" && /sleep 60/.test(p.line))).toBe(true)
          yield* Effect.sleep("1 second")

          // SIGKILL dockerd (no graceful shutdown), wait until it is gone.
          const pids = dockerdPids()
          expect(pids.length).toBeGreaterThan(0)
          const stoppedAt = performance.now()
          for (const pid of pids) process.kill(pid, "SIGKILL")
          let openedAt: number | null = null
          const callTags: Array<string> = []
          const callMs: Array<number> = []
          // Calls during the outage: each answers with a typed error, and quickly.
          while (performance.now() - stoppedAt < 90_000) {
            const t = performance.now()
            const r = yield* Effect.either(runtime.listContainers({ labels: { [Labels.Team]: outageTeam } }))
            const tookMs = performance.now() - t
            if (Either.isLeft(r)) {
              callTags.push(r.left._tag)
              callMs.push(tookMs)
            }
            if (openedAt === null && (yield* breaker.status).state === "open") openedAt = performance.now()
            if (openedAt !== null && dockerdPids().length === 0 && callTags.includes("CircuitOpen")) break
            yield* Effect.sleep("200 millis")
          }
          const gone = dockerdPids().length === 0 && !(yield* Effect.promise(() => dockerReachable(500)))
          expect(gone).toBe(true)
          expect(openedAt).not.toBeNull()
          expect(callTags.length).toBeGreaterThan(0)
          for (const tag of callTags)
            expect(["CircuitOpen", "DockerUnavailable", "DockerTimeout"]).toContain(tag)
          // While open, calls are refused without touching the engine.
          const fastStart = performance.now()
          const fast = yield* Effect.either(runtime.ping)
          const fastMs = performance.now() - fastStart
          expect(Either.isLeft(fast) && fast.left._tag).toBe("CircuitOpen")
          expect(fastMs).toBeLessThan(100)

          // The deploy ends with a typed failure, and its row is terminal.
          const outcome = yield* Fiber.join(deployFiber)
          expect(Either.isLeft(outcome)).toBe(true)
          if (Either.isLeft(outcome)) expect(typeof outcome.left._tag).toBe("string")
          const failureTag = Either.isLeft(outcome) ? outcome.left._tag : "none"
          // The test process is still here, answering: the Effect runtime and PGlite keep working.
          expect((yield* sql<{ one: number }>`SELECT 1 AS one`)[0]!.one).toBe(1)

          // dockerd back.
          const restartAt = performance.now()
          yield* Effect.sync(() => startDocker())
          let closedAt: number | null = null
          while (performance.now() - restartAt < 60_000) {
            yield* Effect.either(runtime.ping)
            if ((yield* breaker.status).state === "closed") {
              closedAt = performance.now()
              break
            }
            yield* Effect.sleep("250 millis")
          }
          expect(closedAt).not.toBeNull()
          expect((yield* breaker.status).lastChange).toMatchObject({ from: "half-open", to: "closed" })

          const deploymentRows = yield* sql<{ id: string; status: string }>`
            SELECT id, status FROM deployments WHERE service_id = ${serviceId} ORDER BY created_at`
          expect(deploymentRows).toHaveLength(2)
          expect(deploymentRows[0]).toMatchObject({ id: v1Deployment, status: "succeeded" })
          expect(["succeeded", "failed", "compensated"]).toContain(deploymentRows[1]!.status)

          // Recovery: the health pass restarts what the outage stopped, reconcile re-routes the
          // stable address, and a cleanup pass leaves exactly the serving container.
          const healthPass = Effect.flatMap(MaintenancePasses, (p) => p.health)
          let serving = false
          let recoveredAt: number | null = null
          const svcRow = yield* deployer.get(outageTeam, "outage")
          while (performance.now() - restartAt < 90_000) {
            yield* Effect.either(healthPass)
            yield* Effect.either(Reconciler.reconcile({ dispatchGrace: "0 millis" }))
            const info = yield* Effect.either(runtime.inspectContainer(svcRow.containerId!))
            serving =
              Either.isRight(info) &&
              info.right.running &&
              (yield* getText(svcRow.url!)).startsWith("200 outage")
            if (serving) {
              recoveredAt = performance.now()
              break
            }
            yield* Effect.sleep("500 millis")
          }
          expect(serving).toBe(true)
          const cleanup = yield* Effect.flatMap(MaintenancePasses, (p) => p.cleanup)
          const left = yield* runtime.listContainers({ all: true, labels: { [Labels.Service]: serviceId } })
          const current = yield* deployer.get(outageTeam, "outage")
          expect(left.map((c) => c.id)).toEqual([current.containerId])
          expect(left[0]!.state).toBe("running")
          if (deploymentRows[1]!.status !== "succeeded") expect(current.containerId).toBe(v1Container)

          console.log(
            `[fault-suite] (f) dockerd SIGKILL during build: breaker open ${(openedAt! - stoppedAt).toFixed(0)} ms after SIGKILL; ` +
              `outage calls ${JSON.stringify([...new Set(callTags)])} (max ${Math.max(...callMs).toFixed(0)} ms, open rejection ${fastMs.toFixed(1)} ms); ` +
              `deploy ended ${failureTag}, row ${deploymentRows[1]!.status}; breaker closed ${(closedAt! - restartAt).toFixed(0)} ms ` +
              `after restart began; serving again ${(recoveredAt! - restartAt).toFixed(0)} ms after restart began; ` +
              `cleanup: ${cleanup.notes.slice(0, 1).join("; ")}, ${cleanup.acted} containers removed; 1 container left`
          )
        }),
      300_000
    )
  })
})

/**
 * Helpers for test files that need the real Docker engine.
 *
 *   const docker = await dockerSuite("docker-runtime")   // top level of the test file
 *   describe.skipIf(!docker.available)("...", () => { ... })
 *
 * When the engine is unreachable the suite is skipped with a loud warning, or fails when
 * KYOZO_REQUIRE_DOCKER=1 (CI must not go green by skipping). Everything a test creates carries the
 * label `kyozo.test=<runId>` (or is `track`ed) and is removed in `afterAll`.
 */
import { execFileSync, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as http from "node:http"
import * as path from "node:path"

import { parseDockerHost } from "@kyozo/core/engine/DockerRuntime"
import Docker from "dockerode"
import * as tar from "tar-stream"
import { afterAll } from "vitest"

export const TestLabel = "kyozo.test"
export const NodeImage = "kyozo-local/node:20"
export const StaticImage = "kyozo-local/static:latest"

/** `kyozo-test-<random>`: unique per call, safe as container, network, volume and image name. */
export const uniqueName = (prefix = "kyozo-test"): string => `${prefix}-${randomBytes(5).toString("hex")}`

/** A dockerode client for the engine named by DOCKER_HOST (or the local socket). */
export const dockerClient = (): Docker => new Docker(parseDockerHost(process.env.DOCKER_HOST).options)

/** Pings the engine with a short deadline; never throws. */
export const dockerReachable = (timeoutMs = 2000): Promise<boolean> =>
  new Promise((resolve) => {
    const { options } = parseDockerHost(process.env.DOCKER_HOST)
    const req = http.request(
      options.socketPath
        ? { socketPath: options.socketPath, path: "/_ping", timeout: timeoutMs }
        : { host: options.host, port: Number(options.port), path: "/_ping", timeout: timeoutMs },
      (res) => {
        res.resume()
        resolve(res.statusCode === 200)
      }
    )
    req.on("error", () => resolve(false))
    req.on("timeout", () => {
      req.destroy()
      resolve(false)
    })
    req.end()
  })

export interface DockerSuite {
  readonly available: boolean
  /** Label value shared by every object this test file creates. */
  readonly runId: string
  /** `{ "kyozo.test": runId }`, to merge into the labels of every object. */
  readonly labels: Record<string, string>
  readonly client: Docker
  /** Registers objects that carry no test label (e.g. a tag) for removal in afterAll. */
  readonly track: (kind: "container" | "image" | "network" | "volume", idOrName: string) => void
}

/**
 * Decides whether a Docker test file runs, and registers the afterAll cleanup. Call at the top level
 * of the test file (top-level await).
 */
export const dockerSuite = async (suite: string): Promise<DockerSuite> => {
  const available = await dockerReachable()
  if (!available) {
    const endpoint = parseDockerHost(process.env.DOCKER_HOST).endpoint
    if (process.env.KYOZO_REQUIRE_DOCKER === "1") {
      throw new Error(
        `[${suite}] KYOZO_REQUIRE_DOCKER=1 but the Docker engine at ${endpoint} is not reachable. Run scripts/start-docker.sh.`
      )
    }
    const bar = "!".repeat(78)
    console.warn(
      `\n${bar}\n!! SKIPPING ${suite}: no Docker engine at ${endpoint}.\n!! These tests did NOT run. Start one with scripts/start-docker.sh, or set KYOZO_REQUIRE_DOCKER=1 to fail instead.\n${bar}\n`
    )
  }
  const runId = uniqueName()
  const client = dockerClient()
  const tracked: Array<{ kind: "container" | "image" | "network" | "volume"; id: string }> = []
  if (available) {
    afterAll(async () => {
      await cleanupTestObjects(client, runId, tracked)
    }, 60_000)
  }
  return {
    available,
    runId,
    labels: { [TestLabel]: runId },
    client,
    track: (kind, id) => {
      tracked.push({ kind, id })
    }
  }
}

const ignore = () => undefined

/** Removes every container, image, network and volume labelled `kyozo.test=<runId>`, plus tracked ones. */
export const cleanupTestObjects = async (
  client: Docker,
  runId: string,
  tracked: ReadonlyArray<{ kind: "container" | "image" | "network" | "volume"; id: string }> = []
): Promise<void> => {
  const filters = JSON.stringify({ label: [`${TestLabel}=${runId}`] })
  const containers = await client.listContainers({ all: true, filters }).catch(() => [])
  const containerIds = [
    ...containers.map((c) => c.Id),
    ...tracked.filter((t) => t.kind === "container").map((t) => t.id)
  ]
  await Promise.all(
    containerIds.map((id) => client.getContainer(id).remove({ force: true, v: true }).catch(ignore))
  )
  const networks = await client.listNetworks({ filters }).catch(() => [])
  for (const id of [
    ...networks.map((n) => n.Id),
    ...tracked.filter((t) => t.kind === "network").map((t) => t.id)
  ]) {
    await client.getNetwork(id).remove().catch(ignore)
  }
  const volumes = await client.listVolumes({ filters }).catch(() => ({ Volumes: [] }))
  for (const name of [
    ...(volumes.Volumes ?? []).map((v) => v.Name),
    ...tracked.filter((t) => t.kind === "volume").map((t) => t.id)
  ]) {
    await client.getVolume(name).remove().catch(ignore)
  }
  // Tags first (they may point at labelled images), then the labelled images themselves.
  for (const ref of tracked.filter((t) => t.kind === "image").map((t) => t.id)) {
    await client.getImage(ref).remove({ force: true }).catch(ignore)
  }
  const images = await client.listImages({ filters }).catch(() => [])
  for (const image of images) await client.getImage(image.Id).remove({ force: true }).catch(ignore)
}

/**
 * Removes what Kyozo made for one team in a test: its containers, images and network (by the
 * `kyozo.team` label and the network name). Nothing else is touched; failures are ignored.
 */
export const removeTeamObjects = async (client: Docker, teamId: string): Promise<void> => {
  const filters = JSON.stringify({ label: [`kyozo.team=${teamId}`] })
  const containers = await client.listContainers({ all: true, filters }).catch(() => [])
  await Promise.all(
    containers.map((c) =>
      client
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {})
    )
  )
  for (const i of await client.listImages({ filters }).catch(() => []))
    await client
      .getImage(i.Id)
      .remove({ force: true })
      .catch(() => {})
  await client
    .getNetwork(`kyozo-${teamId}`)
    .remove()
    .catch(() => {})
}

/** Removes the volumes Kyozo made for one team in a test (by the `kyozo.team` label); failures are ignored. */
export const removeTeamVolumes = async (client: Docker, teamId: string): Promise<void> => {
  const filters = JSON.stringify({ label: [`kyozo.team=${teamId}`] })
  for (const v of (await client.listVolumes({ filters }).catch(() => ({ Volumes: [] }))).Volumes ?? [])
    await client
      .getVolume(v.Name)
      .remove()
      .catch(() => {})
}

/** Whether the engine has a volume of that name. */
export const volumeExists = (client: Docker, name: string): Promise<boolean> =>
  client
    .getVolume(name)
    .inspect()
    .then(
      () => true,
      () => false
    )

/** Registers the afterAll that removes what Kyozo made for `teamId` (see removeTeamObjects). */
export const removeTeamAfterAll = (suite: DockerSuite, teamId: string): void => {
  if (suite.available) afterAll(() => removeTeamObjects(suite.client, teamId), 60_000)
}

/** Fails with a clear instruction when the local base images are missing. */
export const requireBaseImages = async (client: Docker = dockerClient()): Promise<void> => {
  const missing: Array<string> = []
  for (const image of [NodeImage, StaticImage]) {
    await client
      .getImage(image)
      .inspect()
      .catch(() => missing.push(image))
  }
  if (missing.length > 0) {
    throw new Error(`Missing base image(s) ${missing.join(", ")}: run scripts/base-images.sh`)
  }
}

/** A tar archive of the given files (a build context). */
export const tarOf = (files: Record<string, string | Uint8Array>): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const pack = tar.pack()
    const chunks: Array<Buffer> = []
    pack.on("data", (chunk: unknown) => void chunks.push(chunk as Buffer))
    pack.on("end", () => resolve(Buffer.concat(chunks)))
    pack.on("error", reject)
    for (const [name, content] of Object.entries(files)) {
      pack.entry({ name, mode: 0o644 }, typeof content === "string" ? content : Buffer.from(content))
    }
    pack.finalize()
  })

/** The pids of the running dockerd (none when it is down); the engine-outage suites SIGKILL them. */
export const dockerdPids = (): Array<number> => {
  try {
    return execFileSync("pidof", ["dockerd"], { encoding: "utf8" })
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
}

const startScript = path.resolve(import.meta.dirname, "..", "..", "scripts/start-docker.sh")

/** Starts dockerd again with `scripts/start-docker.sh` (which waits until it answers). */
export const startDocker = (timeoutMs = 120_000): void => {
  execFileSync("bash", [startScript], { stdio: "inherit", timeout: timeoutMs })
}

/** `startDocker` without blocking the event loop: samplers of the test go on while dockerd starts. */
export const startDockerAsync = (timeoutMs = 120_000): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn("bash", [startScript], { stdio: "inherit", timeout: timeoutMs })
    child.once("error", reject)
    child.once("exit", (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`start-docker.sh exited (${code ?? signal})`))
    )
  })

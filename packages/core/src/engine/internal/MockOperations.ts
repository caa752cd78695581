/**
 * The mock engine's `ContainerRuntime` operations: each one a guarded `call` (faults, hangs,
 * slowness, counting) over the simulated state in `MockEngine`, answering as Docker would.
 */
import {
  ContainerNotFound,
  DockerApiError,
  ImageNotFound,
  InvalidContainerState,
  NameConflict,
  NetworkNotFound,
  type RuntimeError,
  VolumeNotFound
} from "@kyozo/api/domain/RuntimeErrors"
import { Chunk, Deferred, Effect, Option, Stream } from "effect"

import {
  type ContainerRuntimeShape,
  type ContainerSummary,
  Defaults,
  type EngineEvent,
  type ExecResult,
  type PruneReport,
  type PublishedPort,
  type VolumeInfo
} from "../ContainerRuntime.js"
import { labelsFor, Managed } from "../Labels.js"
import { mockBuild } from "./MockBuild.js"
import {
  matchesLabels,
  type MockContainer,
  MockEndpoint,
  type MockEngine,
  type MockNetwork,
  normalizeImageRef
} from "./MockEngine.js"
import { hex64, unit } from "./MockIds.js"

export const mockOperations = (engine: MockEngine): ContainerRuntimeShape => {
  const {
    containers,
    containersByName,
    tags,
    networks,
    volumes,
    buildCache,
    history,
    emit,
    eventsAfter,
    unavailable,
    call,
    callStream,
    findImage,
    imageInfo,
    setTag,
    deleteImage,
    imageInUse,
    findNetwork,
    networkInfo,
    findContainer,
    lookup,
    isUp,
    materializeLogs,
    summary,
    info,
    portTaken,
    doStart,
    doExit,
    detachNetworks,
    stats,
    followLogs,
    images
  } = engine
  return {
    mode: "mock",
    endpoint: MockEndpoint,

    ping: call("ping", () => Effect.void),
    version: call("version", () =>
      Effect.succeed({ version: "24.0.0-mock", apiVersion: "1.43", os: "linux", arch: "amd64" })
    ),

    createContainer: (spec) =>
      call("createContainer", (now) => {
        const name = spec.name.startsWith("/") ? spec.name.slice(1) : spec.name
        const existing = containersByName.get(name)
        if (existing) {
          return Effect.fail(
            new NameConflict({
              kind: "container",
              name,
              detail: `Conflict. The container name "/${name}" is already in use by container "${existing}"`
            })
          )
        }
        const image = findImage(spec.image)
        if (!image) return Effect.fail(new ImageNotFound({ image: spec.image }))
        const networkName = spec.network ?? "bridge"
        const network = findNetwork(networkName)
        if (!network) return Effect.fail(new NetworkNotFound({ network: networkName }))
        const id = hex64(`container:${++engine.seq.container}:${name}`)
        const ports: Array<PublishedPort> = (spec.ports ?? []).map((p) => ({
          containerPort: p.containerPort,
          protocol: p.protocol ?? "tcp",
          hostIp: p.hostIp ?? Defaults.hostIp,
          hostPort: p.hostPort && p.hostPort > 0 ? p.hostPort : engine.seq.hostPort++
        }))
        const c: MockContainer = {
          id,
          name,
          image: spec.image,
          imageId: image.id,
          labels: { ...image.labels, ...labelsFor({}, spec.labels ?? {}) },
          spec,
          createdAt: now,
          ports,
          networks: new Set([network.name]),
          healthcheck: spec.healthcheck ?? image.healthcheck,
          load: Math.min(0.02 + unit(name, "cpu") * 0.3, (spec.nanoCpus ?? Defaults.nanoCpus) / 1e9),
          memFraction: 0.1 + unit(name, "mem") * 0.5,
          netRate: 1 + unit(name, "net") * 50,
          pids: 1 + Math.floor(unit(name, "pids") * 12),
          state: "created",
          startedAt: null,
          finishedAt: null,
          exitCode: null,
          restartCount: 0,
          oomKilled: false,
          healthOverride: null,
          runMs: 0,
          runSince: null,
          logs: [],
          logSeq: 0,
          heartbeatAt: now
        }
        containers.set(id, c)
        containersByName.set(name, id)
        network.containers.add(id)
        emit("container", "create", id, c.labels, now)
        return Effect.succeed({ id, name })
      }),

    startContainer: (id) =>
      call("startContainer", (now) =>
        Effect.flatMap(lookup(id), (c): Effect.Effect<void, RuntimeError> => {
          switch (c.state) {
            case "running":
            case "restarting":
              return Effect.void // 304: already started
            case "created":
            case "exited": {
              const taken = portTaken(c)
              if (taken) {
                return Effect.fail(
                  new DockerApiError({
                    operation: "startContainer",
                    status: 500,
                    detail: `Bind for ${taken.hostIp}:${taken.hostPort} failed: port is already allocated`
                  })
                )
              }
              doStart(c, now)
              return Effect.void
            }
            default:
              return Effect.fail(
                new InvalidContainerState({ container: id, state: c.state, operation: "start" })
              )
          }
        })
      ),

    stopContainer: (id) =>
      call("stopContainer", (now) =>
        Effect.flatMap(lookup(id), (c) => {
          if (isUp(c)) doExit(c, now, 0, "stop")
          return Effect.void // 304 when it was not running
        })
      ),

    restartContainer: (id) =>
      call("restartContainer", (now) =>
        Effect.flatMap(lookup(id), (c) => {
          if (c.state === "removing" || c.state === "dead") {
            return Effect.fail(
              new InvalidContainerState({ container: id, state: c.state, operation: "restart" })
            )
          }
          if (isUp(c)) doExit(c, now, 0, "stop")
          doStart(c, now)
          emit("container", "restart", c.id, c.labels, now)
          return Effect.void
        })
      ),

    removeContainer: (id, options) =>
      call("removeContainer", (now) => {
        const c = findContainer(id)
        if (!c) return Effect.void // already gone
        if (isUp(c)) {
          if (!options?.force) {
            return Effect.fail(
              new InvalidContainerState({ container: id, state: c.state, operation: "remove" })
            )
          }
          doExit(c, now, 137, "kill")
        }
        detachNetworks(c)
        containers.delete(c.id)
        containersByName.delete(c.name)
        emit("container", "destroy", c.id, c.labels, now)
        return Effect.void
      }),

    inspectContainer: (id) => call("inspectContainer", (now) => Effect.map(lookup(id), (c) => info(c, now))),

    listContainers: (filter) =>
      call("listContainers", (now) => {
        const out: Array<ContainerSummary> = []
        for (const c of containers.values()) {
          if (!filter?.all && !isUp(c)) continue
          if (!matchesLabels(c.labels, filter)) continue
          out.push(summary(c, now))
        }
        return Effect.succeed(out)
      }),

    logs: (id, options) =>
      callStream("logs", (now) => {
        const c = findContainer(id)
        if (!c) return Stream.fail(new ContainerNotFound({ container: id }))
        materializeLogs(c, now)
        let lines = c.logs
        if (options?.since !== undefined)
          lines = lines.filter((l) => (l.line.timestamp ?? 0) >= options.since!)
        if (options?.tail !== undefined) lines = options.tail <= 0 ? [] : lines.slice(-options.tail)
        const initial = Stream.fromIterable(lines.map((l) => l.line))
        if (!options?.follow || !isUp(c)) return initial
        return Stream.concat(initial, followLogs(c.id, c.logSeq))
      }),

    stats: (id) => call("stats", (now) => Effect.map(lookup(id), (c) => stats(c, now))),

    exec: (id, cmd) =>
      call("exec", (now) =>
        Effect.flatMap(lookup(id), (c): Effect.Effect<ExecResult, RuntimeError> => {
          if (c.state !== "running") {
            return Effect.fail(
              new InvalidContainerState({ container: id, state: c.state, operation: "exec" })
            )
          }
          const custom = engine.options.exec?.(info(c, now), cmd)
          if (custom) return Effect.succeed(custom)
          if (cmd[0] === "false") return Effect.succeed({ exitCode: 1, output: "" })
          const words = cmd[0] === "echo" ? cmd.slice(1) : cmd
          return Effect.succeed({ exitCode: 0, output: `${words.join(" ")}\n` })
        })
      ),

    buildImage: (options) => callStream("buildImage", () => mockBuild(engine)(options)),

    pullImage: (ref) =>
      callStream("pullImage", () => {
        const image = findImage(ref)
        if (!image) return Stream.fail(new ImageNotFound({ image: ref }))
        return Stream.make({
          _tag: "Progress" as const,
          status: `Status: Image is up to date for ${normalizeImageRef(ref)}`
        })
      }),

    pushImage: (ref) =>
      callStream("pushImage", () => {
        const image = findImage(ref)
        if (!image) return Stream.fail(new ImageNotFound({ image: ref }))
        engine.pushed.push(normalizeImageRef(ref))
        return Stream.make({ _tag: "Progress" as const, status: `Pushed ${normalizeImageRef(ref)}` })
      }),

    inspectImage: (ref) =>
      call("inspectImage", () => {
        const image = findImage(ref)
        return image ? Effect.succeed(imageInfo(image)) : Effect.fail(new ImageNotFound({ image: ref }))
      }),

    tagImage: (ref, tag) =>
      call("tagImage", (now) => {
        const image = findImage(ref)
        if (!image) return Effect.fail(new ImageNotFound({ image: ref }))
        setTag(tag, image, now)
        return Effect.void
      }),

    listImages: (filter) =>
      call("listImages", () =>
        Effect.succeed([...images.values()].filter((i) => matchesLabels(i.labels, filter)).map(imageInfo))
      ),

    removeImage: (ref, options) =>
      call("removeImage", (now) => {
        const image = findImage(ref)
        if (!image) return Effect.void // already gone
        const normalized = normalizeImageRef(ref)
        // A tag of an image with several tags: untag only, as Docker does.
        if (image.tags.length > 1 && image.tags.includes(normalized)) {
          image.tags = image.tags.filter((t) => t !== normalized)
          tags.delete(normalized)
          emit("image", "untag", image.id, image.labels, now)
          return Effect.void
        }
        const user = imageInUse(image)
        if (user && !options?.force) {
          return Effect.fail(
            new DockerApiError({
              operation: "removeImage",
              status: 409,
              detail: `conflict: unable to remove repository reference "${ref}" (must force) - container ${user.id.slice(0, 12)} is using its referenced image ${image.id.slice(7, 19)}`
            })
          )
        }
        deleteImage(image, now)
        return Effect.void
      }),

    pruneImages: (filter) =>
      call("pruneImages", (now) => {
        const removed: Array<string> = []
        let reclaimedBytes = 0
        for (const image of [...images.values()]) {
          if (image.labels[Managed] !== "true" || !matchesLabels(image.labels, filter)) continue
          if (imageInUse(image)) continue
          deleteImage(image, now)
          removed.push(image.id)
          reclaimedBytes += image.sizeBytes
        }
        return Effect.succeed<PruneReport>({ removed, reclaimedBytes })
      }),

    pruneBuildCache: (budget) =>
      call("pruneBuildCache", () => {
        // Like the engine: the oldest entries go first until the cache fits the budget.
        const removed: Array<string> = []
        let reclaimedBytes = 0
        let total = buildCache.reduce((n, e) => n + e.sizeBytes, 0)
        while (buildCache.length > 0 && total > budget.keepBytes) {
          const entry = buildCache.shift()!
          total -= entry.sizeBytes
          removed.push(entry.id)
          reclaimedBytes += entry.sizeBytes
        }
        return Effect.succeed<PruneReport>({ removed, reclaimedBytes })
      }),

    createNetwork: (spec) =>
      call("createNetwork", (now) => {
        if (networks.has(spec.name)) {
          return Effect.fail(
            new NameConflict({
              kind: "network",
              name: spec.name,
              detail: `network with name ${spec.name} already exists`
            })
          )
        }
        const network: MockNetwork = {
          id: hex64(`network:${spec.name}:${now}:${networks.size}`),
          name: spec.name,
          labels: labelsFor({}, spec.labels ?? {}),
          builtin: false,
          containers: new Set()
        }
        networks.set(spec.name, network)
        emit("network", "create", network.id, network.labels, now)
        return Effect.succeed(networkInfo(network))
      }),

    removeNetwork: (idOrName) =>
      call("removeNetwork", (now) => {
        const network = findNetwork(idOrName)
        if (!network) return Effect.fail(new NetworkNotFound({ network: idOrName }))
        if (network.builtin) {
          return Effect.fail(
            new DockerApiError({
              operation: "removeNetwork",
              status: 403,
              detail: `${network.name} is a pre-defined network and cannot be removed`
            })
          )
        }
        const active = [...network.containers].some((id) => {
          const c = containers.get(id)
          return c !== undefined && isUp(c)
        })
        if (active) {
          return Effect.fail(
            new DockerApiError({
              operation: "removeNetwork",
              status: 403,
              detail: `error while removing network: network ${network.name} id ${network.id} has active endpoints`
            })
          )
        }
        for (const id of network.containers) containers.get(id)?.networks.delete(network.name)
        networks.delete(network.name)
        emit("network", "destroy", network.id, network.labels, now)
        return Effect.void
      }),

    listNetworks: (filter) =>
      call("listNetworks", () =>
        Effect.succeed([...networks.values()].filter((n) => matchesLabels(n.labels, filter)).map(networkInfo))
      ),

    connectNetwork: (networkName, container) =>
      call("connectNetwork", (now) => {
        const network = findNetwork(networkName)
        if (!network) return Effect.fail(new NetworkNotFound({ network: networkName }))
        return Effect.map(lookup(container), (c) => {
          // Already connected is treated as done, so a retried deploy step is idempotent.
          if (c.networks.has(network.name)) return
          c.networks.add(network.name)
          network.containers.add(c.id)
          emit("network", "connect", network.id, network.labels, now)
        })
      }),

    createVolume: (spec) =>
      call("createVolume", (now) => {
        // Docker answers an existing name with the existing volume.
        const existing = volumes.get(spec.name)
        if (existing) return Effect.succeed(existing)
        const volume: VolumeInfo = { name: spec.name, labels: labelsFor({}, spec.labels ?? {}) }
        volumes.set(spec.name, volume)
        emit("volume", "create", spec.name, volume.labels, now)
        return Effect.succeed(volume)
      }),

    removeVolume: (name) =>
      call("removeVolume", (now) => {
        const volume = volumes.get(name)
        if (!volume) return Effect.fail(new VolumeNotFound({ volume: name }))
        volumes.delete(name)
        emit("volume", "destroy", name, volume.labels, now)
        return Effect.void
      }),

    listVolumes: (filter) =>
      call("listVolumes", () =>
        Effect.succeed([...volumes.values()].filter((v) => matchesLabels(v.labels, filter)))
      ),

    events: (options) =>
      callStream("events", () => {
        const since = options?.since
        let start = engine.seq.event
        if (since !== undefined) {
          let i = history.length
          while (i > 0 && history[i - 1]!.event.time >= since) i--
          start = i < history.length ? history[i]!.seq - 1 : engine.seq.event
        }
        const next = (
          last: number
        ): Effect.Effect<readonly [Chunk.Chunk<EngineEvent>, Option.Option<number>], RuntimeError> =>
          Effect.suspend(() => {
            if (engine.faults.down) return Effect.fail(unavailable())
            const woken = engine.wake()
            const fresh = eventsAfter(last)
            if (fresh.length === 0) return Effect.zipRight(Deferred.await(woken), next(last))
            return Effect.succeed([
              Chunk.fromIterable(fresh.map((h) => h.event)),
              Option.some(fresh[fresh.length - 1]!.seq)
            ] as const)
          })
        return Stream.paginateChunkEffect(start, next).pipe(
          Stream.filter((e) => matchesLabels(e.labels, options))
        )
      })
  }
}

/**
 * The mock engine's simulated state: images, containers, networks, volumes, the build cache, the
 * event history and the fault knobs, with the state machine's transitions (start, exit) and the
 * views Docker would answer (summary, inspect, stats). Operations (`MockOperations`) and the
 * control knobs (`MockControl`) act on it; everything runs on `Clock`.
 */
import {
  ContainerNotFound,
  DockerUnavailable,
  MockFault,
  type RuntimeError
} from "@kyozo/api/domain/RuntimeErrors"
import { Chunk, Clock, Deferred, Effect, Exit, FiberId, Option, Stream } from "effect"

import {
  type ContainerInfo,
  type ContainerSpec,
  type ContainerState,
  type ContainerStats,
  type ContainerSummary,
  Defaults,
  type EngineEvent,
  type ExecResult,
  type HealthState,
  type ImageHealthcheck,
  type ImageInfo,
  type LabelFilter,
  type LogLine,
  type NetworkInfo,
  type PublishedPort,
  type VolumeInfo
} from "../ContainerRuntime.js"
import { hex64 } from "./MockIds.js"

export const MockEndpoint = "in-memory"

export interface MockImageSeed {
  readonly tag: string
  readonly labels?: Record<string, string>
  readonly exposedPorts?: ReadonlyArray<number>
  readonly healthcheck?: ImageHealthcheck | null
  readonly sizeBytes?: number
  readonly volumes?: ReadonlyArray<string>
}

export interface MockRuntimeOptions {
  /** Images present at start (replaces the defaults). A bare string is a tag. */
  readonly images?: ReadonlyArray<string | MockImageSeed>
  /**
   * Builds fail with BuildFailed when a Dockerfile instruction matches (like `RUN false` on a real
   * engine). Default: `RUN false` or `RUN exit <n>`.
   */
  readonly failBuildsMatching?: RegExp
  /** First host port handed out for published ports without a fixed host port (default 32768). */
  readonly hostPortBase?: number
  /** CPUs the fake engine reports (default 2). */
  readonly onlineCpus?: number
  /** A running container writes one heartbeat log line per interval (default 10 s). */
  readonly logIntervalMs?: number
  /** Log lines kept per container (default 500). */
  readonly logLimit?: number
  /** Custom exec answers; return undefined to fall back to the echo behaviour. */
  readonly exec?: (container: ContainerInfo, cmd: ReadonlyArray<string>) => ExecResult | undefined
}

export const defaultImages: ReadonlyArray<MockImageSeed> = [
  { tag: "busybox:latest", sizeBytes: 4_400_000 },
  { tag: "node:20-slim", sizeBytes: 200_000_000 },
  { tag: "python:3.12-slim", sizeBytes: 130_000_000 },
  { tag: "nginx:alpine", sizeBytes: 48_000_000, exposedPorts: [80] },
  { tag: "postgres:16-alpine", sizeBytes: 240_000_000, exposedPorts: [5432] }
]

export const defaultFailBuildsMatching = /^RUN\s+(false|exit\s+[1-9]\d*)\s*$/i

export interface MockImage {
  readonly id: string
  tags: Array<string>
  readonly labels: Record<string, string>
  readonly sizeBytes: number
  readonly createdAt: number
  readonly exposedPorts: ReadonlyArray<number>
  readonly healthcheck: ImageHealthcheck | null
  readonly volumes: ReadonlyArray<string>
}

export interface StoredLine {
  readonly seq: number
  readonly line: LogLine
}

export interface MockContainer {
  readonly id: string
  readonly name: string
  readonly image: string
  readonly imageId: string
  readonly labels: Record<string, string>
  readonly spec: ContainerSpec
  readonly createdAt: number
  readonly ports: ReadonlyArray<PublishedPort>
  readonly networks: Set<string>
  readonly healthcheck: ImageHealthcheck | null
  /** Fraction of one CPU the fake process uses while running. */
  readonly load: number
  /** Fraction of the memory limit the fake process holds. */
  readonly memFraction: number
  /** Network bytes per running millisecond. */
  readonly netRate: number
  readonly pids: number
  state: ContainerState
  startedAt: number | null
  finishedAt: number | null
  exitCode: number | null
  restartCount: number
  oomKilled: boolean
  healthOverride: HealthState | null
  /** Running time of finished runs, and the start of the current one. */
  runMs: number
  runSince: number | null
  logs: Array<StoredLine>
  logSeq: number
  heartbeatAt: number
}

export interface MockNetwork {
  readonly id: string
  readonly name: string
  readonly labels: Record<string, string>
  readonly builtin: boolean
  readonly containers: Set<string>
}

export interface CacheEntry {
  readonly id: string
  readonly labels: Record<string, string>
  readonly sizeBytes: number
}

export interface PendingFailure {
  remaining: number
  readonly error: RuntimeError | undefined
  readonly operation: string | undefined
}

/** Events kept for `since` replays and slow readers (Docker keeps 256; a test engine can afford more). */
const EventHistory = 10_000

/** Injected faults and call counters; the control knobs write them. */
export interface FaultState {
  down: boolean
  hanging: boolean
  slowMs: number
  readonly failures: Array<PendingFailure>
  total: number
  injectedFailures: number
  byOperation: Record<string, number>
}

export const matchesLabels = (labels: Record<string, string>, filter?: LabelFilter): boolean => {
  if (!filter?.labels) return true
  for (const [key, value] of Object.entries(filter.labels)) {
    if (value === null ? !(key in labels) : labels[key] !== value) return false
  }
  return true
}

/** "busybox" → "busybox:latest"; ids and digests stay as they are. */
export const normalizeImageRef = (ref: string): string => {
  if (ref.startsWith("sha256:") || ref.includes("@")) return ref
  const lastSlash = ref.lastIndexOf("/")
  return ref.slice(lastSlash + 1).includes(":") ? ref : `${ref}:latest`
}

export const isHexPrefix = (s: string) => /^[0-9a-f]{1,64}$/.test(s)

/** Docker's HumanDuration, close enough for status strings. */
const humanDuration = (ms: number): string => {
  const s = Math.floor(ms / 1000)
  if (s < 1) return "Less than a second"
  if (s === 1) return "1 second"
  if (s < 60) return `${s} seconds`
  const m = Math.floor(s / 60)
  if (m === 1) return "About a minute"
  if (m < 60) return `${m} minutes`
  const h = Math.round(s / 3600)
  if (h === 1) return "About an hour"
  if (h < 48) return `${h} hours`
  return `${Math.floor(h / 24)} days`
}

export const parseDurationMs = (s: string): number | undefined => {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g
  let total = 0
  let found = false
  for (const m of s.matchAll(re)) {
    found = true
    const n = Number(m[1])
    total += m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : m[2] === "m" ? n * 60_000 : n * 3_600_000
  }
  return found ? total : undefined
}

export type MockEngine = ReturnType<typeof makeState>

/** A fresh engine state seeded with `options.images` (or the defaults) at `startTime`. */
export const makeMockEngine = (options: MockRuntimeOptions): Effect.Effect<MockEngine> =>
  Effect.gen(function* () {
    const startTime = yield* Clock.currentTimeMillis
    const hangLatch = yield* Effect.makeLatch(true)
    return makeState(options, startTime, hangLatch)
  })

const makeState = (options: MockRuntimeOptions, startTime: number, hangLatch: Effect.Latch) => {
  const failBuilds = options.failBuildsMatching ?? defaultFailBuildsMatching
  const onlineCpus = options.onlineCpus ?? 2
  const logIntervalMs = Math.max(1, options.logIntervalMs ?? 10_000)
  const logLimit = Math.max(1, options.logLimit ?? 500)

  const containers = new Map<string, MockContainer>()
  const containersByName = new Map<string, string>()
  const images = new Map<string, MockImage>()
  const tags = new Map<string, string>()
  const networks = new Map<string, MockNetwork>()
  const volumes = new Map<string, VolumeInfo>()
  const buildCache: Array<CacheEntry> = []
  const history: Array<{ readonly seq: number; readonly event: EngineEvent }> = []

  const seq = { container: 0, event: 0, hostPort: options.hostPortBase ?? 32768 }

  const faults: FaultState = {
    down: false,
    hanging: false,
    slowMs: 0,
    failures: [],
    total: 0,
    injectedFailures: 0,
    byOperation: {}
  }

  // --- engine events -------------------------------------------------------------------------

  // Readers wait on `wake`, which every new event (or the engine going down) completes and
  // replaces. Emitting stays synchronous, so state changes and their events are one step.
  let wake = Deferred.unsafeMake<void>(FiberId.none)
  const notify = () => {
    const woken = wake
    wake = Deferred.unsafeMake<void>(FiberId.none)
    Deferred.unsafeDone(woken, Exit.void)
  }

  const emit = (type: string, action: string, id: string, labels: Record<string, string>, time: number) => {
    const event: EngineEvent = { type, action, id, labels, time }
    history.push({ seq: ++seq.event, event })
    if (history.length > EventHistory * 2) history.splice(0, history.length - EventHistory)
    notify()
  }

  /** Events after `last`, from the contiguous history (a reader further behind skips the lost ones). */
  const eventsAfter = (last: number): Array<{ readonly seq: number; readonly event: EngineEvent }> => {
    if (history.length === 0) return []
    return history.slice(Math.max(0, last + 1 - history[0]!.seq))
  }

  // --- faults --------------------------------------------------------------------------------

  const unavailable = () =>
    new DockerUnavailable({ endpoint: MockEndpoint, cause: "connect ENOENT (mock engine is down)" })

  const takeFailure = (op: string): RuntimeError | undefined => {
    const index = faults.failures.findIndex((f) => f.operation === undefined || f.operation === op)
    if (index === -1) return undefined
    const f = faults.failures[index]!
    f.remaining -= 1
    if (f.remaining <= 0) faults.failures.splice(index, 1)
    return f.error ?? new MockFault({ operation: op, reason: "injected failure (failNext)" })
  }

  const injectFaults = (op: string): Effect.Effect<void, RuntimeError> =>
    Effect.suspend(() => {
      if (faults.down) {
        faults.injectedFailures += 1
        return Effect.fail(unavailable())
      }
      const error = takeFailure(op)
      if (error) {
        faults.injectedFailures += 1
        return Effect.fail(error)
      }
      return Effect.void
    })

  /** Counts the call, then applies hang, slowness, a down engine and injected failures. */
  const guard = <A, R>(
    op: string,
    effect: Effect.Effect<A, RuntimeError, R>
  ): Effect.Effect<A, RuntimeError, R> =>
    Effect.suspend(() => {
      faults.total += 1
      faults.byOperation[op] = (faults.byOperation[op] ?? 0) + 1
      if (!faults.hanging && faults.slowMs === 0 && !faults.down && faults.failures.length === 0)
        return effect
      let pre: Effect.Effect<void, RuntimeError, R> = Effect.void
      if (faults.hanging) pre = hangLatch.await
      if (faults.slowMs > 0) {
        const ms = faults.slowMs
        pre = Effect.zipRight(pre, Effect.sleep(ms))
      }
      return pre.pipe(Effect.zipRight(injectFaults(op)), Effect.zipRight(effect))
    })

  /** An engine call: guarded and given the Clock's now. */
  const call = <A>(
    op: string,
    body: (now: number) => Effect.Effect<A, RuntimeError>
  ): Effect.Effect<A, RuntimeError> =>
    guard(
      op,
      Effect.clockWith((clock) => Effect.suspend(() => body(clock.unsafeCurrentTimeMillis())))
    )

  const callStream = <A>(op: string, body: (now: number) => Stream.Stream<A, RuntimeError>) =>
    Stream.unwrap(call(op, (now) => Effect.succeed(body(now))))

  // --- images --------------------------------------------------------------------------------

  const findImage = (ref: string): MockImage | undefined => {
    const byTag = tags.get(normalizeImageRef(ref))
    if (byTag) return images.get(byTag)
    const direct = images.get(ref) ?? images.get(`sha256:${ref}`)
    if (direct) return direct
    const bare = ref.startsWith("sha256:") ? ref.slice(7) : ref
    if (bare.length >= 4 && isHexPrefix(bare)) {
      for (const image of images.values()) if (image.id.slice(7).startsWith(bare)) return image
    }
    return undefined
  }

  const imageInfo = (image: MockImage): ImageInfo => ({
    id: image.id,
    tags: [...image.tags],
    labels: { ...image.labels },
    sizeBytes: image.sizeBytes,
    createdAt: image.createdAt,
    exposedPorts: [...image.exposedPorts],
    healthcheck: image.healthcheck,
    volumes: [...image.volumes]
  })

  /** Points `tag` at `image`, taking it away from the image that had it (as docker tag does). */
  const setTag = (tag: string, image: MockImage, now: number) => {
    const normalized = normalizeImageRef(tag)
    const previous = tags.get(normalized)
    if (previous === image.id) return
    if (previous) {
      const old = images.get(previous)
      if (old) old.tags = old.tags.filter((t) => t !== normalized)
    }
    tags.set(normalized, image.id)
    image.tags.push(normalized)
    emit("image", "tag", image.id, image.labels, now)
  }

  const addImage = (seed: MockImageSeed, now: number): MockImage => {
    const image: MockImage = {
      id: `sha256:${hex64(`image:${normalizeImageRef(seed.tag)}`)}`,
      tags: [],
      labels: { ...seed.labels },
      sizeBytes: seed.sizeBytes ?? 50_000_000,
      createdAt: now,
      exposedPorts: seed.exposedPorts ?? [],
      healthcheck: seed.healthcheck ?? null,
      volumes: seed.volumes ?? []
    }
    images.set(image.id, image)
    tags.set(normalizeImageRef(seed.tag), image.id)
    image.tags.push(normalizeImageRef(seed.tag))
    return image
  }

  for (const seed of options.images ?? defaultImages) {
    addImage(typeof seed === "string" ? { tag: seed } : seed, startTime)
  }

  const deleteImage = (image: MockImage, now: number) => {
    for (const tag of image.tags) tags.delete(tag)
    images.delete(image.id)
    emit("image", "delete", image.id, image.labels, now)
  }

  const imageInUse = (image: MockImage): MockContainer | undefined => {
    for (const c of containers.values()) if (c.imageId === image.id) return c
    return undefined
  }

  // --- networks ------------------------------------------------------------------------------

  for (const name of ["bridge", "host", "none"]) {
    networks.set(name, {
      id: hex64(`network:${name}`),
      name,
      labels: {},
      builtin: true,
      containers: new Set()
    })
  }

  const findNetwork = (idOrName: string): MockNetwork | undefined => {
    const byName = networks.get(idOrName)
    if (byName) return byName
    if (isHexPrefix(idOrName)) {
      for (const n of networks.values()) if (n.id.startsWith(idOrName)) return n
    }
    return undefined
  }

  const networkInfo = (n: MockNetwork): NetworkInfo => ({ id: n.id, name: n.name, labels: { ...n.labels } })

  // --- containers ----------------------------------------------------------------------------

  const findContainer = (idOrName: string): MockContainer | undefined => {
    const exact = containers.get(idOrName)
    if (exact) return exact
    const name = idOrName.startsWith("/") ? idOrName.slice(1) : idOrName
    const byName = containersByName.get(name)
    if (byName) return containers.get(byName)
    if (isHexPrefix(idOrName)) {
      for (const c of containers.values()) if (c.id.startsWith(idOrName)) return c
    }
    return undefined
  }

  const lookup = (idOrName: string): Effect.Effect<MockContainer, ContainerNotFound> => {
    const c = findContainer(idOrName)
    return c ? Effect.succeed(c) : Effect.fail(new ContainerNotFound({ container: idOrName }))
  }

  const isUp = (c: MockContainer) => c.state === "running" || c.state === "paused" || c.state === "restarting"

  const pushLog = (c: MockContainer, stream: LogLine["stream"], timestamp: number, line: string) => {
    c.logs.push({ seq: ++c.logSeq, line: { stream, timestamp, line } })
    if (c.logs.length > logLimit * 2) c.logs.splice(0, c.logs.length - logLimit)
  }

  /** Writes the heartbeat lines a running container produced up to `now` (lazily, so idle is free). */
  const materializeLogs = (c: MockContainer, now: number) => {
    if (c.state !== "running" || c.startedAt === null) return
    const due = Math.floor((now - c.heartbeatAt) / logIntervalMs)
    if (due <= 0) return
    // Skip what would fall out of the buffer anyway.
    if (due > logLimit) c.heartbeatAt += (due - logLimit) * logIntervalMs
    while (c.heartbeatAt + logIntervalMs <= now) {
      c.heartbeatAt += logIntervalMs
      const uptime = Math.round((c.heartbeatAt - c.startedAt) / 1000)
      pushLog(c, "stdout", c.heartbeatAt, `[${c.name}] heartbeat ok uptime=${uptime}s`)
    }
  }

  const health = (c: MockContainer, now: number): HealthState => {
    if (c.healthOverride) return c.healthOverride
    if (!c.healthcheck || c.state !== "running" || c.startedAt === null) return "none"
    const grace = (c.healthcheck.startPeriodMs ?? 0) + (c.healthcheck.intervalMs ?? 30_000)
    return now - c.startedAt < grace ? "starting" : "healthy"
  }

  const statusText = (c: MockContainer, now: number): string => {
    switch (c.state) {
      case "created":
        return "Created"
      case "running": {
        const h = health(c, now)
        const suffix = h === "none" ? "" : h === "starting" ? " (health: starting)" : ` (${h})`
        return `Up ${humanDuration(now - (c.startedAt ?? now))}${suffix}`
      }
      case "paused":
        return `Up ${humanDuration(now - (c.startedAt ?? now))} (Paused)`
      case "restarting":
        return `Restarting (${c.exitCode ?? 0}) ${humanDuration(now - (c.finishedAt ?? now))} ago`
      case "exited":
        return `Exited (${c.exitCode ?? 0}) ${humanDuration(now - (c.finishedAt ?? now))} ago`
      case "removing":
        return "Removal In Progress"
      case "dead":
        return "Dead"
    }
  }

  const summary = (c: MockContainer, now: number): ContainerSummary => ({
    id: c.id,
    name: c.name,
    image: c.image,
    state: c.state,
    status: statusText(c, now),
    labels: { ...c.labels },
    ports: isUp(c) ? c.ports : [],
    createdAt: c.createdAt
  })

  // Fields written out: spreading `summary` here made inspect ~20x slower in V8.
  const info = (c: MockContainer, now: number): ContainerInfo => ({
    id: c.id,
    name: c.name,
    image: c.image,
    state: c.state,
    status: statusText(c, now),
    labels: { ...c.labels },
    ports: isUp(c) ? c.ports : [],
    createdAt: c.createdAt,
    imageId: c.imageId,
    running: c.state === "running",
    exitCode: c.exitCode,
    startedAt: c.startedAt,
    finishedAt: c.finishedAt,
    restartCount: c.restartCount,
    health: health(c, now),
    oomKilled: c.oomKilled,
    networks: c.networks.size === 1 ? [...c.networks] : [...c.networks].sort()
  })

  const runningMs = (c: MockContainer, now: number) =>
    c.runMs + (c.runSince !== null && c.state === "running" ? now - c.runSince : 0)

  /** Host ports held by up containers: "ip:port/proto" → container id. */
  const boundPorts = new Map<string, string>()
  const portKey = (p: PublishedPort) => `${p.hostIp}:${p.hostPort}/${p.protocol}`
  const portTaken = (c: MockContainer): PublishedPort | undefined => {
    for (const port of c.ports) {
      const holder = boundPorts.get(portKey(port))
      if (holder !== undefined && holder !== c.id) return port
    }
    return undefined
  }
  const releasePorts = (c: MockContainer) => {
    for (const port of c.ports) if (boundPorts.get(portKey(port)) === c.id) boundPorts.delete(portKey(port))
  }

  const doStart = (c: MockContainer, now: number) => {
    c.state = "running"
    c.startedAt = now
    c.runSince = now
    c.exitCode = null
    c.oomKilled = false
    c.healthOverride = null
    c.heartbeatAt = now
    for (const port of c.ports) boundPorts.set(portKey(port), c.id)
    pushLog(c, "stdout", now, `[${c.name}] starting from ${c.image}`)
    for (const p of c.ports) pushLog(c, "stdout", now, `[${c.name}] listening on 0.0.0.0:${p.containerPort}`)
    pushLog(c, "stdout", now, `[${c.name}] ready`)
    emit("container", "start", c.id, c.labels, now)
  }

  /** Ends the current run: accounting, logs, and die/stop events. */
  const doExit = (c: MockContainer, now: number, exitCode: number, action: "stop" | "kill") => {
    materializeLogs(c, now)
    c.runMs = runningMs(c, now)
    c.runSince = null
    c.state = "exited"
    c.exitCode = exitCode
    c.finishedAt = now
    releasePorts(c)
    if (action === "stop") pushLog(c, "stdout", now, `[${c.name}] received SIGTERM, shutting faults.down`)
    emit("container", "kill", c.id, c.labels, now)
    emit("container", "die", c.id, c.labels, now)
    if (action === "stop") emit("container", "stop", c.id, c.labels, now)
  }

  const detachNetworks = (c: MockContainer) => {
    for (const name of c.networks) networks.get(name)?.containers.delete(c.id)
  }

  const stats = (c: MockContainer, now: number): ContainerStats => {
    const ms = runningMs(c, now)
    const up = c.state === "running"
    const limit = c.spec.memoryBytes ?? Defaults.memoryBytes
    // Memory breathes a little over time but stays well under the limit.
    const wave = 1 + 0.05 * Math.sin(now / 60_000 + c.memFraction * 10)
    return {
      containerId: c.id,
      readAt: now,
      cpuTotalNs: Math.round(ms * 1e6 * c.load),
      systemCpuNs: Math.round((now - startTime + 3_600_000) * 1e6 * onlineCpus),
      onlineCpus,
      memoryBytes: up ? Math.round(limit * c.memFraction * wave) : 0,
      memoryLimitBytes: limit,
      netRxBytes: Math.round(ms * c.netRate),
      netTxBytes: Math.round(ms * c.netRate * 0.6),
      blockReadBytes: Math.round(ms * c.netRate * 0.1),
      blockWriteBytes: Math.round(ms * c.netRate * 0.05),
      pids: up ? c.pids : 0
    }
  }

  // --- follow streams ------------------------------------------------------------------------

  const followLogs = (id: string, after: number): Stream.Stream<LogLine, RuntimeError> =>
    Stream.paginateChunkEffect(after, (lastSeq) =>
      Effect.sleep(logIntervalMs).pipe(
        Effect.zipRight(Clock.currentTimeMillis),
        Effect.flatMap((now) => {
          if (faults.down) return Effect.fail(unavailable())
          const c = containers.get(id)
          if (!c) return Effect.succeed([Chunk.empty<LogLine>(), Option.none<number>()] as const)
          materializeLogs(c, now)
          const fresh = c.logs.filter((l) => l.seq > lastSeq)
          const next = fresh.length > 0 ? fresh[fresh.length - 1]!.seq : lastSeq
          return Effect.succeed([
            Chunk.fromIterable(fresh.map((l) => l.line)),
            isUp(c) ? Option.some(next) : Option.none<number>()
          ] as const)
        })
      )
    )

  // --- the runtime ---------------------------------------------------------------------------

  return {
    options,
    startTime,
    hangLatch,
    pushed: [] as Array<string>,
    seq,
    faults,
    /** What event readers wait on; replaced (after completing) by every new event. */
    wake: () => wake,
    failBuilds,
    onlineCpus,
    logIntervalMs,
    logLimit,
    containers,
    containersByName,
    images,
    tags,
    networks,
    volumes,
    buildCache,
    history,
    notify,
    emit,
    eventsAfter,
    unavailable,
    takeFailure,
    guard,
    call,
    callStream,
    findImage,
    imageInfo,
    setTag,
    addImage,
    deleteImage,
    imageInUse,
    findNetwork,
    networkInfo,
    findContainer,
    lookup,
    isUp,
    pushLog,
    materializeLogs,
    health,
    statusText,
    summary,
    info,
    runningMs,
    boundPorts,
    portKey,
    portTaken,
    releasePorts,
    doStart,
    doExit,
    detachNetworks,
    stats,
    followLogs
  }
}

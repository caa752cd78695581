/**
 * An in-memory container engine with Docker's state machine, for tests, benchmarks and machines
 * without Docker. Everything runs on `Clock` (deterministic under TestClock) and on plain maps:
 * the manager benchmark drives 1,000 mock services through a simulated hour.
 *
 * The same layer provides `MockRuntimeControl`, the knobs tests use to make the engine misbehave
 * (failures, hangs, slowness, a stopped dockerd, containers dying behind Kyozo's back).
 */
import {
  BuildFailed,
  ContainerNotFound,
  DockerApiError,
  DockerUnavailable,
  ImageNotFound,
  InvalidContainerState,
  MockFault,
  NameConflict,
  NetworkNotFound,
  type RuntimeError,
  VolumeNotFound
} from "@kyozo/api/domain/RuntimeErrors"
import {
  Chunk,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  FiberId,
  Layer,
  Option,
  Stream
} from "effect"

import {
  type BuildEvent,
  type BuildOptions,
  type ContainerInfo,
  ContainerRuntime,
  type ContainerRuntimeShape,
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
  type PruneReport,
  type PublishedPort,
  type VolumeInfo
} from "./ContainerRuntime.js"
import { labelsFor, Managed } from "./Labels.js"

export const MockEndpoint = "in-memory"

export interface MockImageSeed {
  readonly tag: string
  readonly labels?: Record<string, string>
  readonly exposedPorts?: ReadonlyArray<number>
  readonly healthcheck?: ImageHealthcheck | null
  readonly sizeBytes?: number
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

export interface MockCallStats {
  readonly total: number
  readonly byOperation: Readonly<Record<string, number>>
  /** Calls that failed because of an injected fault (failNext, setDown). */
  readonly injectedFailures: number
}

export interface MockRuntimeControlShape {
  /** The next `n` calls (optionally only of one operation) fail with `error` or a MockFault. */
  readonly failNext: (
    n: number,
    error?: RuntimeError,
    options?: { readonly operation?: string }
  ) => Effect.Effect<void>
  /** While on, calls wait (interruptibly) and complete only once it is turned off. */
  readonly hang: (on: boolean) => Effect.Effect<void>
  /** Each call sleeps this long on the Clock first; null or zero turns it off. */
  readonly slow: (duration: Duration.DurationInput | null) => Effect.Effect<void>
  /** A stopped dockerd: every call fails DockerUnavailable, open log/event streams fail too. */
  readonly setDown: (down: boolean) => Effect.Effect<void>
  /** The container dies behind Kyozo's back (default exit code 137, SIGKILL). */
  readonly killContainer: (
    id: string,
    options?: { readonly exitCode?: number; readonly oomKilled?: boolean }
  ) => Effect.Effect<void, ContainerNotFound>
  /** Overrides the health a running container reports, until its next start. */
  readonly setHealth: (id: string, health: HealthState) => Effect.Effect<void, ContainerNotFound>
  readonly pauseContainer: (id: string) => Effect.Effect<void, ContainerNotFound | InvalidContainerState>
  readonly unpauseContainer: (id: string) => Effect.Effect<void, ContainerNotFound | InvalidContainerState>
  readonly calls: Effect.Effect<MockCallStats>
  readonly resetCalls: Effect.Effect<void>
  /** References pushed so far, in order (there is no registry: pushes are only recorded). */
  readonly pushed: Effect.Effect<ReadonlyArray<string>>
}

export class MockRuntimeControl extends Context.Tag("@kyozo/core/MockRuntimeControl")<
  MockRuntimeControl,
  MockRuntimeControlShape
>() {}

// ---------------------------------------------------------------------------------------------
// Deterministic ids: FNV-1a in 8 lanes gives 64 hex digits, like a sha256 to the eye.

class Hasher {
  private readonly lanes = new Uint32Array(8)
  constructor() {
    for (let i = 0; i < 8; i++) this.lanes[i] = (0x811c9dc5 ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0
  }
  bytes(data: Uint8Array): this {
    for (let lane = 0; lane < 8; lane++) {
      let h = this.lanes[lane]!
      for (let i = 0; i < data.length; i++) {
        h ^= data[i]!
        h = Math.imul(h, 0x01000193)
      }
      this.lanes[lane] = h >>> 0
    }
    return this
  }
  string(s: string): this {
    return this.bytes(encoder.encode(s))
  }
  hex(): string {
    let out = ""
    // A final avalanche per lane so that short inputs differ in every digit.
    for (let i = 0; i < 8; i++) {
      let h = this.lanes[i]!
      h ^= h >>> 16
      h = Math.imul(h, 0x85ebca6b)
      h ^= h >>> 13
      h = Math.imul(h, 0xc2b2ae35)
      h ^= h >>> 16
      out += (h >>> 0).toString(16).padStart(8, "0")
    }
    return out
  }
}

const encoder = new TextEncoder()
const hex64 = (s: string): string => new Hasher().string(s).hex()
/** A number in [0, 1) derived from a string, for per-container load figures. */
const unit = (s: string, salt: string): number => parseInt(hex64(salt + s).slice(0, 8), 16) / 0x1_0000_0000

// ---------------------------------------------------------------------------------------------

interface MockImage {
  readonly id: string
  tags: Array<string>
  readonly labels: Record<string, string>
  readonly sizeBytes: number
  readonly createdAt: number
  readonly exposedPorts: ReadonlyArray<number>
  readonly healthcheck: ImageHealthcheck | null
}

interface StoredLine {
  readonly seq: number
  readonly line: LogLine
}

interface MockContainer {
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

interface MockNetwork {
  readonly id: string
  readonly name: string
  readonly labels: Record<string, string>
  readonly builtin: boolean
  readonly containers: Set<string>
}

interface CacheEntry {
  readonly id: string
  readonly labels: Record<string, string>
  readonly sizeBytes: number
}

interface PendingFailure {
  remaining: number
  readonly error: RuntimeError | undefined
  readonly operation: string | undefined
}

/** Events kept for `since` replays and slow readers (Docker keeps 256; a test engine can afford more). */
const EventHistory = 10_000

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

const isHexPrefix = (s: string) => /^[0-9a-f]{1,64}$/.test(s)

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

const parseDurationMs = (s: string): number | undefined => {
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

// ---------------------------------------------------------------------------------------------
// Build contexts are tar streams; a minimal ustar reader finds the Dockerfile in them.

const cstr = (bytes: Uint8Array): string => {
  const end = bytes.indexOf(0)
  return new TextDecoder().decode(end === -1 ? bytes : bytes.subarray(0, end))
}

const readTarFile = (buf: Uint8Array, wanted: string): string | undefined => {
  const want = wanted.replace(/^\.\//, "")
  let off = 0
  while (off + 512 <= buf.length) {
    const header = buf.subarray(off, off + 512)
    if (header[0] === 0) return undefined
    if (cstr(header.subarray(257, 262)) !== "ustar") return undefined
    const name = cstr(header.subarray(0, 100))
    const prefix = cstr(header.subarray(345, 500))
    const size = parseInt(cstr(header.subarray(124, 136)).trim() || "0", 8)
    if (!Number.isFinite(size)) return undefined
    const full = (prefix ? `${prefix}/${name}` : name).replace(/^\.\//, "")
    const type = header[156]
    off += 512
    if ((type === 0 || type === 48) && full === want) {
      return new TextDecoder().decode(buf.subarray(off, off + size))
    }
    off += Math.ceil(size / 512) * 512
  }
  return undefined
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
const dockerfileInstructions = (text: string): Array<string> => {
  const out: Array<string> = []
  let current = ""
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (current === "" && (line === "" || line.startsWith("#"))) continue
    if (line.endsWith("\\")) {
      current += line.slice(0, -1) + " "
      continue
    }
    current += line
    if (current.trim() !== "") out.push(current.trim())
    current = ""
  }
  if (current.trim() !== "") out.push(current.trim())
  return out
}

// ---------------------------------------------------------------------------------------------

export interface MockRuntimeHandle {
  readonly runtime: ContainerRuntimeShape
  readonly control: MockRuntimeControlShape
}

/** Builds a fresh engine; `layerWith` is the usual way in. */
export const make = (options: MockRuntimeOptions = {}): Effect.Effect<MockRuntimeHandle> =>
  Effect.gen(function* () {
    const startTime = yield* Clock.currentTimeMillis
    const hangLatch = yield* Effect.makeLatch(true)

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

    let containerSeq = 0
    let eventSeq = 0
    let nextHostPort = options.hostPortBase ?? 32768

    // Fault state.
    let down = false
    let hanging = false
    let slowMs = 0
    const failures: Array<PendingFailure> = []
    let total = 0
    let injectedFailures = 0
    let byOperation: Record<string, number> = {}

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
      history.push({ seq: ++eventSeq, event })
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
      const index = failures.findIndex((f) => f.operation === undefined || f.operation === op)
      if (index === -1) return undefined
      const f = failures[index]!
      f.remaining -= 1
      if (f.remaining <= 0) failures.splice(index, 1)
      return f.error ?? new MockFault({ operation: op, reason: "injected failure (failNext)" })
    }

    const faults = (op: string): Effect.Effect<void, RuntimeError> =>
      Effect.suspend(() => {
        if (down) {
          injectedFailures += 1
          return Effect.fail(unavailable())
        }
        const error = takeFailure(op)
        if (error) {
          injectedFailures += 1
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
        total += 1
        byOperation[op] = (byOperation[op] ?? 0) + 1
        if (!hanging && slowMs === 0 && !down && failures.length === 0) return effect
        let pre: Effect.Effect<void, RuntimeError, R> = Effect.void
        if (hanging) pre = hangLatch.await
        if (slowMs > 0) {
          const ms = slowMs
          pre = Effect.zipRight(pre, Effect.sleep(ms))
        }
        return pre.pipe(Effect.zipRight(faults(op)), Effect.zipRight(effect))
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

    const pushed: Array<string> = []

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
      healthcheck: image.healthcheck
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
        healthcheck: seed.healthcheck ?? null
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

    const isUp = (c: MockContainer) =>
      c.state === "running" || c.state === "paused" || c.state === "restarting"

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
      for (const p of c.ports)
        pushLog(c, "stdout", now, `[${c.name}] listening on 0.0.0.0:${p.containerPort}`)
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
      if (action === "stop") pushLog(c, "stdout", now, `[${c.name}] received SIGTERM, shutting down`)
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

    // --- build ---------------------------------------------------------------------------------

    const build = (options: BuildOptions): Stream.Stream<BuildEvent, RuntimeError> => {
      const tag = normalizeImageRef(options.tag)
      const collect = Effect.gen(function* () {
        const chunks: Array<Uint8Array> = []
        let size = 0
        yield* options.context.pipe(
          Stream.runForEach((chunk) =>
            Effect.sync(() => {
              chunks.push(chunk)
              size += chunk.length
            })
          ),
          Effect.mapError(
            (e) =>
              new BuildFailed({
                image: tag,
                reason: `reading the build context failed: ${String(e)}`,
                logTail: []
              })
          )
        )
        const all = new Uint8Array(size)
        let off = 0
        for (const chunk of chunks) {
          all.set(chunk, off)
          off += chunk.length
        }
        return all
      })

      const run = Effect.gen(function* () {
        const context = yield* collect
        const now = yield* Clock.currentTimeMillis
        const dockerfile = readTarFile(context, options.dockerfile ?? "Dockerfile")
        // Without a tar (or a Dockerfile in it) the whole context stands in for the Dockerfile.
        const instructions = dockerfileInstructions(dockerfile ?? new TextDecoder().decode(context))
        const events: Array<BuildEvent> = []
        const tail: Array<string> = []
        const step = (line: string) => {
          events.push({ _tag: "Step", line })
          tail.push(line)
        }
        const steps = instructions.filter((i) => /^[A-Z]+\s/i.test(i))
        let exposed: Array<number> = []
        const dockerfileLabels: Record<string, string> = {}
        let healthcheck: ImageHealthcheck | null = null
        let baseSize = 0
        for (const [i, instruction] of steps.entries()) {
          step(`Step ${i + 1}/${steps.length} : ${instruction}`)
          const [keyword = "", ...rest] = instruction.split(/\s+/)
          const args = rest.join(" ")
          if (failBuilds.test(instruction)) {
            const command = args.replace(/^\s+/, "")
            const reason = `The command '/bin/sh -c ${command}' returned a non-zero code: 1`
            return { events, failure: new BuildFailed({ image: tag, reason, logTail: tail.slice(-10) }) }
          }
          switch (keyword.toUpperCase()) {
            case "FROM": {
              const base = findImage(rest[0] ?? "")
              if (base) {
                exposed = [...base.exposedPorts]
                healthcheck = base.healthcheck
                baseSize = base.sizeBytes
              }
              break
            }
            case "LABEL":
              // `LABEL k=v "k 2"="v 2"`, as Docker reads it (JSON-style quoting).
              for (const m of args.matchAll(/("(?:[^"\\]|\\.)*"|[^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
                const unquote = (t: string) => (t.startsWith('"') ? (JSON.parse(t) as string) : t)
                dockerfileLabels[unquote(m[1]!)] = unquote(m[2]!)
              }
              break
            case "EXPOSE":
              for (const p of rest) {
                const n = parseInt(p, 10)
                if (Number.isFinite(n) && !exposed.includes(n)) exposed.push(n)
              }
              break
            case "HEALTHCHECK": {
              if (/^NONE$/i.test(args.trim())) healthcheck = null
              else {
                const cmdAt = args.search(/\bCMD\b/)
                const flags = cmdAt === -1 ? args : args.slice(0, cmdAt)
                const flag = (name: string) => {
                  const m = new RegExp(`--${name}=(\\S+)`).exec(flags)
                  return m ? parseDurationMs(m[1]!) : undefined
                }
                const retries = /--retries=(\d+)/.exec(flags)
                healthcheck = {
                  test: ["CMD-SHELL", cmdAt === -1 ? "" : args.slice(cmdAt + 3).trim()],
                  ...(flag("interval") !== undefined ? { intervalMs: flag("interval")! } : {}),
                  ...(flag("timeout") !== undefined ? { timeoutMs: flag("timeout")! } : {}),
                  ...(flag("start-period") !== undefined ? { startPeriodMs: flag("start-period")! } : {}),
                  ...(retries ? { retries: Number(retries[1]) } : {})
                }
              }
              break
            }
          }
          events.push({ _tag: "Step", line: ` ---> ${hex64(`${tag}:${i}:${instruction}`).slice(0, 12)}` })
        }
        const hasher = new Hasher().bytes(context).string(JSON.stringify(options.labels ?? {}))
        const id = `sha256:${hasher.string(JSON.stringify(options.buildArgs ?? {})).hex()}`
        const labels = labelsFor({}, { ...dockerfileLabels, ...options.labels })
        let image = images.get(id)
        if (!image) {
          image = {
            id,
            tags: [],
            labels,
            sizeBytes: baseSize + context.length,
            createdAt: now,
            exposedPorts: exposed,
            healthcheck
          }
          images.set(id, image)
        }
        setTag(tag, image, now)
        buildCache.push({ id: hex64(`cache:${id}:${buildCache.length}`), labels, sizeBytes: context.length })
        step(`Successfully built ${id.slice(7, 19)}`)
        step(`Successfully tagged ${tag}`)
        events.push({ _tag: "Built", imageId: id, tag })
        return { events, failure: undefined }
      })

      const first: Stream.Stream<BuildEvent, RuntimeError> = Stream.succeed({
        _tag: "Step",
        line: "Sending build context to Docker daemon"
      })
      const rest: Stream.Stream<BuildEvent, RuntimeError> = Stream.fromEffect(run).pipe(
        Stream.flatMap(({ events, failure }) => {
          const steps = Stream.fromIterable(events)
          return failure ? Stream.concat(steps, Stream.fail(failure)) : steps
        })
      )
      return Stream.concat(first, rest)
    }

    // --- follow streams ------------------------------------------------------------------------

    const followLogs = (id: string, after: number): Stream.Stream<LogLine, RuntimeError> =>
      Stream.paginateChunkEffect(after, (lastSeq) =>
        Effect.sleep(logIntervalMs).pipe(
          Effect.zipRight(Clock.currentTimeMillis),
          Effect.flatMap((now) => {
            if (down) return Effect.fail(unavailable())
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

    const runtime: ContainerRuntimeShape = {
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
          const id = hex64(`container:${++containerSeq}:${name}`)
          const ports: Array<PublishedPort> = (spec.ports ?? []).map((p) => ({
            containerPort: p.containerPort,
            protocol: p.protocol ?? "tcp",
            hostIp: p.hostIp ?? Defaults.hostIp,
            hostPort: p.hostPort && p.hostPort > 0 ? p.hostPort : nextHostPort++
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

      inspectContainer: (id) =>
        call("inspectContainer", (now) => Effect.map(lookup(id), (c) => info(c, now))),

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
            const custom = options.exec?.(info(c, now), cmd)
            if (custom) return Effect.succeed(custom)
            if (cmd[0] === "false") return Effect.succeed({ exitCode: 1, output: "" })
            const words = cmd[0] === "echo" ? cmd.slice(1) : cmd
            return Effect.succeed({ exitCode: 0, output: `${words.join(" ")}\n` })
          })
        ),

      buildImage: (options) => callStream("buildImage", () => build(options)),

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
          pushed.push(normalizeImageRef(ref))
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

      pruneBuildCache: (filter) =>
        call("pruneBuildCache", () => {
          const removed: Array<string> = []
          let reclaimedBytes = 0
          for (let i = buildCache.length - 1; i >= 0; i--) {
            const entry = buildCache[i]!
            if (entry.labels[Managed] !== "true" || !matchesLabels(entry.labels, filter)) continue
            buildCache.splice(i, 1)
            removed.push(entry.id)
            reclaimedBytes += entry.sizeBytes
          }
          return Effect.succeed<PruneReport>({ removed: removed.reverse(), reclaimedBytes })
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
          Effect.succeed(
            [...networks.values()].filter((n) => matchesLabels(n.labels, filter)).map(networkInfo)
          )
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
          let start = eventSeq
          if (since !== undefined) {
            let i = history.length
            while (i > 0 && history[i - 1]!.event.time >= since) i--
            start = i < history.length ? history[i]!.seq - 1 : eventSeq
          }
          const next = (
            last: number
          ): Effect.Effect<readonly [Chunk.Chunk<EngineEvent>, Option.Option<number>], RuntimeError> =>
            Effect.suspend(() => {
              if (down) return Effect.fail(unavailable())
              const woken = wake
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

    // --- control -------------------------------------------------------------------------------

    const controlCall = <A, E>(body: (now: number) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.clockWith((clock) => Effect.suspend(() => body(clock.unsafeCurrentTimeMillis())))

    const control: MockRuntimeControlShape = {
      failNext: (n, error, opts) =>
        Effect.sync(() => {
          if (n > 0) failures.push({ remaining: n, error, operation: opts?.operation })
        }),
      hang: (on) =>
        Effect.suspend(() => {
          hanging = on
          return on ? hangLatch.close : hangLatch.open
        }),
      slow: (duration) =>
        Effect.sync(() => {
          slowMs = duration === null ? 0 : Math.max(0, Duration.toMillis(Duration.decode(duration)))
        }),
      setDown: (value) =>
        Effect.sync(() => {
          down = value
          // Wakes event readers so they fail as a stopped dockerd would end their connections.
          if (value) notify()
        }),
      killContainer: (id, opts) =>
        controlCall((now) =>
          Effect.map(lookup(id), (c) => {
            if (!isUp(c)) return
            if (opts?.oomKilled) emit("container", "oom", c.id, c.labels, now)
            doExit(c, now, opts?.exitCode ?? 137, "kill")
            c.oomKilled = opts?.oomKilled ?? false
          })
        ),
      setHealth: (id, value) =>
        controlCall((now) =>
          Effect.map(lookup(id), (c) => {
            c.healthOverride = value
            emit("container", `health_status: ${value}`, c.id, c.labels, now)
          })
        ),
      pauseContainer: (id) =>
        controlCall((now) =>
          Effect.flatMap(lookup(id), (c) => {
            if (c.state !== "running") {
              return Effect.fail(
                new InvalidContainerState({ container: id, state: c.state, operation: "pause" })
              )
            }
            materializeLogs(c, now)
            c.runMs = runningMs(c, now)
            c.runSince = null
            c.state = "paused"
            emit("container", "pause", c.id, c.labels, now)
            return Effect.void
          })
        ),
      unpauseContainer: (id) =>
        controlCall((now) =>
          Effect.flatMap(lookup(id), (c) => {
            if (c.state !== "paused") {
              return Effect.fail(
                new InvalidContainerState({ container: id, state: c.state, operation: "unpause" })
              )
            }
            c.state = "running"
            c.runSince = now
            c.heartbeatAt = now
            emit("container", "unpause", c.id, c.labels, now)
            return Effect.void
          })
        ),
      calls: Effect.sync(() => ({ total, byOperation: { ...byOperation }, injectedFailures })),
      pushed: Effect.sync(() => [...pushed]),
      resetCalls: Effect.sync(() => {
        total = 0
        injectedFailures = 0
        byOperation = {}
      })
    }

    return { runtime, control }
  })

/** Provides `ContainerRuntime` (mode "mock") and its `MockRuntimeControl`. */
export const layerWith = (
  options: MockRuntimeOptions = {}
): Layer.Layer<ContainerRuntime | MockRuntimeControl> =>
  Layer.effectContext(
    Effect.map(make(options), ({ control, runtime }) =>
      Context.make(ContainerRuntime, runtime).pipe(Context.add(MockRuntimeControl, control))
    )
  )

export const layer: Layer.Layer<ContainerRuntime | MockRuntimeControl> = layerWith()

export const MockRuntime = { make, layer, layerWith } as const

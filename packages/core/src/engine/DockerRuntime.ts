/**
 * `ContainerRuntime` on a real Docker engine, through docker-modem (the HTTP layer of dockerode).
 *
 * Every request goes through one `dial` so that every call gets the same deadline (an AbortSignal
 * plus `Effect.timeoutFail`) and the same error mapping. Streams (logs, events, build, pull) get an
 * inactivity timeout instead of a whole-call deadline, because a quiet stream is not a hung one
 * until it has been quiet for long.
 */
import type { IncomingMessage } from "node:http"
import { Readable } from "node:stream"
import { StringDecoder } from "node:string_decoder"

import * as NodeStream from "@effect/platform-node/NodeStream"
import {
  BuildFailed,
  ContainerNotFound,
  DockerApiError,
  DockerTimeout,
  DockerUnavailable,
  ImageNotFound,
  InvalidContainerState,
  NameConflict,
  NetworkNotFound,
  type RuntimeError
} from "@kyozo/api/domain/RuntimeErrors"
import Docker from "dockerode"
import { Chunk, Data, Duration, Effect, Layer, Option, Stream } from "effect"

import { KyozoConfig } from "../KyozoConfig.js"
import {
  type BuildEvent,
  type ContainerInfo,
  ContainerRuntime,
  type ContainerRuntimeShape,
  type ContainerSpec,
  type ContainerState,
  type ContainerStats,
  type ContainerSummary,
  Defaults,
  type EngineEvent,
  type HealthState,
  type ImageHealthcheck,
  type ImageInfo,
  type LabelFilter,
  type LogLine,
  type NetworkInfo,
  type PruneReport,
  type PublishedPort,
  type PullEvent,
  type VolumeInfo
} from "./ContainerRuntime.js"
import { labelsFor, Managed } from "./Labels.js"

export interface DockerRuntimeOptions {
  /** `unix:///path`, `/path`, `tcp://host:port` (DOCKER_HOST forms); default $DOCKER_HOST, then the local socket. */
  readonly dockerHost?: string | undefined
  /** Deadline of each call (default 30 s). */
  readonly timeout?: Duration.DurationInput | undefined
  /** How long a stream (logs with follow, events, pull) may stay silent before failing (default 5 min). */
  readonly streamIdleTimeout?: Duration.DurationInput | undefined
}

export const defaultSocket = "/var/run/docker.sock"

/** Resolves a DOCKER_HOST value to dockerode options and a printable endpoint. */
export const parseDockerHost = (
  dockerHost: string | undefined
): { readonly endpoint: string; readonly options: Docker.DockerOptions } => {
  const value = dockerHost?.trim() || `unix://${defaultSocket}`
  // `host: undefined` matters: docker-modem merges DOCKER_HOST from the environment into its options.
  if (value.startsWith("unix://")) {
    const socketPath = value.slice("unix://".length) || defaultSocket
    return { endpoint: `unix://${socketPath}`, options: { socketPath, host: undefined, port: undefined } }
  }
  if (value.startsWith("/")) {
    return { endpoint: `unix://${value}`, options: { socketPath: value, host: undefined, port: undefined } }
  }
  const url = new URL(value.includes("://") ? value : `tcp://${value}`)
  const protocol = url.protocol === "https:" ? "https" : "http"
  const port = url.port || (protocol === "https" ? "2376" : "2375")
  return {
    endpoint: `${url.protocol === "https:" ? "https" : "tcp"}://${url.hostname}:${port}`,
    options: { host: url.hostname, port, protocol, socketPath: undefined }
  }
}

/** A non-2xx answer, before each operation decides what that status means for it. */
class HttpStatus extends Data.TaggedError("HttpStatus")<{
  readonly operation: string
  readonly status: number
  readonly detail: string
}> {}

/**
 * Docker's wire JSON as the engine sends it: read field by field, with checks, by the decoders below
 * (`summaryOf`, `infoOf`, ...), which alone turn it into typed values.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the one loose type, named once
type Wire = any

type Raw<A, R = never> = Effect.Effect<A, RuntimeError | HttpStatus, R>

type StatusCases<B> = {
  readonly [status: number]: ((e: HttpStatus) => Effect.Effect<B, RuntimeError>) | undefined
}

/** Maps statuses an operation understands; any other status becomes `DockerApiError`. */
const onStatus = <A, R = never, B = never>(
  self: Raw<A, R>,
  cases: StatusCases<B> = {}
): Effect.Effect<A | B, RuntimeError, R> =>
  Effect.catchAll(self, (e): Effect.Effect<B, RuntimeError> => {
    if (e._tag !== "HttpStatus") return Effect.fail(e)
    const handler = cases[e.status]
    return handler ? handler(e) : Effect.fail(apiError(e))
  })

const apiError = (e: HttpStatus) =>
  new DockerApiError({ operation: e.operation, status: e.status, detail: e.detail })

const connectionCodes = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "EPIPE",
  "ECONNRESET",
  "EACCES",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENOTSOCK",
  "ECONNABORTED"
])

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** The engine's explanation of an error: its JSON `message`, or docker-modem's text. */
const detailOf = (e: Wire): string => {
  const json = e?.json
  if (json && typeof json === "object" && !Buffer.isBuffer(json) && typeof json.message === "string") {
    return json.message
  }
  if (Buffer.isBuffer(json) && json.length > 0) return json.toString("utf8").trim()
  if (typeof json === "string" && json.length > 0) return json.trim()
  return errorText(e)
}

const toFailure = (endpoint: string, operation: string, e: unknown): RuntimeError | HttpStatus => {
  const err = e as Wire
  if (typeof err?.statusCode === "number") {
    return new HttpStatus({ operation, status: err.statusCode, detail: detailOf(err) })
  }
  const code: string | undefined = err?.code ?? err?.cause?.code
  if ((code && connectionCodes.has(code)) || /socket hang up|connect/i.test(errorText(e))) {
    return new DockerUnavailable({ endpoint, cause: code ? `${code}: ${errorText(e)}` : errorText(e) })
  }
  return new DockerApiError({ operation, status: 0, detail: errorText(e) })
}

interface DialSpec {
  readonly operation: string
  readonly method: "GET" | "POST" | "DELETE" | "PUT" | "HEAD"
  readonly path: string
  readonly query?: Record<string, unknown> | undefined
  readonly body?: unknown
  /** The response body is handed over as a stream instead of being parsed. */
  readonly stream?: boolean
  /** Upgrade the connection (exec start): the raw socket is handed over. */
  readonly hijack?: boolean
  readonly file?: Readable | undefined
  readonly authconfig?: unknown
  readonly headers?: Record<string, string> | undefined
}

const okStatuses = { 200: true, 201: true, 204: true, 304: true }

const dropUndefined = (record: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(record)) if (v !== undefined) out[k] = v
  return out
}

/** Docker's `filters` parameter for label filters: `{label: ["k=v", "k"]}`. */
export const labelFilters = (filter?: LabelFilter, always: Record<string, string> = {}): Array<string> => {
  const entries = new Map<string, string | null>(Object.entries(filter?.labels ?? {}))
  for (const [k, v] of Object.entries(always)) entries.set(k, v)
  return Array.from(entries, ([k, v]) => (v === null ? k : `${k}=${v}`))
}

const filtersQuery = (labels: Array<string>, extra: Record<string, Array<string>> = {}) => {
  const filters: Record<string, Array<string>> = { ...extra }
  if (labels.length > 0) filters.label = labels
  return Object.keys(filters).length > 0 ? JSON.stringify(filters) : undefined
}

/** Epoch ms → Docker's `seconds.nanoseconds` timestamp (always 9 digits, so it is unambiguous). */
const dockerTimestamp = (ms: number): string => {
  const seconds = Math.floor(ms / 1000)
  const nanos = Math.round((ms - seconds * 1000) * 1e6)
  return `${seconds}.${String(nanos).padStart(9, "0")}`
}

const parseDate = (value: unknown): number | null => {
  if (typeof value !== "string" || value.startsWith("0001-01-01")) return null
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? null : ms
}

const rfc3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d) ?/

/** Splits the RFC3339Nano prefix `timestamps=true` puts on each log line. */
export const splitTimestamp = (
  line: string
): { readonly timestamp: number | null; readonly line: string } => {
  const m = rfc3339.exec(line)
  if (!m) return { timestamp: null, line }
  const ms = Date.parse(`${m[1]}.${(m[2] ?? "0").slice(0, 3).padEnd(3, "0")}${m[3]}`)
  return { timestamp: Number.isNaN(ms) ? null : ms, line: line.slice(m[0].length) }
}

/**
 * Docker's multiplexed stream (containers without a TTY): frames of an 8-byte header (stream
 * type, 3 zero bytes, big-endian length) and a payload. Returns complete lines per stream.
 */
export class Demuxer {
  private pending: Buffer = Buffer.alloc(0)
  private readonly decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") }
  private readonly partial = { stdout: "", stderr: "" }
  constructor(private readonly raw: boolean) {}

  push(chunk: Uint8Array): Array<{ stream: "stdout" | "stderr"; text: string }> {
    const out: Array<{ stream: "stdout" | "stderr"; text: string }> = []
    if (this.raw) {
      this.collect("stdout", Buffer.from(chunk), out)
      return out
    }
    this.pending = this.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk])
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4)
      if (this.pending.length < 8 + size) break
      const stream = this.pending[0] === 2 ? "stderr" : "stdout"
      this.collect(stream, this.pending.subarray(8, 8 + size), out)
      this.pending = this.pending.subarray(8 + size)
    }
    return out
  }

  /** Whatever is left without a final newline. */
  end(): Array<{ stream: "stdout" | "stderr"; text: string }> {
    const out: Array<{ stream: "stdout" | "stderr"; text: string }> = []
    for (const stream of ["stdout", "stderr"] as const) {
      const rest = this.partial[stream] + this.decoders[stream].end()
      this.partial[stream] = ""
      if (rest.length > 0) out.push({ stream, text: rest })
    }
    return out
  }

  private collect(
    stream: "stdout" | "stderr",
    payload: Buffer,
    out: Array<{ stream: "stdout" | "stderr"; text: string }>
  ) {
    const text = this.partial[stream] + this.decoders[stream].write(payload)
    const lines = text.split("\n")
    this.partial[stream] = lines.pop() ?? ""
    for (const line of lines) out.push({ stream, text: line.endsWith("\r") ? line.slice(0, -1) : line })
  }
}

/** Demultiplexes a complete buffer into one text, stdout and stderr interleaved as they came. */
const demuxAll = (data: Buffer, raw: boolean): string => {
  const demuxer = new Demuxer(raw)
  const lines = [...demuxer.push(data), ...demuxer.end()]
  const text = lines.map((l) => l.text).join("\n")
  return data.length > 0 && data[data.length - 1] === 10 ? `${text}\n` : text
}

/**
 * Node readable → Stream. Not `Stream.fromAsyncIterable`: an async iterator's `return()` waits for
 * the pending `next()`, so interrupting a silent stream would hang until the engine sent data.
 */
const nodeStream = <E>(
  readable: NodeJS.ReadableStream,
  onError: (e: unknown) => E
): Stream.Stream<Uint8Array, E> =>
  NodeStream.fromReadable<E, Uint8Array | string>(() => readable, onError).pipe(
    Stream.map((chunk) => (typeof chunk === "string" ? Buffer.from(chunk) : chunk))
  )

/** Newline-delimited JSON (build, pull, events); lines that are not JSON are skipped. */
const jsonLines = <E>(bytes: Stream.Stream<Uint8Array, E>): Stream.Stream<Wire, E> =>
  bytes.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.filterMap((line) => {
      const trimmed = line.trim()
      if (trimmed.length === 0) return Option.none()
      try {
        return Option.some(JSON.parse(trimmed))
      } catch {
        return Option.none()
      }
    })
  )

const containerStates: ReadonlySet<string> = new Set([
  "created",
  "running",
  "paused",
  "restarting",
  "exited",
  "dead",
  "removing"
])
const toState = (s: unknown): ContainerState =>
  typeof s === "string" && containerStates.has(s) ? (s as ContainerState) : "dead"

const toHealth = (s: unknown): HealthState =>
  s === "starting" || s === "healthy" || s === "unhealthy" ? s : "none"

const portsFromInspect = (
  ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> | undefined
) => {
  const out: Array<PublishedPort> = []
  for (const [key, bindings] of Object.entries(ports ?? {})) {
    const [port, protocol] = key.split("/")
    for (const b of bindings ?? []) {
      out.push({
        containerPort: Number(port),
        protocol: protocol === "udp" ? "udp" : "tcp",
        hostIp: b.HostIp,
        hostPort: Number(b.HostPort)
      })
    }
  }
  return out
}

const nsToMs = (ns: unknown) => (typeof ns === "number" && ns > 0 ? Math.round(ns / 1e6) : undefined)
const msToNs = (ms: number | undefined) => (ms === undefined ? undefined : Math.round(ms * 1e6))

const healthcheckOf = (hc: Wire): ImageHealthcheck | null => {
  if (!hc || !Array.isArray(hc.Test) || hc.Test.length === 0 || hc.Test[0] === "NONE") return null
  return dropUndefined({
    test: hc.Test,
    intervalMs: nsToMs(hc.Interval),
    timeoutMs: nsToMs(hc.Timeout),
    retries: typeof hc.Retries === "number" && hc.Retries > 0 ? hc.Retries : undefined,
    startPeriodMs: nsToMs(hc.StartPeriod)
  }) as unknown as ImageHealthcheck
}

const exposedPortsOf = (exposed: Record<string, unknown> | null | undefined): Array<number> =>
  Object.keys(exposed ?? {})
    .map((k) => Number(k.split("/")[0]))
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => a - b)

/** "repo:tag" → parts; the tag is after the last colon that follows the last slash (registry ports). */
const splitRef = (ref: string): { repo: string; tag: string } => {
  const slash = ref.lastIndexOf("/")
  const colon = ref.lastIndexOf(":")
  return colon > slash
    ? { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) }
    : { repo: ref, tag: "latest" }
}

const sum = (values: Iterable<number>) => {
  let total = 0
  for (const v of values) total += typeof v === "number" && Number.isFinite(v) ? v : 0
  return total
}

/** One `stats` sample mapped to raw counters (memory without the page cache, like `docker stats`). */
export const toContainerStats = (containerId: string, s: Wire): ContainerStats => {
  const mem = s?.memory_stats ?? {}
  const cache = mem.stats?.total_inactive_file ?? mem.stats?.inactive_file ?? 0
  const usage = typeof mem.usage === "number" ? mem.usage : 0
  const blkio: Array<{ op: string; value: number }> = s?.blkio_stats?.io_service_bytes_recursive ?? []
  const networks: Record<string, { rx_bytes: number; tx_bytes: number }> = s?.networks ?? {}
  const cpu = s?.cpu_stats ?? {}
  return {
    containerId,
    readAt: parseDate(s?.read) ?? Date.now(),
    cpuTotalNs: cpu.cpu_usage?.total_usage ?? 0,
    systemCpuNs: cpu.system_cpu_usage ?? 0,
    onlineCpus: cpu.online_cpus ?? cpu.cpu_usage?.percpu_usage?.length ?? 1,
    memoryBytes: cache < usage ? usage - cache : usage,
    memoryLimitBytes: mem.limit ?? 0,
    netRxBytes: sum(Object.values(networks).map((n) => n.rx_bytes)),
    netTxBytes: sum(Object.values(networks).map((n) => n.tx_bytes)),
    blockReadBytes: sum((blkio ?? []).filter((e) => e.op?.toLowerCase() === "read").map((e) => e.value)),
    blockWriteBytes: sum((blkio ?? []).filter((e) => e.op?.toLowerCase() === "write").map((e) => e.value)),
    pids: s?.pids_stats?.current ?? 0
  }
}

const summaryOf = (c: Wire): ContainerSummary => ({
  id: c.Id,
  name: String(c.Names?.[0] ?? "").replace(/^\//, ""),
  image: c.Image,
  state: toState(c.State),
  status: c.Status ?? "",
  labels: c.Labels ?? {},
  ports: (c.Ports ?? [])
    .filter((p: Wire) => typeof p.PublicPort === "number")
    .map((p: Wire) => ({
      containerPort: p.PrivatePort,
      protocol: p.Type === "udp" ? "udp" : "tcp",
      hostIp: p.IP ?? "",
      hostPort: p.PublicPort
    })),
  createdAt: (c.Created ?? 0) * 1000
})

const infoOf = (c: Wire): ContainerInfo => {
  const state = c.State ?? {}
  const running = state.Running === true
  return {
    id: c.Id,
    name: String(c.Name ?? "").replace(/^\//, ""),
    image: c.Config?.Image ?? "",
    imageId: c.Image ?? "",
    state: toState(state.Status),
    status: state.Status ?? "",
    labels: c.Config?.Labels ?? {},
    ports: portsFromInspect(c.NetworkSettings?.Ports),
    createdAt: parseDate(c.Created) ?? 0,
    running,
    exitCode: running || state.Status === "created" ? null : (state.ExitCode ?? null),
    startedAt: parseDate(state.StartedAt),
    finishedAt: parseDate(state.FinishedAt),
    restartCount: c.RestartCount ?? 0,
    health: toHealth(state.Health?.Status),
    oomKilled: state.OOMKilled === true,
    networks: Object.keys(c.NetworkSettings?.Networks ?? {})
  }
}

/** Image summaries (list) carry no ExposedPorts/Healthcheck: `inspectImage` has them. */
const imageSummaryOf = (i: Wire): ImageInfo => ({
  id: i.Id,
  tags: (i.RepoTags ?? []).filter((t: string) => t !== "<none>:<none>"),
  labels: i.Labels ?? {},
  sizeBytes: i.Size ?? 0,
  createdAt: (i.Created ?? 0) * 1000,
  exposedPorts: [],
  healthcheck: null
})

const imageInfoOf = (i: Wire): ImageInfo => ({
  id: i.Id,
  tags: i.RepoTags ?? [],
  labels: i.Config?.Labels ?? {},
  sizeBytes: i.Size ?? 0,
  createdAt: parseDate(i.Created) ?? 0,
  exposedPorts: exposedPortsOf(i.Config?.ExposedPorts),
  healthcheck: healthcheckOf(i.Config?.Healthcheck)
})

/** The Docker create body for a spec, with Kyozo's safety defaults (no capabilities, limits, loopback ports). */
export const createBody = (spec: ContainerSpec): Record<string, unknown> => {
  const exposed: Record<string, object> = {}
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {}
  for (const p of spec.ports ?? []) {
    const key = `${p.containerPort}/${p.protocol ?? "tcp"}`
    exposed[key] = {}
    // "" lets the engine pick a free port.
    ;(bindings[key] ??= []).push({
      HostIp: p.hostIp ?? Defaults.hostIp,
      HostPort: p.hostPort ? String(p.hostPort) : ""
    })
  }
  const hc = spec.healthcheck
  return dropUndefined({
    Image: spec.image,
    Labels: labelsFor({}, spec.labels ?? {}),
    Env: spec.env ? Object.entries(spec.env).map(([k, v]) => `${k}=${v}`) : undefined,
    Cmd: spec.cmd,
    Entrypoint: spec.entrypoint,
    WorkingDir: spec.workingDir,
    User: spec.user,
    ExposedPorts: spec.ports?.length ? exposed : undefined,
    Tty: false,
    Healthcheck: hc
      ? dropUndefined({
          Test: hc.test,
          Interval: msToNs(hc.intervalMs),
          Timeout: msToNs(hc.timeoutMs),
          Retries: hc.retries,
          StartPeriod: msToNs(hc.startPeriodMs)
        })
      : undefined,
    HostConfig: dropUndefined({
      PortBindings: spec.ports?.length ? bindings : undefined,
      Mounts: spec.volumes?.length
        ? spec.volumes.map((v) => ({ Type: "volume", Source: v.source, Target: v.target }))
        : undefined,
      CapDrop: ["ALL"],
      CapAdd: spec.capAdd?.length ? spec.capAdd : undefined,
      SecurityOpt: ["no-new-privileges"],
      PidsLimit: spec.pidsLimit ?? Defaults.pidsLimit,
      Memory: spec.memoryBytes ?? Defaults.memoryBytes,
      NanoCpus: spec.nanoCpus ?? Defaults.nanoCpus,
      Privileged: false,
      ReadonlyRootfs: spec.readOnlyRootfs ?? false,
      NetworkMode: spec.network
    }),
    NetworkingConfig: spec.network
      ? {
          EndpointsConfig: {
            [spec.network]: dropUndefined({
              Aliases: spec.networkAliases?.length ? spec.networkAliases : undefined
            })
          }
        }
      : undefined
  })
}

const tailSize = 30

/** Builds a `ContainerRuntimeShape` on the engine at `options.dockerHost`. Connects lazily. */
export const make = (options: DockerRuntimeOptions = {}): Effect.Effect<ContainerRuntimeShape> =>
  Effect.sync(() => {
    const { endpoint, options: dockerOptions } = parseDockerHost(options.dockerHost)
    const docker = new Docker(dockerOptions)
    const callTimeout = Duration.decode(options.timeout ?? Duration.seconds(30))
    const idleTimeout = Duration.decode(options.streamIdleTimeout ?? Duration.minutes(5))

    /** One HTTP exchange with the engine, with a deadline; failures are typed, statuses left raw. */
    const dial = <A = Wire>(spec: DialSpec, timeout: Duration.Duration = callTimeout): Raw<A> =>
      Effect.tryPromise({
        try: (signal) =>
          new Promise<A>((resolve, reject) => {
            const query = dropUndefined(spec.query ?? {})
            docker.modem.dial(
              {
                path: `${spec.path}?`,
                method: spec.method,
                // docker-modem takes the query from `_query` and the JSON body from `_body`.
                options: { _query: query, _body: spec.body ?? {} },
                isStream: spec.stream === true || spec.hijack === true,
                hijack: spec.hijack,
                file: spec.file,
                authconfig: spec.authconfig,
                headers: spec.headers,
                abortSignal: signal,
                statusCodes: okStatuses
              } as Wire,
              (err: unknown, data: unknown) => (err ? reject(err) : resolve(data as A))
            )
          }),
        catch: (e) => toFailure(endpoint, spec.operation, e)
      }).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new DockerTimeout({ operation: spec.operation, timeoutMs: Duration.toMillis(timeout) })
        })
      )

    /** A streaming response, destroyed when the scope closes. */
    const dialStream = (spec: DialSpec, timeout: Duration.Duration = callTimeout) =>
      Effect.acquireRelease(dial<IncomingMessage>({ ...spec, stream: true }, timeout), (res) =>
        Effect.sync(() => res.destroy())
      )

    /** Response bytes with the inactivity timeout; connection drops become `DockerUnavailable`. */
    const bodyOf = (operation: string, res: NodeJS.ReadableStream, idle: Duration.Duration = idleTimeout) =>
      nodeStream(res, (e) => toFailure(endpoint, operation, e) as RuntimeError).pipe(
        Stream.timeoutFail(
          () =>
            new DockerTimeout({
              operation: `${operation} (stream idle)`,
              timeoutMs: Duration.toMillis(idle)
            }),
          idle
        )
      )

    const containerNotFound = (id: string) => () => Effect.fail(new ContainerNotFound({ container: id }))
    const notRunning = (id: string, operation: string) => (e: HttpStatus) =>
      Effect.fail(
        new InvalidContainerState({
          container: id,
          state: /paused/i.test(e.detail) ? "paused" : /running/i.test(e.detail) ? "running" : "stopped",
          operation
        })
      )

    const inspectContainer = (id: string) =>
      onStatus(
        dial({
          operation: "inspectContainer",
          method: "GET",
          path: `/containers/${encodeURIComponent(id)}/json`
        }),
        {
          404: containerNotFound(id)
        }
      ).pipe(Effect.map(infoOf))

    const inspectImage = (ref: string) =>
      onStatus(
        dial({ operation: "inspectImage", method: "GET", path: `/images/${encodeURIComponent(ref)}/json` }),
        {
          404: () => Effect.fail(new ImageNotFound({ image: ref }))
        }
      ).pipe(Effect.map(imageInfoOf))

    const logs: ContainerRuntimeShape["logs"] = (id, logOptions = {}) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const info = yield* onStatus(
            dial({ operation: "logs", method: "GET", path: `/containers/${encodeURIComponent(id)}/json` }),
            { 404: containerNotFound(id) }
          )
          const res = yield* onStatus(
            dialStream({
              operation: "logs",
              method: "GET",
              path: `/containers/${encodeURIComponent(id)}/logs`,
              query: {
                stdout: true,
                stderr: true,
                timestamps: true,
                follow: logOptions.follow === true,
                tail: logOptions.tail === undefined ? "all" : String(logOptions.tail),
                since: logOptions.since === undefined ? undefined : dockerTimestamp(logOptions.since)
              }
            }),
            { 404: containerNotFound(id) }
          )
          const demuxer = new Demuxer(info.Config?.Tty === true)
          const toLine = (l: { stream: "stdout" | "stderr"; text: string }): LogLine => {
            const { line, timestamp } = splitTimestamp(l.text)
            return { stream: l.stream, timestamp, line }
          }
          return bodyOf("logs", res).pipe(
            Stream.mapConcat((chunk) => demuxer.push(chunk).map(toLine)),
            Stream.concat(Stream.suspend(() => Stream.fromIterable(demuxer.end().map(toLine))))
          )
        })
      )

    const exec: ContainerRuntimeShape["exec"] = (id, cmd, execOptions = {}) => {
      const timeout =
        execOptions.timeoutMs === undefined ? callTimeout : Duration.millis(execOptions.timeoutMs)
      return Effect.scoped(
        Effect.gen(function* () {
          const created = yield* onStatus(
            dial<{ Id: string }>({
              operation: "exec",
              method: "POST",
              path: `/containers/${encodeURIComponent(id)}/exec`,
              body: { Cmd: cmd, AttachStdout: true, AttachStderr: true, AttachStdin: false, Tty: false }
            }),
            { 404: containerNotFound(id), 409: notRunning(id, "exec") }
          )
          const socket = yield* Effect.acquireRelease(
            onStatus(
              dial<NodeJS.ReadWriteStream & { destroy(): void }>(
                {
                  operation: "exec",
                  method: "POST",
                  path: `/exec/${created.Id}/start`,
                  body: { Detach: false, Tty: false },
                  hijack: true
                },
                timeout
              ),
              { 404: containerNotFound(id), 409: notRunning(id, "exec") }
            ),
            (s) => Effect.sync(() => s.destroy())
          )
          const chunks = yield* bodyOf("exec", socket, timeout).pipe(Stream.runCollect)
          const output = demuxAll(Buffer.concat(Chunk.toArray(chunks)), false)
          // The exit code can lag the end of the output by a moment.
          const inspect = dial<{ Running: boolean; ExitCode: number | null }>({
            operation: "exec",
            method: "GET",
            path: `/exec/${created.Id}/json`
          })
          let result = yield* onStatus(inspect)
          for (let i = 0; i < 20 && result.Running; i++) {
            yield* Effect.sleep(Duration.millis(50))
            result = yield* onStatus(inspect)
          }
          return { exitCode: result.ExitCode ?? -1, output }
        })
      ).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new DockerTimeout({ operation: "exec", timeoutMs: Duration.toMillis(timeout) })
        })
      )
    }

    const buildImage: ContainerRuntimeShape["buildImage"] = (build) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const deadline = Duration.millis(build.timeoutMs ?? 10 * 60_000)
          const tail: Array<string> = []
          const remember = (text: string) => {
            for (const line of text.split("\n")) {
              const trimmed = line.trimEnd()
              if (trimmed.length === 0) continue
              tail.push(trimmed)
              if (tail.length > tailSize) tail.shift()
            }
          }
          let contextError: unknown = undefined
          let imageId: string | undefined = undefined
          const failed = (reason: string) => new BuildFailed({ image: build.tag, reason, logTail: [...tail] })

          // A failing context stream must end the upload with an error, not with a short tar.
          const context = Readable.from(
            (async function* () {
              try {
                for await (const chunk of Stream.toAsyncIterable(build.context)) yield Buffer.from(chunk)
              } catch (e) {
                contextError = e
                throw e
              }
            })(),
            { objectMode: false }
          )
          const contextFailure = (e: RuntimeError): RuntimeError =>
            contextError === undefined
              ? e
              : failed(`the build context could not be read: ${errorText(contextError)}`)

          const res = yield* onStatus(
            dialStream(
              {
                operation: "buildImage",
                method: "POST",
                path: "/build",
                file: context,
                headers: { "Content-Type": "application/x-tar" },
                query: {
                  t: build.tag,
                  dockerfile: build.dockerfile,
                  labels: build.labelsInDockerfile
                    ? undefined
                    : JSON.stringify(labelsFor({}, build.labels ?? {})),
                  buildargs: build.buildArgs ? JSON.stringify(build.buildArgs) : undefined,
                  rm: true,
                  forcerm: true
                }
              },
              deadline
            ),
            { 400: (e) => Effect.fail(failed(e.detail)) }
          ).pipe(Effect.mapError(contextFailure))

          const steps = jsonLines(bodyOf("buildImage", res, deadline)).pipe(
            Stream.mapEffect((msg: Wire): Effect.Effect<Option.Option<BuildEvent>, RuntimeError> => {
              if (msg.error || msg.errorDetail) {
                const reason = String(msg.errorDetail?.message ?? msg.error)
                remember(reason)
                return Effect.fail(failed(reason))
              }
              if (typeof msg.aux?.ID === "string") imageId = msg.aux.ID
              const text =
                typeof msg.stream === "string"
                  ? msg.stream
                  : typeof msg.status === "string"
                    ? msg.status
                    : undefined
              if (text === undefined || text.trim().length === 0) return Effect.succeed(Option.none())
              remember(text)
              return Effect.succeed(Option.some({ _tag: "Step", line: text.trimEnd() } as const))
            }),
            Stream.filterMap((o) => o),
            Stream.mapError(contextFailure)
          )
          const built = Stream.fromEffect(
            Effect.suspend(() =>
              imageId !== undefined
                ? Effect.succeed(imageId)
                : inspectImage(build.tag).pipe(
                    Effect.map((i) => i.id),
                    Effect.catchTag("ImageNotFound", () =>
                      Effect.fail(failed("the engine ended the build without producing an image"))
                    )
                  )
            ).pipe(Effect.map((id): BuildEvent => ({ _tag: "Built", imageId: id, tag: build.tag })))
          )
          return Stream.concat(steps, built).pipe(
            Stream.interruptWhen(
              Effect.sleep(deadline).pipe(
                Effect.zipRight(
                  Effect.fail(
                    new DockerTimeout({ operation: "buildImage", timeoutMs: Duration.toMillis(deadline) })
                  )
                )
              )
            )
          )
        })
      )

    const pullImage: ContainerRuntimeShape["pullImage"] = (ref, pullOptions) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const { repo, tag } = splitRef(ref)
          const res = yield* onStatus(
            dialStream({
              operation: "pullImage",
              method: "POST",
              path: "/images/create",
              query: { fromImage: repo, tag },
              authconfig: pullOptions?.auth
            }),
            { 404: () => Effect.fail(new ImageNotFound({ image: ref })) }
          )
          return jsonLines(bodyOf("pullImage", res)).pipe(
            Stream.mapEffect((msg: Wire): Effect.Effect<PullEvent, RuntimeError> => {
              if (msg.error || msg.errorDetail) {
                const detail = String(msg.errorDetail?.message ?? msg.error)
                // Errors arrive inside a 200 stream.
                return Effect.fail(
                  /not found|does not exist|manifest unknown/i.test(detail)
                    ? new ImageNotFound({ image: ref })
                    : new DockerApiError({ operation: "pullImage", status: 200, detail })
                )
              }
              return Effect.succeed(
                typeof msg.id === "string"
                  ? { _tag: "Progress", status: String(msg.status ?? ""), id: msg.id }
                  : { _tag: "Progress", status: String(msg.status ?? "") }
              )
            })
          )
        })
      )

    const pushImage: ContainerRuntimeShape["pushImage"] = (ref, pushOptions) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const { repo, tag } = splitRef(ref)
          const res = yield* onStatus(
            dialStream({
              operation: "pushImage",
              method: "POST",
              path: `/images/${encodeURIComponent(repo)}/push`,
              query: { tag },
              // The engine insists on the header even for registries without auth.
              authconfig: pushOptions?.auth ?? {}
            }),
            { 404: () => Effect.fail(new ImageNotFound({ image: ref })) }
          )
          return jsonLines(bodyOf("pushImage", res)).pipe(
            Stream.mapEffect((msg: Wire): Effect.Effect<PullEvent, RuntimeError> =>
              msg.error || msg.errorDetail
                ? // Errors arrive inside a 200 stream.
                  Effect.fail(
                    new DockerApiError({
                      operation: "pushImage",
                      status: 200,
                      detail: String(msg.errorDetail?.message ?? msg.error)
                    })
                  )
                : Effect.succeed(
                    typeof msg.id === "string"
                      ? { _tag: "Progress", status: String(msg.status ?? ""), id: msg.id }
                      : { _tag: "Progress", status: String(msg.status ?? "") }
                  )
            )
          )
        })
      )

    const events: ContainerRuntimeShape["events"] = (eventOptions = {}) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const res = yield* onStatus(
            dialStream({
              operation: "events",
              method: "GET",
              path: "/events",
              query: {
                since: eventOptions.since === undefined ? undefined : dockerTimestamp(eventOptions.since),
                filters: filtersQuery(labelFilters(eventOptions))
              }
            })
          )
          return jsonLines(bodyOf("events", res)).pipe(
            Stream.map((e: Wire): EngineEvent => ({
              type: String(e.Type ?? e.type ?? ""),
              action: String(e.Action ?? e.status ?? ""),
              id: String(e.Actor?.ID ?? e.id ?? ""),
              // Docker mixes the object's labels with attributes such as name and image.
              labels: e.Actor?.Attributes ?? {},
              time: typeof e.timeNano === "number" ? Math.floor(e.timeNano / 1e6) : (e.time ?? 0) * 1000
            }))
          )
        })
      )

    const pruneReport = (removed: Array<string>, reclaimed: unknown): PruneReport => ({
      removed,
      reclaimedBytes: typeof reclaimed === "number" ? reclaimed : 0
    })

    const runtime: ContainerRuntimeShape = {
      mode: "docker",
      endpoint,

      ping: onStatus(dial({ operation: "ping", method: "GET", path: "/_ping" })).pipe(Effect.asVoid),

      version: onStatus(dial({ operation: "version", method: "GET", path: "/version" })).pipe(
        Effect.map((v) => ({ version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch }))
      ),

      createContainer: (spec) =>
        onStatus(
          dial<{ Id: string }>({
            operation: "createContainer",
            method: "POST",
            path: "/containers/create",
            query: { name: spec.name },
            body: createBody(spec)
          }),
          {
            // 404 on create: the image (or, rarely, the network) is missing.
            404: (e) =>
              Effect.fail(
                /network/i.test(e.detail) && spec.network
                  ? new NetworkNotFound({ network: spec.network })
                  : new ImageNotFound({ image: spec.image })
              ),
            409: (e) =>
              Effect.fail(new NameConflict({ kind: "container", name: spec.name, detail: e.detail }))
          }
        ).pipe(Effect.map((r) => ({ id: r.Id, name: spec.name }))),

      startContainer: (id) =>
        onStatus(
          dial({
            operation: "startContainer",
            method: "POST",
            path: `/containers/${encodeURIComponent(id)}/start`
          }),
          {
            404: containerNotFound(id),
            409: notRunning(id, "start")
          }
        ).pipe(Effect.asVoid),

      stopContainer: (id, stopOptions) => {
        const t = stopOptions?.timeoutSeconds ?? Defaults.stopTimeoutSeconds
        return onStatus(
          dial(
            {
              operation: "stopContainer",
              method: "POST",
              path: `/containers/${encodeURIComponent(id)}/stop`,
              query: { t }
            },
            Duration.sum(callTimeout, Duration.seconds(t))
          ),
          { 404: containerNotFound(id) }
        ).pipe(Effect.asVoid)
      },

      restartContainer: (id, restartOptions) => {
        const t = restartOptions?.timeoutSeconds ?? Defaults.stopTimeoutSeconds
        return onStatus(
          dial(
            {
              operation: "restartContainer",
              method: "POST",
              path: `/containers/${encodeURIComponent(id)}/restart`,
              query: { t }
            },
            Duration.sum(callTimeout, Duration.seconds(t))
          ),
          { 404: containerNotFound(id) }
        ).pipe(Effect.asVoid)
      },

      removeContainer: (id, removeOptions) =>
        onStatus(
          dial({
            operation: "removeContainer",
            method: "DELETE",
            path: `/containers/${encodeURIComponent(id)}`,
            query: { force: removeOptions?.force === true, v: true }
          }),
          {
            404: () => Effect.void,
            409: (e) => (/already in progress/i.test(e.detail) ? Effect.void : notRunning(id, "remove")(e))
          }
        ).pipe(Effect.asVoid),

      inspectContainer,

      listContainers: (filter) =>
        onStatus(
          dial<Array<Wire>>({
            operation: "listContainers",
            method: "GET",
            path: "/containers/json",
            query: { all: filter?.all === true, filters: filtersQuery(labelFilters(filter)) }
          })
        ).pipe(Effect.map((list) => list.map(summaryOf))),

      logs,

      stats: (id) =>
        onStatus(
          dial({
            operation: "stats",
            method: "GET",
            path: `/containers/${encodeURIComponent(id)}/stats`,
            query: { stream: false, "one-shot": true }
          }),
          { 404: containerNotFound(id) }
        ).pipe(Effect.map((s) => toContainerStats(id, s))),

      exec,
      buildImage,
      pullImage,
      pushImage,
      inspectImage,

      tagImage: (ref, target) => {
        const { repo, tag } = splitRef(target)
        return onStatus(
          dial({
            operation: "tagImage",
            method: "POST",
            path: `/images/${encodeURIComponent(ref)}/tag`,
            query: { repo, tag }
          }),
          { 404: () => Effect.fail(new ImageNotFound({ image: ref })) }
        ).pipe(Effect.asVoid)
      },

      listImages: (filter) =>
        onStatus(
          dial<Array<Wire>>({
            operation: "listImages",
            method: "GET",
            path: "/images/json",
            query: { filters: filtersQuery(labelFilters(filter)) }
          })
        ).pipe(Effect.map((list) => list.map(imageSummaryOf))),

      removeImage: (ref, removeOptions) =>
        onStatus(
          dial({
            operation: "removeImage",
            method: "DELETE",
            path: `/images/${encodeURIComponent(ref)}`,
            query: { force: removeOptions?.force === true }
          }),
          { 404: () => Effect.void }
        ).pipe(Effect.asVoid),

      pruneImages: (filter) =>
        onStatus(
          dial<{
            ImagesDeleted: Array<{ Deleted?: string; Untagged?: string }> | null
            SpaceReclaimed: number
          }>(
            {
              operation: "pruneImages",
              method: "POST",
              path: "/images/prune",
              // Unused kyozo images, tagged or not; never anything without kyozo.managed=true.
              query: {
                filters: filtersQuery(labelFilters(filter, { [Managed]: "true" }), { dangling: ["false"] })
              }
            },
            Duration.sum(callTimeout, Duration.minutes(2))
          )
        ).pipe(
          Effect.map((r) =>
            pruneReport(
              (r.ImagesDeleted ?? []).flatMap((d) => (d.Deleted ? [d.Deleted] : [])),
              r.SpaceReclaimed
            )
          )
        ),

      pruneBuildCache: (filter) =>
        onStatus(
          dial<{ CachesDeleted: Array<string> | null; SpaceReclaimed: number }>(
            {
              operation: "pruneBuildCache",
              method: "POST",
              path: "/build/prune",
              query: { filters: filtersQuery(labelFilters(filter, { [Managed]: "true" })) }
            },
            Duration.sum(callTimeout, Duration.minutes(2))
          )
        ).pipe(Effect.map((r) => pruneReport(r.CachesDeleted ?? [], r.SpaceReclaimed))),

      createNetwork: (spec) => {
        const labels = labelsFor({}, spec.labels ?? {})
        return onStatus(
          dial<{ Id: string }>({
            operation: "createNetwork",
            method: "POST",
            path: "/networks/create",
            body: {
              Name: spec.name,
              Labels: labels,
              Internal: spec.internal === true,
              CheckDuplicate: true,
              Driver: "bridge"
            }
          }),
          {
            409: (e) => Effect.fail(new NameConflict({ kind: "network", name: spec.name, detail: e.detail }))
          }
        ).pipe(Effect.map((r): NetworkInfo => ({ id: r.Id, name: spec.name, labels })))
      },

      removeNetwork: (idOrName) =>
        onStatus(
          dial({
            operation: "removeNetwork",
            method: "DELETE",
            path: `/networks/${encodeURIComponent(idOrName)}`
          }),
          { 404: () => Effect.void }
        ).pipe(Effect.asVoid),

      listNetworks: (filter) =>
        onStatus(
          dial<Array<Wire>>({
            operation: "listNetworks",
            method: "GET",
            path: "/networks",
            query: { filters: filtersQuery(labelFilters(filter)) }
          })
        ).pipe(
          Effect.map((list) =>
            list.map((n): NetworkInfo => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} }))
          )
        ),

      connectNetwork: (network, container, aliases) =>
        onStatus(
          dial({
            operation: "connectNetwork",
            method: "POST",
            path: `/networks/${encodeURIComponent(network)}/connect`,
            body: { Container: container, EndpointConfig: aliases?.length ? { Aliases: aliases } : {} }
          }),
          {
            404: (e) =>
              Effect.fail(
                /container/i.test(e.detail)
                  ? new ContainerNotFound({ container })
                  : new NetworkNotFound({ network })
              ),
            // Connecting twice is success: activities run at least once.
            403: (e) => (/already exists/i.test(e.detail) ? Effect.void : Effect.fail(apiError(e)))
          }
        ).pipe(Effect.asVoid),

      createVolume: (spec) => {
        const labels = labelsFor({}, spec.labels ?? {})
        return onStatus(
          dial<{ Name: string; Labels: Record<string, string> | null }>({
            operation: "createVolume",
            method: "POST",
            path: "/volumes/create",
            body: { Name: spec.name, Labels: labels }
          }),
          { 409: (e) => Effect.fail(new NameConflict({ kind: "volume", name: spec.name, detail: e.detail })) }
        ).pipe(Effect.map((v): VolumeInfo => ({ name: v.Name, labels: v.Labels ?? labels })))
      },

      removeVolume: (name) =>
        onStatus(
          dial({ operation: "removeVolume", method: "DELETE", path: `/volumes/${encodeURIComponent(name)}` }),
          {
            404: () => Effect.void
          }
        ).pipe(Effect.asVoid),

      listVolumes: (filter) =>
        onStatus(
          dial<{ Volumes: Array<Wire> | null }>({
            operation: "listVolumes",
            method: "GET",
            path: "/volumes",
            query: { filters: filtersQuery(labelFilters(filter)) }
          })
        ).pipe(
          Effect.map((r) =>
            (r.Volumes ?? []).map((v): VolumeInfo => ({ name: v.Name, labels: v.Labels ?? {} }))
          )
        ),

      events
    }
    return runtime
  })

/** The engine named by DOCKER_HOST (or the local socket), 30 s per call. */

/** The engine with explicit options (tests, tools). */
export const layerWith = (options: DockerRuntimeOptions): Layer.Layer<ContainerRuntime> =>
  Layer.effect(ContainerRuntime, make(options))

/** The engine from `KyozoConfig` (DOCKER_HOST, KYOZO_DOCKER_TIMEOUT). */
export const layerConfig: Layer.Layer<ContainerRuntime, never, KyozoConfig> = Layer.effect(
  ContainerRuntime,
  Effect.flatMap(KyozoConfig, (config) =>
    make({ dockerHost: config.dockerHost, timeout: config.dockerTimeout })
  )
)

/** The engine KyozoConfig names (DOCKER_HOST, KYOZO_DOCKER_TIMEOUT), configuration read on its own. */
export const layer: Layer.Layer<ContainerRuntime> = layerConfig.pipe(
  Layer.provide(KyozoConfig.Default),
  Layer.orDie
)

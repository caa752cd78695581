/**
 * Docker's wire formats, decoded and encoded: container, image and stats JSON into typed values,
 * the create body with Kyozo's safety defaults, log timestamps and the multiplexed log stream.
 */
import { StringDecoder } from "node:string_decoder"

import {
  type ContainerInfo,
  type ContainerSpec,
  type ContainerState,
  type ContainerStats,
  type ContainerSummary,
  Defaults,
  type HealthState,
  type ImageHealthcheck,
  type ImageInfo,
  type PublishedPort
} from "../ContainerRuntime.js"
import { labelsFor } from "../Labels.js"
import { dropUndefined, type Wire } from "./DockerTransport.js"

export const parseDate = (value: unknown): number | null => {
  if (typeof value !== "string" || value.startsWith("0001-01-01")) return null
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? null : ms
}

export const rfc3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d) ?/

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
export const demuxAll = (data: Buffer, raw: boolean): string => {
  const demuxer = new Demuxer(raw)
  const lines = [...demuxer.push(data), ...demuxer.end()]
  const text = lines.map((l) => l.text).join("\n")
  return data.length > 0 && data[data.length - 1] === 10 ? `${text}\n` : text
}

export const containerStates: ReadonlySet<string> = new Set([
  "created",
  "running",
  "paused",
  "restarting",
  "exited",
  "dead",
  "removing"
])
export const toState = (s: unknown): ContainerState =>
  typeof s === "string" && containerStates.has(s) ? (s as ContainerState) : "dead"

export const toHealth = (s: unknown): HealthState =>
  s === "starting" || s === "healthy" || s === "unhealthy" ? s : "none"

export const portsFromInspect = (
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

export const nsToMs = (ns: unknown) => (typeof ns === "number" && ns > 0 ? Math.round(ns / 1e6) : undefined)
export const msToNs = (ms: number | undefined) => (ms === undefined ? undefined : Math.round(ms * 1e6))

export const healthcheckOf = (hc: Wire): ImageHealthcheck | null => {
  if (!hc || !Array.isArray(hc.Test) || hc.Test.length === 0 || hc.Test[0] === "NONE") return null
  return dropUndefined({
    test: hc.Test,
    intervalMs: nsToMs(hc.Interval),
    timeoutMs: nsToMs(hc.Timeout),
    retries: typeof hc.Retries === "number" && hc.Retries > 0 ? hc.Retries : undefined,
    startPeriodMs: nsToMs(hc.StartPeriod)
  }) as unknown as ImageHealthcheck
}

export const exposedPortsOf = (exposed: Record<string, unknown> | null | undefined): Array<number> =>
  Object.keys(exposed ?? {})
    .map((k) => Number(k.split("/")[0]))
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => a - b)

/** "repo:tag" → parts; the tag is after the last colon that follows the last slash (registry ports). */
export const splitRef = (ref: string): { repo: string; tag: string } => {
  const slash = ref.lastIndexOf("/")
  const colon = ref.lastIndexOf(":")
  return colon > slash
    ? { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) }
    : { repo: ref, tag: "latest" }
}

export const sum = (values: Iterable<number>) => {
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

export const summaryOf = (c: Wire): ContainerSummary => ({
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

export const infoOf = (c: Wire): ContainerInfo => {
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

/** Image summaries (list) carry no ExposedPorts/Healthcheck/Volumes: `inspectImage` has them. */
export const imageSummaryOf = (i: Wire): ImageInfo => ({
  id: i.Id,
  tags: (i.RepoTags ?? []).filter((t: string) => t !== "<none>:<none>"),
  labels: i.Labels ?? {},
  sizeBytes: i.Size ?? 0,
  createdAt: (i.Created ?? 0) * 1000,
  exposedPorts: [],
  healthcheck: null,
  volumes: []
})

export const imageInfoOf = (i: Wire): ImageInfo => ({
  id: i.Id,
  tags: i.RepoTags ?? [],
  labels: i.Config?.Labels ?? {},
  sizeBytes: i.Size ?? 0,
  createdAt: parseDate(i.Created) ?? 0,
  exposedPorts: exposedPortsOf(i.Config?.ExposedPorts),
  healthcheck: healthcheckOf(i.Config?.Healthcheck),
  volumes: Object.keys(i.Config?.Volumes ?? {})
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

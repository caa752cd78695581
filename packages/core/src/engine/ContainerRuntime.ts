/**
 * The container engine as Kyozo sees it. One tag, two implementations: `DockerRuntime` (dockerode
 * against a real engine) and `MockRuntime` (in memory, for tests and for machines without Docker).
 * `CircuitBreaker.guardRuntime` wraps either one.
 *
 * Every object created through this interface carries the kyozo labels (see `Labels.ts`); the
 * implementations add `kyozo.managed=true` themselves so no caller can forget it.
 */
import type { RuntimeError } from "@kyozo/api/domain/RuntimeErrors"
import { Context, type Effect, type Stream } from "effect"

export type RuntimeMode = "docker" | "mock"

export type ContainerState = "created" | "running" | "paused" | "restarting" | "exited" | "dead" | "removing"

export type HealthState = "starting" | "healthy" | "unhealthy" | "none"

export interface PortBinding {
  readonly containerPort: number
  readonly protocol?: "tcp" | "udp"
  /** Host address to bind; defaults to 127.0.0.1 (never all interfaces unless an admin asks). */
  readonly hostIp?: string
  /** Host port; 0 or absent lets the engine choose a free one. */
  readonly hostPort?: number
}

export interface PublishedPort {
  readonly containerPort: number
  readonly protocol: "tcp" | "udp"
  readonly hostIp: string
  readonly hostPort: number
}

export interface ImageHealthcheck {
  readonly test: ReadonlyArray<string>
  readonly intervalMs?: number
  readonly timeoutMs?: number
  readonly retries?: number
  readonly startPeriodMs?: number
}

export interface ContainerSpec {
  /** Deterministic name (from service and deployment ids) so a retried create is idempotent. */
  readonly name: string
  readonly image: string
  readonly labels?: Record<string, string>
  readonly env?: Record<string, string>
  readonly cmd?: ReadonlyArray<string>
  readonly entrypoint?: ReadonlyArray<string>
  readonly workingDir?: string
  readonly user?: string
  readonly ports?: ReadonlyArray<PortBinding>
  /** Hard memory limit in bytes (default 512 MiB). */
  readonly memoryBytes?: number
  /** CPU limit in billionths of a CPU (default 1 CPU). */
  readonly nanoCpus?: number
  /** Process limit (default 256). */
  readonly pidsLimit?: number
  /** Capabilities added back after `CapDrop: ["ALL"]`. */
  readonly capAdd?: ReadonlyArray<string>
  readonly network?: string
  readonly networkAliases?: ReadonlyArray<string>
  readonly healthcheck?: ImageHealthcheck
  readonly readOnlyRootfs?: boolean
  /** Named Docker volumes to mount (never host paths: a tenant must not reach the host's files). */
  readonly volumes?: ReadonlyArray<VolumeMount>
}

export interface VolumeMount {
  /** The Docker volume's name. */
  readonly source: string
  /** The absolute path inside the container. */
  readonly target: string
}

export interface ContainerRef {
  readonly id: string
  readonly name: string
}

export interface ContainerSummary {
  readonly id: string
  readonly name: string
  readonly image: string
  readonly state: ContainerState
  readonly status: string
  readonly labels: Record<string, string>
  readonly ports: ReadonlyArray<PublishedPort>
  /** Epoch milliseconds. */
  readonly createdAt: number
}

export interface ContainerInfo extends ContainerSummary {
  readonly imageId: string
  readonly running: boolean
  readonly exitCode: number | null
  readonly startedAt: number | null
  readonly finishedAt: number | null
  readonly restartCount: number
  readonly health: HealthState
  readonly oomKilled: boolean
  readonly networks: ReadonlyArray<string>
}

/** Raw counters of one stats sample; CPU % needs the previous sample (see `cpuPercent`). */
export interface ContainerStats {
  readonly containerId: string
  /** Epoch milliseconds when the engine read the sample. */
  readonly readAt: number
  readonly cpuTotalNs: number
  readonly systemCpuNs: number
  readonly onlineCpus: number
  readonly memoryBytes: number
  readonly memoryLimitBytes: number
  readonly netRxBytes: number
  readonly netTxBytes: number
  readonly blockReadBytes: number
  readonly blockWriteBytes: number
  readonly pids: number
}

/** CPU use in percent of one CPU × online CPUs, between two samples of the same container. */
export const cpuPercent = (previous: ContainerStats | undefined, current: ContainerStats): number => {
  if (!previous) return 0
  const cpuDelta = current.cpuTotalNs - previous.cpuTotalNs
  const systemDelta = current.systemCpuNs - previous.systemCpuNs
  if (cpuDelta <= 0 || systemDelta <= 0) return 0
  return (cpuDelta / systemDelta) * Math.max(1, current.onlineCpus) * 100
}

export interface LogLine {
  readonly stream: "stdout" | "stderr"
  /** Epoch milliseconds, when the engine knows it. */
  readonly timestamp: number | null
  readonly line: string
}

export interface LogOptions {
  readonly tail?: number
  /** Epoch milliseconds. */
  readonly since?: number
  readonly follow?: boolean
}

export interface BuildOptions {
  /** The build context as a tar stream (see BuildContext). */
  readonly context: Stream.Stream<Uint8Array, unknown>
  /** Tag of the resulting image, e.g. "kyozo/svc_abc:ctx-1f2e". */
  readonly tag: string
  readonly dockerfile?: string
  readonly labels?: Record<string, string>
  /**
   * The Dockerfile's own LABEL line carries `labels` (Kyozo's generated Dockerfiles do): the engine
   * is given no build-time labels, which the classic builder runs as one extra step each (~100-250 ms).
   */
  readonly labelsInDockerfile?: boolean
  readonly buildArgs?: Record<string, string>
  /** Whole-build deadline (default 10 minutes). */
  readonly timeoutMs?: number
}

export type BuildEvent =
  | { readonly _tag: "Step"; readonly line: string }
  | { readonly _tag: "Built"; readonly imageId: string; readonly tag: string }

/** Credentials for one registry, as the engine's X-Registry-Auth wants them. */
export interface RegistryAuth {
  readonly username: string
  readonly password: string
  readonly serveraddress?: string
}

export type PullEvent = { readonly _tag: "Progress"; readonly status: string; readonly id?: string }

export interface ImageInfo {
  readonly id: string
  readonly tags: ReadonlyArray<string>
  readonly labels: Record<string, string>
  readonly sizeBytes: number
  readonly createdAt: number
  readonly exposedPorts: ReadonlyArray<number>
  readonly healthcheck: ImageHealthcheck | null
  /** The image's `VOLUME` paths (Config.Volumes), which Kyozo mounts as named volumes. */
  readonly volumes: ReadonlyArray<string>
}

export interface PruneReport {
  readonly removed: ReadonlyArray<string>
  readonly reclaimedBytes: number
}

export interface NetworkSpec {
  readonly name: string
  readonly labels?: Record<string, string>
  readonly internal?: boolean
}

export interface NetworkInfo {
  readonly id: string
  readonly name: string
  readonly labels: Record<string, string>
}

export interface VolumeSpec {
  readonly name: string
  readonly labels?: Record<string, string>
}

export interface VolumeInfo {
  readonly name: string
  readonly labels: Record<string, string>
}

export interface EngineEvent {
  readonly type: string // "container" | "image" | "network" | "volume" | …
  readonly action: string // "create" | "start" | "die" | "destroy" | "health_status: healthy" | …
  readonly id: string
  readonly labels: Record<string, string>
  /** Epoch milliseconds. */
  readonly time: number
}

export interface EngineVersion {
  readonly version: string
  readonly apiVersion: string
  readonly os: string
  readonly arch: string
}

export interface ExecResult {
  readonly exitCode: number
  readonly output: string
}

export interface LabelFilter {
  /** Every entry must match; a value of `null` matches the key with any value. */
  readonly labels?: Record<string, string | null>
}

export interface BuildCacheBudget {
  readonly keepBytes: number
}

export interface ContainerRuntimeShape {
  readonly mode: RuntimeMode
  /** Short human description of the endpoint (socket path, tcp address, "in-memory"). */
  readonly endpoint: string

  readonly ping: Effect.Effect<void, RuntimeError>
  readonly version: Effect.Effect<EngineVersion, RuntimeError>

  readonly createContainer: (spec: ContainerSpec) => Effect.Effect<ContainerRef, RuntimeError>
  readonly startContainer: (id: string) => Effect.Effect<void, RuntimeError>
  readonly stopContainer: (
    id: string,
    options?: { readonly timeoutSeconds?: number }
  ) => Effect.Effect<void, RuntimeError>
  readonly restartContainer: (
    id: string,
    options?: { readonly timeoutSeconds?: number }
  ) => Effect.Effect<void, RuntimeError>
  /** Removing a container that is already gone succeeds. */
  readonly removeContainer: (
    id: string,
    options?: { readonly force?: boolean }
  ) => Effect.Effect<void, RuntimeError>
  readonly inspectContainer: (id: string) => Effect.Effect<ContainerInfo, RuntimeError>
  readonly listContainers: (
    filter?: LabelFilter & { readonly all?: boolean }
  ) => Effect.Effect<ReadonlyArray<ContainerSummary>, RuntimeError>
  readonly logs: (id: string, options?: LogOptions) => Stream.Stream<LogLine, RuntimeError>
  /** One sample (`one-shot`): no waiting for a second sample. */
  readonly stats: (id: string) => Effect.Effect<ContainerStats, RuntimeError>
  readonly exec: (
    id: string,
    cmd: ReadonlyArray<string>,
    options?: { readonly timeoutMs?: number }
  ) => Effect.Effect<ExecResult, RuntimeError>

  /** Streams build progress; ends with one `Built` event, or fails with `BuildFailed`. */
  readonly buildImage: (options: BuildOptions) => Stream.Stream<BuildEvent, RuntimeError>
  readonly pullImage: (
    ref: string,
    options?: {
      readonly auth?: {
        readonly username: string
        readonly password: string
        readonly serveraddress?: string
      }
    }
  ) => Stream.Stream<PullEvent, RuntimeError>
  /** Pushes a tagged image to its registry (the host in the reference); errors inside the stream fail it. */
  readonly pushImage: (
    ref: string,
    options?: { readonly auth?: RegistryAuth }
  ) => Stream.Stream<PullEvent, RuntimeError>
  readonly inspectImage: (ref: string) => Effect.Effect<ImageInfo, RuntimeError>
  readonly tagImage: (ref: string, tag: string) => Effect.Effect<void, RuntimeError>
  readonly listImages: (filter?: LabelFilter) => Effect.Effect<ReadonlyArray<ImageInfo>, RuntimeError>
  /** Removing an image that is already gone succeeds. */
  readonly removeImage: (
    ref: string,
    options?: { readonly force?: boolean }
  ) => Effect.Effect<void, RuntimeError>
  /** Prunes unused images carrying the given labels (always restricted to `kyozo.managed=true`). */
  readonly pruneImages: (filter?: LabelFilter) => Effect.Effect<PruneReport, RuntimeError>
  /**
   * Trims the engine's build cache to `keepBytes`, least recently used first (entries in use stay).
   * The cache is host-wide and carries no labels, so it is bounded by size, never "pruned by label".
   */
  readonly pruneBuildCache: (options: BuildCacheBudget) => Effect.Effect<PruneReport, RuntimeError>

  readonly createNetwork: (spec: NetworkSpec) => Effect.Effect<NetworkInfo, RuntimeError>
  readonly removeNetwork: (idOrName: string) => Effect.Effect<void, RuntimeError>
  readonly listNetworks: (filter?: LabelFilter) => Effect.Effect<ReadonlyArray<NetworkInfo>, RuntimeError>
  readonly connectNetwork: (
    network: string,
    container: string,
    aliases?: ReadonlyArray<string>
  ) => Effect.Effect<void, RuntimeError>

  readonly createVolume: (spec: VolumeSpec) => Effect.Effect<VolumeInfo, RuntimeError>
  readonly removeVolume: (name: string) => Effect.Effect<void, RuntimeError>
  readonly listVolumes: (filter?: LabelFilter) => Effect.Effect<ReadonlyArray<VolumeInfo>, RuntimeError>

  /** Engine events from `since` (epoch ms) on; resume with `since` after a drop. */
  readonly events: (
    options?: LabelFilter & { readonly since?: number }
  ) => Stream.Stream<EngineEvent, RuntimeError>
}

export class ContainerRuntime extends Context.Tag("@kyozo/core/ContainerRuntime")<
  ContainerRuntime,
  ContainerRuntimeShape
>() {}

/** Resource defaults for containers of user folders: every container gets limits. */
export const Defaults = {
  memoryBytes: 512 * 1024 * 1024,
  nanoCpus: 1_000_000_000,
  pidsLimit: 256,
  hostIp: "127.0.0.1",
  stopTimeoutSeconds: 10
} as const

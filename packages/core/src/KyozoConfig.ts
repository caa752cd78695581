/**
 * Configuration from the environment. Every variable is documented in the README's table.
 */
import * as os from "node:os"
import * as path from "node:path"

import { Config, Duration, Effect, Option, Redacted } from "effect"

export type RuntimeChoice = "auto" | "docker" | "mock"

const defaultDataDir = (): string => {
  const xdg = process.env.XDG_DATA_HOME
  if (xdg) return path.join(xdg, "kyozo")
  const home = os.homedir()
  return home ? path.join(home, ".local", "share", "kyozo") : path.resolve(".kyozo")
}

export class KyozoConfig extends Effect.Service<KyozoConfig>()("@kyozo/core/KyozoConfig", {
  effect: Effect.gen(function* () {
    const host = yield* Config.string("KYOZO_HOST").pipe(Config.withDefault("127.0.0.1"))
    const port = yield* Config.port("KYOZO_PORT").pipe(Config.withDefault(4040))
    const dataDir = yield* Config.string("KYOZO_DATA_DIR").pipe(Config.withDefault(defaultDataDir()))
    const databaseUrl = yield* Config.option(Config.redacted("DATABASE_URL"))
    const runtime = yield* Config.literal(
      "auto",
      "docker",
      "mock"
    )("KYOZO_RUNTIME").pipe(Config.withDefault("auto" as const))
    const dockerHost = yield* Config.option(Config.string("DOCKER_HOST"))
    const healthInterval = yield* Config.duration("KYOZO_HEALTH_INTERVAL").pipe(
      Config.withDefault(Duration.seconds(30))
    )
    // A steady health status is stored again after this long (changes are stored at once).
    const healthSampleInterval = yield* Config.duration("KYOZO_HEALTH_SAMPLE_INTERVAL").pipe(
      Config.withDefault(Duration.minutes(5))
    )
    const metricsInterval = yield* Config.duration("KYOZO_METRICS_INTERVAL").pipe(
      Config.withDefault(Duration.seconds(60))
    )
    const cleanupInterval = yield* Config.duration("KYOZO_CLEANUP_INTERVAL").pipe(
      Config.withDefault(Duration.minutes(5))
    )
    const dockerTimeout = yield* Config.duration("KYOZO_DOCKER_TIMEOUT").pipe(
      Config.withDefault(Duration.seconds(30))
    )
    // The engine's builder for image builds: BuildKit (falls back to classic where the engine has none).
    const dockerBuilder = yield* Config.literal(
      "buildkit",
      "classic"
    )("KYOZO_DOCKER_BUILDER").pipe(Config.withDefault("buildkit" as const))
    const breakerThreshold = yield* Config.integer("KYOZO_BREAKER_THRESHOLD").pipe(Config.withDefault(5))
    const breakerResetAfter = yield* Config.duration("KYOZO_BREAKER_RESET").pipe(
      Config.withDefault(Duration.seconds(10))
    )
    // The edge router: Caddy as a separate data plane, or the in-process fallback.
    const edge = yield* Config.literal(
      "auto",
      "caddy",
      "inprocess"
    )("KYOZO_EDGE").pipe(Config.withDefault("auto" as const))
    const caddyAdmin = yield* Config.option(Config.string("KYOZO_CADDY_ADMIN"))
    // The caddy binary to start; unset: the first `caddy` on PATH.
    const caddyBin = yield* Config.option(Config.nonEmptyString("KYOZO_CADDY_BIN"))
    // Where deploys by path resolve their folders (each team its own sub-folder).
    const workspacesRoot = yield* Config.option(Config.nonEmptyString("KYOZO_WORKSPACES_ROOT"))
    const edgePort = yield* Config.integer("KYOZO_EDGE_PORT").pipe(Config.withDefault(4080))
    // HTTPS for host names through Caddy's internal CA; 0 (the default): none.
    const edgeTlsPort = yield* Config.integer("KYOZO_EDGE_TLS_PORT").pipe(Config.withDefault(0))
    const edgeHost = yield* Config.string("KYOZO_EDGE_HOST").pipe(Config.withDefault("127.0.0.1"))
    const domain = yield* Config.string("KYOZO_DOMAIN").pipe(Config.withDefault("localhost"))
    // ACME (a public CA) for public names on the HTTPS port; unset: Caddy's internal CA only.
    const acmeEmail = yield* Config.option(Config.nonEmptyString("KYOZO_ACME_EMAIL")).pipe(
      Config.map(Option.getOrUndefined)
    )
    const acmeCa = yield* Config.option(Config.nonEmptyString("KYOZO_ACME_CA")).pipe(
      Config.map(Option.getOrUndefined)
    )
    // Quotas of a new team: by default 100 services of the default size (500 millicores, 512 MB).
    const defaultQuotas = {
      quotaServices: yield* Config.integer("KYOZO_DEFAULT_QUOTA_SERVICES").pipe(Config.withDefault(100)),
      quotaCpuMillis: yield* Config.integer("KYOZO_DEFAULT_QUOTA_CPU_MILLIS").pipe(
        Config.withDefault(50_000)
      ),
      quotaMemoryMb: yield* Config.integer("KYOZO_DEFAULT_QUOTA_MEMORY_MB").pipe(Config.withDefault(51_200))
    }
    // Outbound calls (webhooks) to private addresses: an admin's switch (metadata addresses never).
    const webhookAllowPrivate = yield* Config.string("KYOZO_WEBHOOK_ALLOW_PRIVATE").pipe(
      Config.withDefault("")
    )
    // Where PGlite's initialised template folder is cached (a new data folder is a copy of it).
    const cacheHome = yield* Config.string("XDG_CACHE_HOME").pipe(Config.withDefault(""))
    const autoscaleInterval = yield* Config.duration("KYOZO_AUTOSCALE_INTERVAL").pipe(
      Config.withDefault(Duration.seconds(15))
    )
    // Uploads: the team quota, how long an unused upload is kept, how often expired ones are swept,
    // and optional overrides of UploadArchive's per-archive limits (200 MiB, 20 000 entries).
    const uploadQuotaMb = yield* Config.integer("KYOZO_UPLOAD_QUOTA_MB").pipe(Config.withDefault(2048))
    const uploadTtl = yield* Config.duration("KYOZO_UPLOAD_TTL").pipe(Config.withDefault(Duration.hours(1)))
    const uploadSweepInterval = yield* Config.duration("KYOZO_UPLOAD_SWEEP_INTERVAL").pipe(
      Config.withDefault(Duration.minutes(5))
    )
    const uploadMaxBytes = yield* Config.option(Config.integer("KYOZO_UPLOAD_MAX_BYTES"))
    const uploadMaxFiles = yield* Config.option(Config.integer("KYOZO_UPLOAD_MAX_FILES"))
    // Prices of one vCPU hour and one GB hour, for the cost figures of recommendations.
    const prices = {
      vcpuHour: yield* Config.number("KYOZO_PRICE_VCPU_HOUR").pipe(Config.withDefault(0.04)),
      gbHour: yield* Config.number("KYOZO_PRICE_GB_HOUR").pipe(Config.withDefault(0.005))
    }
    // How long requests in flight may finish after SIGTERM.
    const shutdownGraceMs = yield* Config.integer("KYOZO_SHUTDOWN_GRACE_MS").pipe(Config.withDefault(10_000))
    // Issue 14: the server's and the builder's settings, read here only (the modules parse them).
    const optionalString = (name: string) =>
      Config.option(Config.string(name)).pipe(Config.map(Option.getOrUndefined))
    const metricsToken = yield* Config.option(Config.redacted("KYOZO_METRICS_TOKEN"))
    const rateLimit = yield* optionalString("KYOZO_RATE_LIMIT")
    const otelEndpoint = yield* optionalString("OTEL_EXPORTER_OTLP_ENDPOINT")
    const sseHeartbeatMs = yield* Config.integer("KYOZO_SSE_HEARTBEAT_MS").pipe(Config.withDefault(15_000))
    const ssePollMs = yield* Config.integer("KYOZO_SSE_POLL_MS").pipe(Config.withDefault(2_000))
    const sessionTtl = yield* Config.duration("KYOZO_SESSION_TTL").pipe(
      Config.withDefault(Duration.hours(12))
    )
    const apiMaxBodyBytes = yield* Config.integer("KYOZO_API_MAX_BODY_BYTES").pipe(
      Config.withDefault(1024 * 1024)
    )
    const streamRecheckMs = yield* Config.integer("KYOZO_STREAM_RECHECK_MS").pipe(Config.withDefault(500))
    const build = {
      caFile: yield* optionalString("KYOZO_BUILD_CA_FILE"),
      npmRegistry: yield* optionalString("KYOZO_BUILD_NPM_REGISTRY"),
      pipIndexUrl: yield* optionalString("KYOZO_BUILD_PIP_INDEX_URL"),
      pipFindLinks: yield* optionalString("KYOZO_BUILD_PIP_FIND_LINKS"),
      baseImagesFile: yield* optionalString("KYOZO_BASE_IMAGES_FILE"),
      baseImages: yield* optionalString("KYOZO_BASE_IMAGES"),
      registries: yield* optionalString("KYOZO_REGISTRIES"),
      registriesFile: yield* optionalString("KYOZO_REGISTRIES_FILE")
    }
    return {
      host,
      port,
      dataDir,
      // `DATABASE_URL=` (set but empty) means the embedded database, like unset.
      databaseUrl: Option.getOrUndefined(
        Option.filter(databaseUrl, (url) => Redacted.value(url).trim() !== "")
      ),
      runtime: runtime as RuntimeChoice,
      dockerHost: Option.getOrUndefined(dockerHost),
      healthInterval,
      healthSampleInterval,
      metricsInterval,
      cleanupInterval,
      dockerTimeout,
      dockerBuilder: dockerBuilder as "buildkit" | "classic",
      breakerThreshold,
      breakerResetAfter,
      edge: edge as "auto" | "caddy" | "inprocess",
      caddyAdmin: Option.getOrUndefined(caddyAdmin),
      caddyBin: Option.getOrUndefined(caddyBin),
      workspacesRoot: path.resolve(Option.getOrElse(workspacesRoot, () => path.join(dataDir, "workspaces"))),
      edgePort,
      edgeTlsPort,
      acmeEmail,
      acmeCa,
      edgeHost,
      domain,
      defaultQuotas,
      webhookAllowPrivate: /^(1|true|yes)$/i.test(webhookAllowPrivate),
      cacheDir: cacheHome || path.join(os.homedir(), ".cache"),
      autoscaleInterval,
      uploadQuotaMb,
      uploadTtl,
      uploadSweepInterval,
      uploadMaxBytes: Option.getOrUndefined(uploadMaxBytes),
      uploadMaxFiles: Option.getOrUndefined(uploadMaxFiles),
      shutdownGraceMs,
      prices,
      metricsToken: Option.getOrUndefined(metricsToken),
      rateLimit,
      otelEndpoint,
      sseHeartbeatMs,
      ssePollMs,
      sessionTtl,
      apiMaxBodyBytes,
      streamRecheckMs,
      build
    } as const
  })
}) {}

/**
 * The provided KyozoConfig, or one read now: for code that also runs outside the server's layers
 * (the CLI's local commands, unit tests). A bad value dies naming the variable.
 */
export const currentKyozoConfig: Effect.Effect<KyozoConfig> = Effect.flatMap(
  Effect.serviceOption(KyozoConfig),
  Option.match({
    onSome: Effect.succeed,
    onNone: () => Effect.orDie(Effect.provide(KyozoConfig, KyozoConfig.Default))
  })
)

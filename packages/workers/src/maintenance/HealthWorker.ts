/**
 * The health pass. For every service that should be running: find its container, look at it,
 * probe it per its health config, and when the status differs from the previous result, update
 * the service's status and append one `health.changed` event. History is transitions plus a thin
 * trail: a health_checks row is written only when the status (or the container) differs from the
 * service's last stored row, or that row is older than the sample interval
 * (`KYOZO_HEALTH_SAMPLE_INTERVAL`, 5 minutes), all of a pass's rows in one statement.
 * Level-driven: it compares what is with what should be on every pass, so a missed pass or a
 * crash loses nothing. (Restarting unhealthy containers arrives with the restart policy.)
 */
import * as net from "node:net"

import * as SqlClient from "@effect/sql/SqlClient"
import type { CheckType, HealthStatus } from "@kyozo/api/domain/HealthCheck"
import type { HealthCheckConfig } from "@kyozo/api/domain/HealthCheckConfig"
import type { ServiceInstance, ServiceStatus } from "@kyozo/api/domain/ServiceInstance"
import { transportOf } from "@kyozo/core/edge/Transport"
import {
  type ContainerInfo,
  ContainerRuntime,
  type ContainerState,
  type ContainerSummary
} from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { HealthCheckRepo } from "@kyozo/core/store/HealthCheckRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { emptyReport, type PassReport } from "@kyozo/core/supervision/MaintenancePasses"
import { Clock, Duration, Effect, Either, Fiber, Option } from "effect"

import { WorkerSettings } from "../WorkerSettings.js"

/** How old a service's last stored health row may get before a steady status is stored again. */
export const DEFAULT_HEALTH_SAMPLE_INTERVAL = Duration.minutes(5)

/**
 * How long the pass waits for the engine (listing, inspect) before it asks the URL meanwhile. An
 * engine that is back but slow (restoring its containers after a restart, or just loaded) answers
 * within `KYOZO_DOCKER_TIMEOUT`, and a `running` row must not stay unjudged that long while the URL
 * fails. The engine's answer is still awaited when the URL answers: slowness alone judges nothing.
 */
const ENGINE_PATIENCE = Duration.seconds(1)

/**
 * The deadline of a URL probe made without the engine's word (it does not answer, or not yet). The
 * edge holds a request up to its retry window (5 s) while no upstream takes it, so a dead upstream
 * shows as a wait, not an error: a URL that keeps a request this long while the engine is out is
 * taken for failing, or the row would say `running` for the whole window.
 */
const UNSEEN_URL_DEADLINE = Duration.seconds(2)

/** What was last stored for a service: enough to decide whether this pass stores a row. */
export interface StoredHealth {
  readonly status: HealthStatus
  readonly containerId: string | null
  /** Epoch milliseconds (the Clock's). */
  readonly at: number
}

/** A row is stored on a change of status or container, or when the last one is a sample interval old. */
export const shouldStore = (
  last: StoredHealth | undefined,
  observation: Pick<Observation, "status" | "containerId">,
  now: number,
  sampleIntervalMs: number
): boolean =>
  last === undefined ||
  last.status !== observation.status ||
  last.containerId !== observation.containerId ||
  now - last.at >= sampleIntervalMs

/** Probes only ever go to the loopback address (the machine's network rule). */
export const PROBE_HOST = "127.0.0.1"

export interface Observation {
  readonly containerId: string | null
  readonly checkType: CheckType
  readonly status: HealthStatus
  readonly latencyMs: number | null
  readonly detail: string
  /** What the engine said of the container ("missing": no container at all); recovery acts on it. */
  readonly containerState?: ContainerState | "missing"
  readonly exitCode?: number | null
  /** Counts at once, without thresholds (the engine is gone and users' requests fail). */
  readonly immediate?: boolean
}

/** Consecutive results of one service: thresholds turn raw probe results into a status change. */
export interface HealthTracker {
  /** The status after thresholds: what the service row and the events say. */
  readonly effective: HealthStatus
  /** A raw result that differs from `effective`, and how many times in a row it was seen. */
  readonly candidate: HealthStatus | null
  readonly streak: number
}

/**
 * Kubernetes-like thresholds: `failureThreshold` unhealthy results in a row before healthy →
 * unhealthy, `successThreshold` healthy ones before unhealthy → healthy. "starting"/"unknown" results
 * neither count nor change anything. `immediate` skips the count (a dead or missing container is
 * down at once: there is nothing to probe).
 */
export const applyThresholds = (
  previous: HealthTracker,
  raw: HealthStatus,
  config: Pick<HealthCheckConfig, "failureThreshold" | "successThreshold">,
  immediate = false
): HealthTracker => {
  if (raw === "starting" || raw === "unknown") return { ...previous, candidate: null, streak: 0 }
  if (raw === previous.effective) return { effective: raw, candidate: null, streak: 0 }
  const streak = previous.candidate === raw ? previous.streak + 1 : 1
  const needed =
    raw === "unhealthy"
      ? config.failureThreshold
      : previous.effective === "unhealthy"
        ? config.successThreshold
        : 1
  return immediate || streak >= needed
    ? { effective: raw, candidate: null, streak: 0 }
    : { effective: previous.effective, candidate: raw, streak }
}

/** One service's result of a pass, handed to the recovery pass. */
export interface HealthResult {
  readonly service: ServiceInstance
  readonly observation: Observation
  /** The status after thresholds. */
  readonly effective: HealthStatus
}

/** The service status a health result implies; null leaves the status alone ("starting"). */
const serviceStatusFor = (status: HealthStatus): "running" | "unhealthy" | null =>
  status === "healthy" ? "running" : status === "unhealthy" ? "unhealthy" : null

/** Opens a TCP connection to 127.0.0.1:port within the deadline. */
export const probeTcp = (port: number, timeout: Duration.Duration): Effect.Effect<void, string> =>
  Effect.async<void, string>((resume) => {
    const socket = net.connect({ host: PROBE_HOST, port })
    const done = (result: Effect.Effect<void, string>) => {
      socket.removeAllListeners()
      socket.destroy()
      resume(result)
    }
    socket.setTimeout(Duration.toMillis(timeout), () =>
      done(Effect.fail(`tcp ${port}: no answer in ${Duration.format(timeout)}`))
    )
    socket.once("connect", () => done(Effect.void))
    socket.once("error", (e) => done(Effect.fail(`tcp ${port}: ${e.message}`)))
    return Effect.sync(() => socket.destroy())
  })

/** GETs http://127.0.0.1:port/path within the deadline; returns the status code. */
export const probeHttp = (
  port: number,
  path: string,
  timeout: Duration.Duration
): Effect.Effect<number, string> =>
  Effect.tryPromise({
    try: async (signal) => {
      const res = await fetch(`http://${PROBE_HOST}:${port}${path.startsWith("/") ? path : `/${path}`}`, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(Duration.toMillis(timeout))]),
        redirect: "manual"
      })
      await res.body?.cancel()
      return res.status
    },
    catch: (e) =>
      `http ${port}${path}: ${e instanceof Error ? (e.name === "TimeoutError" ? `no answer in ${Duration.format(timeout)}` : e.message) : String(e)}`
  })

/**
 * A port without a configured check: HTTP GET / first (healthy below 500); bytes that are not
 * HTTP mean something else listens, and a TCP connect decides.
 */
export const probePort = (
  port: number,
  timeout: Duration.Duration
): Effect.Effect<{ readonly http: boolean; readonly detail: string }, string> =>
  probeHttp(port, "/", timeout).pipe(
    Effect.flatMap((code) =>
      code < 500
        ? Effect.succeed({ http: true, detail: `GET / on ${port} answered ${code}` })
        : Effect.fail(`GET / on ${port} answered ${code}`)
    ),
    Effect.catchAll((httpError) =>
      httpError.startsWith("GET /")
        ? Effect.fail(httpError)
        : probeTcp(port, timeout).pipe(
            Effect.as({ http: false, detail: `tcp ${port} open (not HTTP)` }),
            Effect.mapError(() => httpError)
          )
    )
  )

/** The service's URL on the edge, as a user's request meets it: fails on no answer or a 5xx. */
export const probeEdge = (hostPort: number, timeout: Duration.Duration): Effect.Effect<void, string> =>
  probeHttp(hostPort, "/", timeout).pipe(
    Effect.mapError((e) => `its URL http://${PROBE_HOST}:${hostPort} fails (${e})`),
    Effect.flatMap((code) =>
      code < 500 ? Effect.void : Effect.fail(`its URL http://${PROBE_HOST}:${hostPort} answers ${code}`)
    )
  )

export class HealthWorker extends Effect.Service<HealthWorker>()("@kyozo/workers/HealthWorker", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runtime = yield* ContainerRuntime
    const checks = yield* HealthCheckRepo
    const services = yield* ServiceRepo
    const events = yield* DeploymentEventRepo
    const config = yield* Effect.serviceOption(KyozoConfig)
    const sampleIntervalMs = Duration.toMillis(
      Option.match(config, {
        onNone: () => DEFAULT_HEALTH_SAMPLE_INTERVAL,
        onSome: (c) => c.healthSampleInterval
      })
    )

    /**
     * Inspects kept per container while its list entry (state and status text, which carries the
     * uptime and the HEALTHCHECK verdict) stays the same: a pass lists Kyozo's containers once and
     * inspects only those that changed, not one per service.
     */
    const inspected = new Map<string, { readonly key: string; readonly info: ContainerInfo }>()
    const inspectListed = (summary: ContainerSummary) => {
      const key = `${summary.state}\0${summary.status}`
      const cached = inspected.get(summary.id)
      if (cached !== undefined && cached.key === key) return Effect.succeed(Option.some(cached.info))
      return runtime.inspectContainer(summary.id).pipe(
        Effect.tap((info) => Effect.sync(() => inspected.set(summary.id, { key, info }))),
        Effect.map(Option.some),
        Effect.catchTag("ContainerNotFound", () => Effect.succeedNone)
      )
    }

    /** The service's container: the recorded id first, else the newest one carrying its label. */
    const findContainer = (service: ServiceInstance, listed?: ReadonlyMap<string, ContainerSummary>) =>
      Effect.gen(function* () {
        // Listed this pass: no engine call unless it changed. Otherwise (not listed, or the listing
        // failed) the engine is asked directly, so a missing entry never reads as "missing".
        const fromList = service.containerId ? listed?.get(service.containerId) : undefined
        if (fromList !== undefined) {
          const info = yield* inspectListed(fromList)
          if (Option.isSome(info)) return info
        }
        if (service.containerId) {
          const byId = yield* runtime.inspectContainer(service.containerId).pipe(
            Effect.map(Option.some),
            Effect.catchTag("ContainerNotFound", () => Effect.succeedNone)
          )
          if (Option.isSome(byId)) return byId
        }
        const labelled = yield* runtime.listContainers({
          all: true,
          labels: { [Labels.Managed]: "true", [Labels.Service]: service.id }
        })
        // Prefer the current deployment's container, then a running one, then the newest.
        const ranked = [...labelled].sort(
          (a, b) =>
            Number(b.labels[Labels.Deployment] === service.currentDeploymentId) -
              Number(a.labels[Labels.Deployment] === service.currentDeploymentId) ||
            Number(b.state === "running") - Number(a.state === "running") ||
            b.createdAt - a.createdAt
        )
        const chosen = ranked[0]
        if (!chosen) return Option.none<ContainerInfo>()
        return yield* runtime.inspectContainer(chosen.id).pipe(
          Effect.map(Option.some),
          Effect.catchTag("ContainerNotFound", () => Effect.succeedNone)
        )
      })

    /** The host port to probe: the published port of the configured container port, else the row's. */
    const hostPortFor = (
      service: ServiceInstance,
      config: HealthCheckConfig,
      info: ContainerInfo
    ): number | null => {
      const containerPort = config.port ?? service.internalPort
      const published = info.ports.find((p) => p.protocol === "tcp" && p.containerPort === containerPort)
      return published?.hostPort ?? service.hostPort
    }

    /** The raw observation, with the container's state and exit code attached for recovery. */
    const observe = (
      service: ServiceInstance,
      listed?: ReadonlyMap<string, ContainerSummary>
    ): Effect.Effect<Observation, unknown> => observeWith(service, Effect.succeed(listed))

    /** `observe`, with the pass's listing still in flight (a slow engine holds it). */
    const observeWith = (
      service: ServiceInstance,
      listing: Effect.Effect<ReadonlyMap<string, ContainerSummary> | undefined>
    ): Effect.Effect<Observation, unknown> =>
      probe(service, listing).pipe(Effect.catchAll((error) => whileEngineAway(service, error)))

    /** The service's URL as a user's request meets it, within `timeout`; the failure says why. */
    const probeUrl = (service: ServiceInstance, hostPort: number, timeout: Duration.Duration) =>
      Effect.either(
        // A TCP service's URL is not HTTP (Transport.ts): a connect is what a client's would meet.
        transportOf(service) === "tcp"
          ? Effect.mapError(probeTcp(hostPort, timeout), (e) => `its URL fails (${e})`)
          : probeEdge(hostPort, timeout)
      )

    /** A URL that fails while the engine cannot say more: unhealthy at once (users' requests fail). */
    const urlFailed = (service: ServiceInstance, engine: string, failure: string): Observation => ({
      containerId: service.containerId,
      checkType: "http",
      status: "unhealthy",
      latencyMs: null,
      detail: `${engine} and ${failure}`,
      immediate: true
    })

    /**
     * The engine's answer to `lookup`; when it takes longer than ENGINE_PATIENCE for a row that says
     * `running`, the URL is probed meanwhile: a failing URL is the verdict now (Left), one that
     * answers leaves the verdict to the engine's answer, however late. Rows that claim nothing
     * (`starting`, `unhealthy`, …) just wait for the engine.
     */
    const engineOrUrl = <A, E>(
      service: ServiceInstance,
      lookup: Effect.Effect<A, E>
    ): Effect.Effect<Either.Either<A, Observation>, E> =>
      Effect.gen(function* () {
        const hostPort = service.hostPort
        if (hostPort === null || runtime.mode === "mock" || service.status !== "running")
          return Either.right(yield* lookup)
        const asked = yield* Effect.fork(lookup)
        const early = yield* Fiber.await(asked).pipe(Effect.timeout(ENGINE_PATIENCE), Effect.option)
        if (Option.isSome(early)) return Either.right(yield* early.value)
        const { probeTimeout } = yield* WorkerSettings
        const url = yield* probeUrl(service, hostPort, Duration.min(probeTimeout, UNSEEN_URL_DEADLINE))
        if (Either.isLeft(url)) {
          yield* Fiber.interrupt(asked)
          return Either.left(
            urlFailed(service, `engine slow (no answer in ${Duration.format(ENGINE_PATIENCE)})`, url.left)
          )
        }
        return Either.right(yield* Fiber.join(asked))
      })

    /**
     * The engine does not answer: what users meet is still knowable through the URL. A URL that
     * fails makes the service unhealthy at once (never "running" while requests fail); one that
     * answers leaves the verdict to the next pass that reaches the engine.
     */
    const whileEngineAway = (service: ServiceInstance, error: unknown) =>
      Effect.gen(function* () {
        if (service.hostPort === null || runtime.mode === "mock") return yield* Effect.fail(error)
        const { probeTimeout } = yield* WorkerSettings
        const url = yield* probeUrl(
          service,
          service.hostPort,
          Duration.min(probeTimeout, UNSEEN_URL_DEADLINE)
        )
        if (url._tag === "Right") return yield* Effect.fail(error)
        return urlFailed(service, "engine unreachable", url.left)
      })

    const probe = (
      service: ServiceInstance,
      listing: Effect.Effect<ReadonlyMap<string, ContainerSummary> | undefined>
    ) =>
      Effect.gen(function* () {
        const config = service.healthConfig
        const looked = yield* engineOrUrl(
          service,
          Effect.flatMap(listing, (listed) => findContainer(service, listed))
        )
        if (Either.isLeft(looked)) return looked.left
        const found = looked.right
        const now = yield* Clock.currentTimeMillis
        if (Option.isNone(found)) {
          return {
            containerId: null,
            checkType: "state",
            status: "unhealthy",
            latencyMs: null,
            detail: "container missing",
            containerState: "missing",
            exitCode: null
          } satisfies Observation
        }
        const info = found.value
        if (!info.running) {
          const detail =
            info.state === "exited" || info.state === "dead"
              ? `exited (code ${info.exitCode ?? "?"})${info.oomKilled ? ", out of memory" : ""}`
              : info.state
          return {
            containerId: info.id,
            checkType: "state",
            status: "unhealthy",
            latencyMs: null,
            detail,
            containerState: info.state,
            exitCode: info.exitCode
          } satisfies Observation
        }
        const sinceStart = info.startedAt === null ? Number.POSITIVE_INFINITY : now - info.startedAt
        if (sinceStart < config.initialDelaySeconds * 1000) {
          return {
            containerId: info.id,
            checkType: "state",
            status: "starting",
            latencyMs: null,
            detail: `initial delay (${config.initialDelaySeconds} s)`,
            containerState: info.state,
            exitCode: null
          } satisfies Observation
        }
        // Inside the start period failures do not count: they read as "starting".
        const inStartPeriod = sinceStart < config.startPeriodSeconds * 1000
        const result = yield* probeRunning(service, config, info)
        return {
          ...result,
          ...(inStartPeriod && result.status === "unhealthy"
            ? { status: "starting" as const, detail: `start period: ${result.detail}` }
            : {}),
          containerState: info.state,
          exitCode: null
        } satisfies Observation
      })

    const probeRunning = (service: ServiceInstance, config: HealthCheckConfig, info: ContainerInfo) =>
      Effect.gen(function* () {
        const { probeTimeout } = yield* WorkerSettings
        const timed = <A, E>(probe: Effect.Effect<A, E>) =>
          Effect.gen(function* () {
            const started = performance.now()
            const result = yield* Effect.either(probe)
            return { result, latencyMs: performance.now() - started }
          })
        switch (config.type) {
          case "tcp":
          case "http": {
            const port = hostPortFor(service, config, info)
            if (port === null) {
              return {
                containerId: info.id,
                checkType: config.type,
                status: "unknown",
                latencyMs: null,
                detail: "no published port to probe"
              } satisfies Observation
            }
            if (config.type === "tcp") {
              const { result, latencyMs } = yield* timed(probeTcp(port, probeTimeout))
              return Either.match(result, {
                onLeft: (detail): Observation => ({
                  containerId: info.id,
                  checkType: "tcp",
                  status: "unhealthy",
                  latencyMs: null,
                  detail
                }),
                onRight: (): Observation => ({
                  containerId: info.id,
                  checkType: "tcp",
                  status: "healthy",
                  latencyMs,
                  detail: `tcp ${port} open`
                })
              })
            }
            const { result, latencyMs } = yield* timed(probeHttp(port, config.path, probeTimeout))
            return Either.match(result, {
              onLeft: (detail): Observation => ({
                containerId: info.id,
                checkType: "http",
                status: "unhealthy",
                latencyMs: null,
                detail
              }),
              onRight: (code): Observation => ({
                containerId: info.id,
                checkType: "http",
                status: config.expectedStatus.includes(code) ? "healthy" : "unhealthy",
                latencyMs,
                detail: `http ${port}${config.path} answered ${code}`
              })
            })
          }
          case "exec": {
            const cmd = config.command ?? []
            if (cmd.length === 0) {
              return {
                containerId: info.id,
                checkType: "exec",
                status: "unknown",
                latencyMs: null,
                detail: "exec check without a command"
              } satisfies Observation
            }
            const { result, latencyMs } = yield* timed(
              runtime.exec(info.id, cmd, { timeoutMs: Duration.toMillis(probeTimeout) })
            )
            return Either.match(result, {
              onLeft: (e): Observation => ({
                containerId: info.id,
                checkType: "exec",
                status: "unhealthy",
                latencyMs: null,
                detail: e.message
              }),
              onRight: (r): Observation => ({
                containerId: info.id,
                checkType: "exec",
                status: r.exitCode === 0 ? "healthy" : "unhealthy",
                latencyMs,
                detail: `exit ${r.exitCode}`
              })
            })
          }
          case "docker": {
            // No HEALTHCHECK in the image: probe through the port (HTTP GET / where it speaks HTTP,
            // healthy below 500; a TCP connect otherwise) and through the URL on the edge.
            if (info.health === "none" && service.internalPort !== null && runtime.mode !== "mock") {
              const port = hostPortFor(service, config, info)
              if (port !== null) {
                const { result, latencyMs } = yield* timed(probePort(port, probeTimeout))
                if (result._tag === "Left") {
                  return {
                    containerId: info.id,
                    checkType: "tcp",
                    status: "unhealthy",
                    latencyMs: null,
                    detail: result.left
                  } satisfies Observation
                }
                if (result.right.http && service.hostPort !== null && service.hostPort !== port) {
                  const url = yield* probeUrl(service, service.hostPort, probeTimeout)
                  if (url._tag === "Left") {
                    return {
                      containerId: info.id,
                      checkType: "http",
                      status: "unhealthy",
                      latencyMs: null,
                      detail: `the container answers on ${port}, but ${url.left}`
                    } satisfies Observation
                  }
                }
                return {
                  containerId: info.id,
                  checkType: result.right.http ? "http" : "tcp",
                  status: "healthy",
                  latencyMs,
                  detail: result.right.detail
                } satisfies Observation
              }
            }
            const status: HealthStatus = info.health === "none" ? "healthy" : info.health
            const detail =
              info.health === "none" ? "running (no healthcheck)" : `engine reports ${info.health}`
            return {
              containerId: info.id,
              checkType: "docker",
              status,
              latencyMs: null,
              detail
            } satisfies Observation
          }
        }
      })

    /**
     * Writes `status` only when the row still says what the pass read: a row that moved on since
     * (a restart wrote `starting`, a deploy `deploying`) is judged again by the next pass, so a
     * probe of the container before a restart never makes the restarted one `running`.
     */
    const writeStatus = (service: ServiceInstance, status: ServiceStatus) =>
      services.updateStatusIf(service.id, service.status, status)

    /** Writes the status change and its event together (short; no engine calls inside). */
    const transition = (service: ServiceInstance, from: string, to: HealthStatus, observation: Observation) =>
      sql.withTransaction(
        Effect.gen(function* () {
          const next = serviceStatusFor(to)
          // A deploy in progress owns the status; "failed" and "degraded" are recovery's verdicts
          // and an unhealthy result does not make them less specific.
          const keep =
            service.status === "deploying" ||
            (next === "unhealthy" && (service.status === "failed" || service.status === "degraded"))
          if (next !== null && !keep && service.status !== next) yield* writeStatus(service, next)
          yield* events.append({
            teamId: service.teamId,
            serviceId: service.id,
            deploymentId: service.currentDeploymentId,
            type: "health.changed",
            message: `health ${from} → ${to}: ${observation.detail}`,
            data: {
              from,
              to,
              checkType: observation.checkType,
              containerId: observation.containerId,
              detail: observation.detail
            }
          })
        })
      )

    // Each service's thresholds state, seeded from its newest health_checks row once and then kept
    // here, so a pass never rescans the history (the table grows by one row per service per pass).
    let trackers: Map<string, HealthTracker> | null = null
    // Each service's last stored row (seeded with the trackers, then kept as rows are written), so
    // deciding what to store needs no query per service.
    const stored = new Map<string, StoredHealth>()

    /** The pass, with each service's result (and the rows it read) for the recovery pass. */
    const pass: Effect.Effect<
      {
        readonly report: PassReport
        readonly results: ReadonlyArray<HealthResult>
        /** Every service row as the pass read them (the passes after it share this snapshot). */
        readonly services: ReadonlyArray<ServiceInstance>
      },
      unknown
    > = Effect.gen(function* () {
      const { concurrency } = yield* WorkerSettings
      const all = yield* services.listDesired()
      const wanted = all.filter((s) => s.desiredState === "running")
      if (trackers === null) {
        const latest = yield* checks.latestStatus(wanted.map((s) => s.id))
        trackers = new Map(
          [...latest].map(([id, c]) => [id, { effective: c.status, candidate: null, streak: 0 }] as const)
        )
        for (const [id, c] of latest) {
          stored.set(id, { status: c.status, containerId: c.containerId, at: c.checkedAt.getTime() })
        }
      }
      const known = trackers
      // One listing for the pass (after the rows were read, so every recorded container is older),
      // awaited by each service's check: a slow engine holds it, and the checks ask the URL meanwhile.
      const listing = yield* runtime.listContainers({ all: true, labels: { [Labels.Managed]: "true" } }).pipe(
        Effect.map((list) => new Map(list.map((c) => [c.id, c] as const))),
        Effect.tap((listed) =>
          Effect.sync(() => {
            for (const id of inspected.keys()) if (!listed.has(id)) inspected.delete(id)
          })
        ),
        Effect.option,
        Effect.fork
      )
      const listed = Fiber.join(listing).pipe(Effect.map(Option.getOrUndefined))
      const outcomes = yield* Effect.forEach(
        wanted,
        (service) =>
          observeWith(service, listed).pipe(
            Effect.map((observation) => ({ service, observation })),
            Effect.tapErrorCause((cause) => Effect.logWarning(`health check of ${service.id} failed`, cause)),
            Effect.either
          ),
        { concurrency }
      )
      const observed = outcomes.filter(Either.isRight).map((o) => o.right)
      const now = yield* Clock.currentTimeMillis
      const toStore = observed.filter(({ service, observation }) =>
        shouldStore(stored.get(service.id), observation, now, sampleIntervalMs)
      )
      yield* checks.recordMany(
        toStore.map(({ service, observation }) => ({
          serviceId: service.id,
          containerId: observation.containerId,
          checkType: observation.checkType,
          status: observation.status,
          latencyMs: observation.latencyMs,
          detail: observation.detail,
          checkedAt: new Date(now)
        }))
      )
      for (const { service, observation } of toStore) {
        stored.set(service.id, { status: observation.status, containerId: observation.containerId, at: now })
      }
      let changes = 0
      let transitionFailures = 0
      const results: Array<HealthResult> = []
      for (const { service, observation } of observed) {
        const tracked = known.get(service.id)
        // A row Kyozo (re)started (`starting`) waits for a fresh verdict: what was known of the
        // container before the restart does not count, only a probe after it makes it `running`.
        const previous: HealthTracker | undefined =
          service.status === "starting" && tracked !== undefined && tracked.effective !== "starting"
            ? { effective: "starting", candidate: null, streak: 0 }
            : tracked
        // Never checked: start from what the row says, so a first result that agrees is no change.
        const seed: HealthTracker = previous ?? {
          effective:
            service.status === "running"
              ? "healthy"
              : service.status === "unhealthy"
                ? "unhealthy"
                : service.status === "starting"
                  ? "starting"
                  : "unknown",
          candidate: null,
          streak: 0
        }
        const next = applyThresholds(
          seed,
          observation.status,
          service.healthConfig,
          observation.checkType === "state" || observation.immediate === true
        )
        if (next.effective !== seed.effective) {
          const from = previous ? previous.effective : service.status
          const written = yield* transition(service, from, next.effective, observation).pipe(
            Effect.tapErrorCause((cause) =>
              Effect.logWarning(`health transition of ${service.id} failed`, cause)
            ),
            Effect.either
          )
          if (Either.isLeft(written)) {
            transitionFailures++
            results.push({ service, observation, effective: seed.effective })
            continue
          }
          changes++
        } else {
          // Level-driven: a row that says running while the verdict is unhealthy (or the other way
          // round), e.g. written by a deploy's compensation, is set to what the probes say — when
          // this very probe agrees (a healthy result still short of successThreshold changes nothing).
          const implied = serviceStatusFor(next.effective)
          if (
            implied !== null &&
            observation.status === next.effective &&
            service.status !== implied &&
            (service.status === "running" || service.status === "unhealthy")
          ) {
            const fixed = yield* Effect.either(writeStatus(service, implied))
            if (Either.isLeft(fixed)) {
              yield* Effect.logWarning(`health status of ${service.id} not written`, fixed.left)
              transitionFailures++
            } else changes++
          }
        }
        known.set(service.id, next)
        results.push({ service, observation, effective: next.effective })
      }
      const unhealthy = results.filter((r) => r.effective === "unhealthy").length
      const report: PassReport = {
        ...emptyReport("health"),
        examined: wanted.length,
        acted: changes,
        failures: outcomes.length - observed.length + transitionFailures,
        notes: [
          `${observed.length - unhealthy} healthy or starting, ${unhealthy} unhealthy`,
          `${toStore.length} health rows stored`
        ]
      }
      return { report, results, services: all }
    })

    const run: Effect.Effect<PassReport, unknown> = Effect.map(pass, (p) => p.report)

    return { run, pass, observe } as const
  }),
  dependencies: [HealthCheckRepo.Default, ServiceRepo.Default, DeploymentEventRepo.Default]
}) {}

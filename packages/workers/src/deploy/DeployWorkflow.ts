/**
 * The durable deploy of ONE service: build (or reuse) → create → start → health gate → switch the
 * proxy → retire the old container. Each step is an `Activity`, so after a crash the workflow
 * resumes at the first unfinished step; activities run at least once, so each one is idempotent
 * (deterministic container names, "already exists" and "already gone" are success).
 *
 * A failure after the container was created compensates: the new container is removed, the proxy
 * keeps (or goes back to) the old one, the deployment ends `compensated`.
 *
 * No SQL transaction is ever held across a Docker call (on PGlite it would block every other query).
 */
import * as Activity from "@effect/workflow/Activity"
import * as Workflow from "@effect/workflow/Workflow"
import { DeployFailed } from "@kyozo/api/domain/Deploy"
import type { DeploymentStatus } from "@kyozo/api/domain/Deployment"
import { HealthCheckConfig } from "@kyozo/api/domain/HealthCheckConfig"
import { DeploymentId, ServiceId, TeamId } from "@kyozo/api/domain/Ids"
import type { RuntimeError } from "@kyozo/api/domain/RuntimeErrors"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import { PlannedServiceSchema } from "@kyozo/core/build/topology/Topology"
import { EdgeRouter, type EdgeRouteStatus, type Upstream } from "@kyozo/core/edge/EdgeRouter"
import { freePort } from "@kyozo/core/edge/FreePort"
import { publishedByEngine } from "@kyozo/core/edge/Transport"
import type { ContainerInfo, ContainerSummary } from "@kyozo/core/engine/ContainerRuntime"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import { labelsFor } from "@kyozo/core/engine/Labels"
import { containerName, teamNetwork } from "@kyozo/core/engine/ServiceNaming"
import { ensureVolumes } from "@kyozo/core/engine/ServiceVolumes"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { Cause, Duration, Effect, Fiber, Layer, Option, Schedule, Schema } from "effect"

import { DeployBus } from "./DeployBus.js"
import { containerSpec, specFingerprint, SpecLabel } from "./DeploymentContainer.js"
import { defaultDeploySettings, type DeploySettings } from "./DeploySettings.js"
import { holdingRoute, syncService } from "./EdgeRoutes.js"
import { probePlanOf, publishedPort, readinessNow, readinessOf } from "./Probes.js"
import { createReplica } from "./Replicas.js"

/** Replicas build their containers with the same spec; they import it from here. */
export { AliasesLabel, containerSpec } from "./DeploymentContainer.js"

/** Pause after a new replica is routed in, before an old one goes: the edge warms to it first. */
const ROLL_SETTLE = Duration.millis(250)

/** What a settings rollout changes on the row (env values included: the row holds them too). */
export const RolloutSettings = Schema.Struct({
  env: Schema.Record({ key: Schema.String, value: Schema.String }),
  cpuMillis: Schema.Int,
  memoryMb: Schema.Int,
  healthConfig: Schema.encodedSchema(HealthCheckConfig)
})
export type RolloutSettings = typeof RolloutSettings.Type

export const rolloutSettingsOf = (row: ServiceInstance): RolloutSettings => ({
  env: { ...row.env },
  cpuMillis: row.cpuMillis,
  memoryMb: row.memoryMb,
  healthConfig: Schema.encodeSync(HealthCheckConfig)(row.healthConfig)
})

const sameSettings = (a: RolloutSettings, b: RolloutSettings): boolean => {
  const canonical = (s: RolloutSettings) =>
    JSON.stringify([
      Object.entries(s.env).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)),
      s.cpuMillis,
      s.memoryMb,
      Object.entries(s.healthConfig as Record<string, unknown>).sort(([x], [y]) =>
        x < y ? -1 : x > y ? 1 : 0
      )
    ])
  return canonical(a) === canonical(b)
}

export const DeployPayload = Schema.Struct({
  teamId: TeamId,
  serviceId: ServiceId,
  deploymentId: DeploymentId,
  /** A ready image (rollback, image-only service); otherwise built from `root` and `planned`. */
  image: Schema.NullOr(Schema.String),
  root: Schema.NullOr(Schema.String),
  /** The `PlannedService` of detection (stored as JSON with the workflow). */
  planned: Schema.NullOr(PlannedServiceSchema),
  /** Extra network aliases (the name the folder's compose file uses for the service). */
  aliases: Schema.Array(Schema.String),
  /** Replace the containers even when the desired spec equals what runs. */
  force: Schema.optional(Schema.Boolean),
  /**
   * Nothing of the service ran when the deploy was sent (no container on the row): the unchanged
   * check is skipped (it would find nothing), which saves a durable step on every first deploy. At
   * worst a deploy queued behind another one replaces what that one started, like a forced one.
   */
  fresh: Schema.optional(Schema.Boolean),
  /**
   * A settings rollout: the settings that worked before (`previous`) and the ones rolled out
   * (`applied`). When the rollout fails and the row still holds `applied`, `previous` goes back.
   */
  settings: Schema.optional(Schema.Struct({ previous: RolloutSettings, applied: RolloutSettings }))
})
export type DeployPayload = typeof DeployPayload.Type

export const DeployOutcome = Schema.Struct({
  deploymentId: Schema.String,
  serviceId: Schema.String,
  image: Schema.String,
  built: Schema.Boolean,
  containerId: Schema.String,
  containerName: Schema.String,
  hostPort: Schema.NullOr(Schema.Number),
  /** True when the desired spec equaled what runs: nothing was created, the running containers serve on. */
  unchanged: Schema.optional(Schema.Boolean)
})
export type DeployOutcome = typeof DeployOutcome.Type

export const DeployWorkflow = Workflow.make({
  name: "Kyozo/Deploy",
  payload: DeployPayload,
  success: DeployOutcome,
  error: DeployFailed,
  idempotencyKey: (p) => p.deploymentId
})

/** What an activity fails with: the step and a readable reason (stored in the workflow history). */
export class StepFailed extends Schema.TaggedError<StepFailed>()("StepFailed", {
  step: Schema.String,
  reason: Schema.String
}) {}

const reasonOf = (e: unknown): string => {
  if (e instanceof Error) return e.message
  if (typeof e === "object" && e !== null && "message" in e)
    return String((e as { message: unknown }).message)
  if (typeof e === "object" && e !== null && "_tag" in e) return String((e as { _tag: unknown })._tag)
  return String(e)
}

/** Typed failures and defects of a step become StepFailed; interruption stays interruption. */
const asStep =
  (step: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, StepFailed, R> =>
    effect.pipe(
      Effect.catchAllCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
        const failure = Cause.failureOption(cause)
        if (Option.isSome(failure)) {
          const e = failure.value
          return Effect.fail(e instanceof StepFailed ? e : new StepFailed({ step, reason: reasonOf(e) }))
        }
        return Effect.fail(new StepFailed({ step, reason: Cause.pretty(cause).split("\n")[0] ?? "defect" }))
      })
    )

const BuildResult = Schema.Struct({
  image: Schema.String,
  hash: Schema.NullOr(Schema.String),
  built: Schema.Boolean
})
const Created = Schema.Struct({
  containerId: Schema.String,
  containerName: Schema.String,
  /** The container serving before this deploy (to retire, or to go back to). */
  previousContainerId: Schema.NullOr(Schema.String),
  /**
   * The service's replica count when the container was created: with one, the replicas step has
   * nothing to do and is not run. Absent in histories written before it (the step runs then).
   */
  replicas: Schema.optional(Schema.Number),
  /** The host port published for the service's port (pinned at create): the gate probes it at once. */
  pinnedPort: Schema.optional(Schema.NullOr(Schema.Number)),
  /** Whether the container publishes the service's stable port itself (a TCP service, Transport.ts). */
  direct: Schema.optional(Schema.Boolean)
})
const Switched = Schema.Struct({ hostPort: Schema.NullOr(Schema.Number) })
/** What serves already when the desired spec equals it (the unchanged check). */
const Running = Schema.NullOr(
  Schema.Struct({
    containerId: Schema.String,
    containerName: Schema.String,
    deploymentId: Schema.String
  })
)

/** The deploy workflow's handler, with its settings. */
export const layer = (overrides: Partial<DeploySettings> = {}) => {
  const settings: DeploySettings = { ...defaultDeploySettings, ...overrides }
  return Layer.mergeAll(retireLayer(settings), afterDeployLayer(settings), deployLayer(settings))
}

const deployLayer = (settings: DeploySettings) =>
  DeployWorkflow.toLayer((payload) =>
    Effect.gen(function* () {
      const runtime = yield* ContainerRuntime
      const services = yield* ServiceRepo
      const deployments = yield* DeploymentRepo
      const events = yield* DeploymentEventRepo
      const builder = yield* ImageBuilder
      const bus = yield* DeployBus
      const { teamId, serviceId, deploymentId } = payload

      const serviceRow = Effect.flatMap(services.findByIdAnyTeam(serviceId), (row) =>
        Option.match(row, {
          onNone: () => Effect.fail(new StepFailed({ step: "load", reason: `service ${serviceId} is gone` })),
          onSome: Effect.succeed
        })
      )

      const record = (type: string, message: string, data: Record<string, unknown> = {}) =>
        events.append({ teamId, serviceId, deploymentId, type, message, data }).pipe(
          Effect.zipRight(
            bus.publish({
              deploymentId,
              progress: { _tag: "Step", service: serviceId, deploymentId, step: type, message }
            })
          ),
          Effect.asVoid
        )

      /** Several events of one step in one statement (in order), then their live progress. */
      const recordAll = (
        steps: ReadonlyArray<{
          readonly type: string
          readonly message: string
          readonly data?: Record<string, unknown>
        }>
      ) =>
        events
          .appendAll(
            teamId,
            steps.map((e) => ({
              serviceId,
              deploymentId,
              type: e.type,
              message: e.message,
              data: e.data ?? {}
            }))
          )
          .pipe(
            Effect.zipRight(
              Effect.forEach(
                steps,
                (e) =>
                  bus.publish({
                    deploymentId,
                    progress: {
                      _tag: "Step",
                      service: serviceId,
                      deploymentId,
                      step: e.type,
                      message: e.message
                    }
                  }),
                { discard: true }
              )
            )
          )

      const status = (
        s: DeploymentStatus,
        extra: { error?: string; image?: string; containerId?: string; containerName?: string } = {}
      ) => deployments.updateStatus(deploymentId, { status: s, ...extra }).pipe(Effect.asVoid)

      // (a) build or reuse the image
      const build = Activity.make({
        name: "build",
        success: BuildResult,
        error: StepFailed,
        execute: Effect.gen(function* () {
          if (payload.image !== null) {
            yield* runtime.inspectImage(payload.image)
            yield* status("building", { image: payload.image })
            yield* record("deploy.reused", `Using image ${payload.image}`, {
              image: payload.image,
              built: false
            })
            return { image: payload.image, hash: null, built: false }
          }
          if (payload.root === null || payload.planned === null) {
            return yield* new StepFailed({ step: "build", reason: "neither an image nor a folder to build" })
          }
          // The "building" rows are written while the build starts; both end before the step does.
          const building = yield* Effect.fork(
            Effect.zipRight(status("building"), record("deploy.building", "Building the image"))
          )
          const ensured = yield* builder
            .ensureImage({
              serviceId,
              teamId,
              root: payload.root,
              planned: payload.planned,
              onLog: (line: string) =>
                bus.publish({ deploymentId, progress: { _tag: "BuildLog", service: serviceId, line } })
            })
            .pipe(Effect.exit)
          yield* Fiber.join(building)
          const result = yield* ensured
          // Two independent writes: in parallel on PostgreSQL, one after the other on PGlite.
          yield* Effect.all(
            [
              status("building", { image: result.image }),
              record(
                result.built ? "deploy.built" : "deploy.reused",
                result.built ? `Built ${result.image}` : `Reused ${result.image} (unchanged context)`,
                {
                  image: result.image,
                  hash: result.hash,
                  built: result.built,
                  contextBytes: result.contextBytes
                }
              )
            ],
            { concurrency: 2, discard: true }
          )
          return { image: result.image, hash: result.hash, built: result.built }
        }).pipe(asStep("build"))
      })

      // (a2) an unchanged redeploy: the same image (by content id), env, limits, health config,
      // ports and replica count as what runs, and it runs and answers: nothing to replace.
      const unchangedCheck = (image: string) =>
        Activity.make({
          name: "compare",
          success: Running,
          error: StepFailed,
          execute: Effect.gen(function* () {
            const row = yield* serviceRow
            if (row.containerId === null || row.currentDeploymentId === null) return null
            if (row.status !== "running" || row.desiredState !== "running") return null
            const wanted = yield* runtime.inspectImage(image)
            const network = teamNetwork(teamId)
            const ours = yield* runtime.listContainers({
              all: true,
              labels: { "kyozo.deployment": row.currentDeploymentId }
            })
            if (ours.length !== row.replicas || !ours.some((c) => c.id === row.containerId)) return null
            let primary: ContainerInfo | null = null
            for (const c of ours) {
              const info = yield* runtime.inspectContainer(c.id)
              const isPrimary = c.id === row.containerId
              const spec = specFingerprint(row, network, isPrimary ? payload.aliases : [])
              if (!info.running || info.health === "unhealthy") return null
              if (info.imageId !== wanted.id || info.labels[SpecLabel] !== spec) return null
              if (isPrimary) primary = info
            }
            if (primary === null) return null
            // A TCP service is served by Docker's own publishing of its stable port (Transport.ts).
            if (publishedByEngine(row) && publishedPort(primary, row.internalPort) !== row.hostPort)
              return null
            // Judged as a user would: the running one must answer on its published port.
            const readiness = yield* readinessOf(settings.probe, row, primary, 2000)
            if (readiness._tag !== "NoPort" && !(readiness._tag === "Probed" && readiness.answering))
              return null
            return {
              containerId: primary.id,
              containerName: primary.name,
              deploymentId: row.currentDeploymentId
            }
          }).pipe(asStep("compare"))
        })

      const keep = (running: NonNullable<typeof Running.Type>, image: string) =>
        Activity.make({
          name: "unchanged",
          success: Switched,
          error: StepFailed,
          execute: Effect.gen(function* () {
            const row = yield* serviceRow
            // Level-driven: the route is made to match what runs (a no-op when it does already).
            const synced = yield* syncService(row).pipe(
              Effect.catchAllCause((c) =>
                Effect.as(Effect.logWarning("route sync failed", c), { hostPort: row.hostPort })
              )
            )
            yield* status("unchanged", {
              image,
              containerId: running.containerId,
              containerName: running.containerName
            })
            yield* record(
              "deploy.unchanged",
              `Nothing changed: ${running.containerName} keeps serving (deploy with force to replace it)`,
              { image, containerId: running.containerId, servingDeploymentId: running.deploymentId }
            )
            return { hostPort: synced.hostPort }
          }).pipe(asStep("unchanged"))
        })

      /**
       * A TCP service (Transport.ts): its stable port is published by the container itself, so the
       * edge lets go of it and the previous container stops before the new one starts (Recreate).
       * The previous one is only stopped: a failed gate starts it again (compensate).
       */
      const recreateHandover = (
        row: ServiceInstance,
        containerId: string,
        previousContainerId: string | null
      ) =>
        Effect.gen(function* () {
          const edge = yield* EdgeRouter
          if ((yield* edge.route(serviceId)) !== undefined) yield* edge.remove(serviceId)
          const holders = yield* runtime.listContainers({
            all: false,
            labels: { "kyozo.service": serviceId }
          })
          const stopped: Array<string> = []
          for (const c of holders) {
            if (c.id === containerId) continue
            const holds = c.ports.some((p) => p.hostPort === row.hostPort)
            if (!holds && c.id !== previousContainerId) continue
            yield* runtime.stopContainer(c.id, { timeoutSeconds: settings.stopTimeoutSeconds })
            stopped.push(c.name)
          }
          yield* record(
            "deploy.recreate",
            stopped.length === 0
              ? `TCP service: Docker publishes 127.0.0.1:${row.hostPort} for the new container`
              : `TCP service: stopped ${stopped.join(", ")} so the new container can take 127.0.0.1:${row.hostPort} (no TCP load balancing on the edge)`,
            { hostPort: row.hostPort, stopped }
          )
        })

      // (b) create the container (a retry finds the one it made before by its name)
      const create = (image: string) =>
        Activity.make({
          name: "create",
          success: Created,
          error: StepFailed,
          execute: Effect.gen(function* () {
            const network = teamNetwork(teamId)
            // The team's network (usually there already) is ensured while the row is read.
            const [row] = yield* Effect.all(
              [
                serviceRow,
                runtime
                  .createNetwork({ name: network, labels: labelsFor({ teamId }) })
                  .pipe(Effect.catchTag("NameConflict", () => Effect.void))
              ],
              { concurrency: 2 }
            )
            const name = containerName(row.name, deploymentId)
            // The published port is pinned now, so a restart (by Kyozo or after an engine restart)
            // keeps it and the edge's upstream stays valid; where it cannot, the route sync follows.
            // A TCP service's primary container publishes the stable port itself (Transport.ts): the
            // port is chosen once and kept on the row, like the edge's port of an HTTP service.
            const direct = publishedByEngine(row)
            const pinned =
              row.internalPort === null
                ? null
                : direct && row.hostPort !== null
                  ? row.hostPort
                  : yield* freePort()
            if (direct && row.hostPort === null)
              yield* services.updateObserved(serviceId, { hostPort: pinned })
            // Declared volumes exist before the container that mounts them (kept with their data).
            const volumes = yield* ensureVolumes(runtime, row, image)
            const spec = containerSpec(
              row,
              image,
              name,
              network,
              payload.aliases,
              deploymentId,
              pinned,
              volumes
            )
            const ref = yield* runtime
              .createContainer(spec)
              .pipe(
                Effect.catchTag("NameConflict", () =>
                  Effect.map(runtime.inspectContainer(name), (info) => ({ id: info.id, name }))
                )
              )
            const previous = row.containerId !== null && row.containerId !== ref.id ? row.containerId : null
            yield* Effect.all(
              [
                status("starting", { containerId: ref.id, containerName: name }),
                record("deploy.created", `Created container ${name}`, { containerId: ref.id, image })
              ],
              { concurrency: 2, discard: true }
            )
            return {
              containerId: ref.id,
              containerName: name,
              previousContainerId: previous,
              replicas: row.replicas,
              pinnedPort: pinned,
              direct
            }
          }).pipe(asStep("create"))
        })

      // (c) start
      const start = (containerId: string, previousContainerId: string | null, direct: boolean | undefined) =>
        Activity.make({
          name: "start",
          error: StepFailed,
          execute: Effect.gen(function* () {
            // An HTTP service (the create step said so) starts without reading its row first.
            const row = direct === false ? null : yield* serviceRow
            // Only the TCP handover needs to know whether it runs already; a plain start of a
            // running container is a no-op (the engine answers 304), so no inspect round trip here.
            const handover = row !== null && publishedByEngine(row)
            const running = handover ? (yield* runtime.inspectContainer(containerId)).running : false
            if (!running) {
              if (handover && row !== null) yield* recreateHandover(row, containerId, previousContainerId)
              yield* runtime.startContainer(containerId).pipe(
                // The port a stopped container or an edge listener held can take a moment to be free.
                Effect.retry({
                  while: (e) => /already allocated|address already in use/i.test(reasonOf(e)),
                  schedule: Schedule.spaced("250 millis").pipe(Schedule.intersect(Schedule.recurs(20)))
                })
              )
            }
            yield* record("deploy.started", "Container started", { containerId })
          }).pipe(asStep("start"))
        })

      // (d) health gate, through 127.0.0.1 only
      const healthGate = (containerId: string, pinnedPort: number | null) =>
        Activity.make({
          name: "health",
          error: StepFailed,
          execute: Effect.gen(function* () {
            const row = yield* serviceRow
            // The status write runs beside the first probes (they wait on the engine and the app,
            // not on it); it is joined before the step ends.
            const marking = yield* Effect.fork(status("health-check"))
            const config = row.healthConfig
            const { kind, path, port } = probePlanOf(row)
            const poll = Duration.toMillis(settings.healthPollInterval)
            const stableMs = Duration.toMillis(settings.stableRunning)
            const timeoutMs = Math.max(500, Math.min(5000, Duration.toMillis(config.timeoutSeconds * 1000)))
            let runningSince: number | null = null
            let last = "not checked yet"
            const check: Effect.Effect<boolean, StepFailed | RuntimeError> = Effect.gen(function* () {
              const readiness = yield* readinessNow(
                settings.probe,
                row,
                containerId,
                runtime.inspectContainer(containerId),
                pinnedPort,
                timeoutMs
              )
              switch (readiness._tag) {
                case "Exited":
                  return yield* new StepFailed({
                    step: "health",
                    reason: `the container exited with code ${readiness.exitCode ?? "?"}${readiness.oomKilled ? " (out of memory)" : ""}`
                  })
                case "NotRunning":
                  last = `container ${readiness.state}`
                  runningSince = null
                  return false
                case "Unhealthy":
                  last = "the image's HEALTHCHECK reports unhealthy"
                  return false
                case "Unpublished":
                  last = `port ${readiness.port} is not published`
                  return false
                case "NoPort": {
                  const now = Date.now()
                  runningSince ??= now
                  last = "waiting for the container to keep running"
                  return now - runningSince >= stableMs
                }
                case "Probed":
                  last = readiness.answering
                    ? "answering"
                    : `${kind === "http" ? `GET ${path}` : "TCP connect"} on port ${port} does not answer yet`
                  return readiness.answering && readiness.health !== "starting"
              }
            })
            let attempts = 0
            const healthy = yield* check.pipe(
              // Each attempt is live progress for `kyozo deploy` (not an audit event: there can be many).
              Effect.tap((ok) =>
                bus.publish({
                  deploymentId,
                  progress: {
                    _tag: "Step",
                    service: serviceId,
                    deploymentId,
                    step: "deploy.health-attempt",
                    message: `attempt ${++attempts}: ${ok ? "answering" : last}`
                  }
                })
              ),
              // Every 10 ms for the first half second or so (a small app answers within tens of ms
              // of its start, and each early poll costs one loopback connect), then every `poll`.
              Effect.flatMap((ok) =>
                ok
                  ? Effect.succeed(true)
                  : Effect.as(Effect.sleep(attempts <= 40 ? Math.min(poll, 10) : poll), false)
              ),
              Effect.repeat({ until: (ok) => ok }),
              Effect.timeoutOption(settings.healthTimeout)
            )
            yield* Fiber.join(marking)
            if (Option.isNone(healthy)) {
              return yield* new StepFailed({
                step: "health",
                reason: `not healthy within ${Duration.format(Duration.decode(settings.healthTimeout))}: ${last}`
              })
            }
            yield* record("deploy.healthy", "Health gate passed", { containerId })
          }).pipe(asStep("health"))
        })

      /** Creates replica `index` of the new deployment and waits until it passes the gate. */
      const replicaUp = (row: ServiceInstance, image: string, index: number) =>
        Effect.gen(function* () {
          const port = row.healthConfig.port ?? row.internalPort
          const ref = yield* createReplica(row, deploymentId, image, index)
          const id = ref.id
          if (port !== null) {
            yield* runtime.inspectContainer(id).pipe(
              Effect.flatMap((info) => readinessOf(settings.probe, row, info, 2000)),
              Effect.flatMap((readiness) =>
                readiness._tag === "Exited"
                  ? new StepFailed({
                      step: "replicas",
                      reason: `replica ${index} exited with code ${readiness.exitCode ?? "?"}`
                    })
                  : Effect.succeed(readiness._tag === "Probed" && readiness.answering)
              ),
              Effect.flatMap((ok) => (ok ? Effect.void : Effect.fail("not yet" as const))),
              Effect.retry({
                // An exited replica fails at once; anything else is tried again until the deadline.
                while: (e) => !(e instanceof StepFailed),
                schedule: Schedule.spaced(settings.healthPollInterval)
              }),
              Effect.timeoutFail({
                duration: settings.healthTimeout,
                onTimeout: () =>
                  new StepFailed({
                    step: "replicas",
                    reason: `replica ${index} (${id}) not healthy in time`
                  })
              })
            )
          }
          yield* record("deploy.replica-healthy", `Replica ${index + 1} of ${row.replicas} healthy`, {
            containerId: id,
            index
          })
          return id
        })

      /**
       * Whether traffic moves replica by replica (`rollTraffic`): an edge route that serves real
       * upstreams now. Otherwise (a first deploy, the mock runtime, a TCP service on its own port)
       * the switch is one atomic change.
       */
      const rolls = (row: ServiceInstance, route: EdgeRouteStatus | undefined): route is EdgeRouteStatus =>
        route !== undefined &&
        !route.simulated &&
        row.internalPort !== null &&
        !publishedByEngine(row) &&
        route.upstreams.length > 0

      // (d2) the other replicas of the new deployment, each behind the same health gate. In a rolling
      // update they are made inside the switch instead, each right before an old one leaves, so
      // the service never runs more than one container beyond its count.
      const replicasUp = (image: string) =>
        Activity.make({
          name: "replicas",
          success: Schema.Array(Schema.String),
          error: StepFailed,
          execute: Effect.gen(function* () {
            const row = yield* serviceRow
            if (row.replicas <= 1) return []
            const edge = yield* EdgeRouter
            if (rolls(row, yield* edge.route(serviceId))) return []
            // Strictly one at a time: replica i+1 is created only once replica i passed the gate,
            // so a bad version costs one container, and the engine is never stormed.
            const ids: Array<string> = []
            for (let index = 1; index < row.replicas; index++) ids.push(yield* replicaUp(row, image, index))
            yield* record("deploy.replicas", `${row.replicas} replicas healthy`, { replicas: row.replicas })
            return ids
          }).pipe(asStep("replicas"))
        })

      /**
       * A rolling update moves traffic replica by replica: new replica i is made (replicas beyond the
       * first behind their own gate), routed in next to the old ones, then one old replica is routed
       * out, drained, stopped and removed, before replica i+1 is made. So at least the count serves
       * at every moment and at most one container beyond it exists. The row's own old container
       * leaves the route last and is retired after the switch (a failed deploy goes back to it).
       * It runs only where several replicas serve or will (a single one switches atomically below)
       * and holds the route (`holdingRoute`) until the row names the new deployment, so a sync in
       * between does not put the old set back. Run again after a crash, it continues from what the
       * edge serves and the engine shows.
       */
      const rollTraffic = (primaryId: string, replicaIds: ReadonlyArray<string>, image: string) =>
        Effect.gen(function* () {
          const edge = yield* EdgeRouter
          const row = yield* serviceRow
          const current = yield* edge.route(serviceId)
          if (!rolls(row, current)) return
          const internalPort = row.internalPort!
          const wanted = Math.max(1, row.replicas)
          const old = current.upstreams
          if (old.length <= 1 && wanted <= 1) return
          // Which container publishes each port: the new deployment's stay, older ones retire.
          const owned = yield* runtime.listContainers({ all: true, labels: { "kyozo.service": serviceId } })
          const olderByPort = new Map<number, ContainerSummary>()
          const newPorts = new Set<number>()
          for (const c of owned) {
            for (const p of c.ports) {
              if (p.containerPort !== internalPort || !p.hostPort) continue
              if (c.labels["kyozo.deployment"] === deploymentId) newPorts.add(p.hostPort)
              else olderByPort.set(p.hostPort, c)
            }
          }
          const isPrimary = (u: Upstream) => olderByPort.get(u.port)?.id === row.containerId
          const outgoing = old
            .filter((u) => !newPorts.has(u.port))
            .sort((a, b) => Number(isPrimary(a)) - Number(isPrimary(b)))
          let serving: Array<Upstream> = [...old]
          for (let i = 0; i < Math.max(wanted, outgoing.length); i++) {
            if (i < wanted) {
              const id = i === 0 ? primaryId : (replicaIds[i - 1] ?? (yield* replicaUp(row, image, i)))
              const port = publishedPort(yield* runtime.inspectContainer(id), internalPort)
              if (port !== null && !serving.some((u) => u.port === port)) {
                serving = [...serving, { host: "127.0.0.1", port }]
                yield* edge.setUpstreams(serviceId, serving)
                yield* record(
                  "deploy.routed-in",
                  `Replica ${i + 1} of ${wanted} of the new version takes traffic`,
                  {
                    port,
                    upstreams: serving.map((u) => u.port)
                  }
                )
                yield* Effect.sleep(ROLL_SETTLE)
              }
            }
            const leaving = outgoing[i]
            if (leaving === undefined) continue
            serving = serving.filter((u) => u.port !== leaving.port)
            yield* edge.setUpstreams(serviceId, serving)
            yield* record(
              "deploy.routed-out",
              `Old replica ${i + 1} of ${outgoing.length} takes no new traffic`,
              {
                port: leaving.port,
                upstreams: serving.map((u) => u.port)
              }
            )
            yield* edge.drain(serviceId, leaving, settings.drainTimeout)
            const retiring = olderByPort.get(leaving.port)
            if (retiring === undefined || retiring.id === row.containerId) continue
            yield* runtime
              .stopContainer(retiring.id, { timeoutSeconds: settings.stopTimeoutSeconds })
              .pipe(Effect.catchAll(() => Effect.void))
            yield* runtime.removeContainer(retiring.id, { force: true })
            yield* record("deploy.retired", `Stopped and removed the previous container ${retiring.name}`, {
              containerId: retiring.id
            })
          }
        })

      // (e) switch the stable address to the new container (replica by replica where several serve);
      // the deployment is done then: what follows runs in the background (AfterDeployWorkflow)
      const switchOver = (
        containerId: string,
        containerNameValue: string,
        image: string,
        replicaIds: ReadonlyArray<string>,
        previousContainerId: string | null
      ) =>
        Activity.make({
          name: "switch",
          success: Switched,
          error: StepFailed,
          execute: Effect.gen(function* () {
            const [, before] = yield* Effect.all([status("switching"), serviceRow], { concurrency: 2 })
            const updated = yield* holdingRoute(
              serviceId,
              Effect.zipRight(
                rollTraffic(containerId, replicaIds, image),
                services.updateObserved(serviceId, {
                  image,
                  containerId,
                  containerName: containerNameValue,
                  currentDeploymentId: deploymentId,
                  status: "running"
                })
              )
            )
            // The edge now sends new requests to the new container only (level-driven: the row
            // names the current deployment, the engine shows its running containers).
            const synced = yield* syncService(Option.getOrElse(updated, () => before))
            const hostPort = synced.hostPort
            // The status first (a reader of "deploy.succeeded" finds the deployment succeeded), then both
            // events in one statement.
            yield* status("succeeded")
            yield* recordAll([
              {
                type: "deploy.switched",
                message: hostPort === null ? "Now serving" : `Now serving on http://127.0.0.1:${hostPort}`,
                data: { containerId, hostPort }
              },
              {
                type: "deploy.succeeded",
                message: "Deployed",
                data: { image, retiring: previousContainerId }
              }
            ])
            return { hostPort }
          }).pipe(asStep("switch"))
        })

      /**
       * A failed settings rollout: the row goes back to the settings that worked (unless another
       * change came since), so replicas, restarts and the next deploy do not use the broken ones.
       */
      const revertSettings = (failure: StepFailed) =>
        Effect.gen(function* () {
          const rollout = payload.settings
          if (rollout === undefined) return
          const row = yield* serviceRow
          if (!sameSettings(rolloutSettingsOf(row), rollout.applied)) {
            yield* record(
              "deploy.settings-kept",
              "The new settings failed; the service's settings changed again since, so they stay as they are now",
              { step: failure.step }
            )
            return
          }
          const previous = rollout.previous
          yield* services.update(teamId, serviceId, {
            env: previous.env,
            cpuMillis: previous.cpuMillis,
            memoryMb: previous.memoryMb,
            healthConfig: yield* Schema.decodeUnknown(HealthCheckConfig)(previous.healthConfig)
          })
          const changed = [
            ...new Set([...Object.keys(previous.env), ...Object.keys(rollout.applied.env)])
          ].filter((k) => previous.env[k] !== rollout.applied.env[k])
          yield* record(
            "deploy.settings-reverted",
            `The new settings failed at ${failure.step} (${failure.reason}); the service keeps its previous working settings`,
            {
              step: failure.step,
              envKeys: changed.sort(),
              cpuMillis: previous.cpuMillis,
              memoryMb: previous.memoryMb
            }
          )
        })

      const compensate = (created: typeof Created.Type, failure: StepFailed) =>
        Activity.make({
          name: "compensate",
          error: StepFailed,
          execute: Effect.gen(function* () {
            const row = yield* serviceRow
            // The switch may have pointed the edge at the new container before failing: point it back.
            if (created.previousContainerId !== null) {
              const reverted =
                row.containerId === created.containerId
                  ? yield* services.updateObserved(serviceId, {
                      containerId: created.previousContainerId,
                      currentDeploymentId:
                        row.currentDeploymentId === deploymentId ? null : row.currentDeploymentId,
                      status: "running"
                    })
                  : Option.some(row)
              yield* syncService(Option.getOrElse(reverted, () => row)).pipe(
                Effect.catchAllCause((c) => Effect.logWarning("route back failed", c))
              )
            }
            // The engine may be what failed (dockerd gone, breaker open): retry for about half a
            // minute, then leave the container to the cleanup pass rather than leave the deployment
            // unfinished. The deployment must end compensated either way.
            // The other replicas of this deployment go too (they never served).
            const replicas = yield* runtime
              .listContainers({ all: true, labels: { "kyozo.deployment": deploymentId } })
              .pipe(Effect.orElseSucceed(() => []))
            for (const c of replicas) {
              if (c.id !== created.containerId)
                yield* runtime.removeContainer(c.id, { force: true }).pipe(Effect.ignore)
            }
            yield* runtime.removeContainer(created.containerId, { force: true }).pipe(
              Effect.retry({
                schedule: Schedule.exponential("500 millis").pipe(
                  Schedule.jittered,
                  Schedule.intersect(Schedule.recurs(settings.compensationRetries))
                )
              }),
              Effect.catchAll((e) =>
                record("deploy.cleanup-deferred", `Could not remove the new container yet: ${e.message}`, {
                  containerId: created.containerId
                })
              )
            )
            // A TCP service stopped its previous container for the port (Recreate): it serves again.
            if (created.previousContainerId !== null && publishedByEngine(row)) {
              yield* runtime.startContainer(created.previousContainerId).pipe(
                Effect.retry({
                  while: (e) => /already allocated|address already in use/i.test(reasonOf(e)),
                  schedule: Schedule.spaced("250 millis").pipe(Schedule.intersect(Schedule.recurs(20)))
                }),
                Effect.catchAll((e) =>
                  record(
                    "deploy.restore-failed",
                    `Could not start the previous container again: ${e.message}`,
                    {
                      containerId: created.previousContainerId
                    }
                  )
                )
              )
            }
            if (created.previousContainerId === null && row.containerId === null) {
              yield* services.updateObserved(serviceId, { status: "failed" })
            } else if (row.status === "deploying") {
              // A previous container started again (TCP) is not probed yet: the health pass says `running`.
              const restarted = created.previousContainerId !== null && publishedByEngine(row)
              yield* services.updateObserved(serviceId, { status: restarted ? "starting" : "running" })
            }
            yield* revertSettings(failure)
            yield* status("compensated", { error: `${failure.step}: ${failure.reason}` })
            yield* record("deploy.failed", `Failed at ${failure.step}: ${failure.reason}`, {
              step: failure.step,
              reason: failure.reason
            })
            yield* record(
              "deploy.compensated",
              "Removed the new container; the previous version keeps serving",
              {
                containerId: created.containerId
              }
            )
          }).pipe(asStep("compensate"))
        })

      const failBeforeCreate = (failure: StepFailed) =>
        Activity.make({
          name: "fail",
          error: StepFailed,
          execute: Effect.gen(function* () {
            const row = yield* serviceRow
            if (row.status === "deploying") {
              yield* services.updateObserved(serviceId, {
                status: row.containerId === null ? "failed" : "running"
              })
            }
            yield* status("failed", { error: `${failure.step}: ${failure.reason}` })
            yield* record("deploy.failed", `Failed at ${failure.step}: ${failure.reason}`, {
              step: failure.step,
              reason: failure.reason
            })
          }).pipe(asStep("fail"))
        })

      const failed = (failure: StepFailed, compensated: boolean) =>
        new DeployFailed({
          service: serviceId,
          deploymentId,
          step: failure.step,
          reason: failure.reason,
          compensated
        })

      const built = yield* build.pipe(
        Effect.catchTag("StepFailed", (e) =>
          failBeforeCreate(e).pipe(Effect.ignore, Effect.zipRight(Effect.fail(failed(e, false))))
        )
      )
      // A failed check is no reason to fail the deploy: it simply deploys.
      const running =
        payload.force === true || payload.fresh === true
          ? null
          : yield* unchangedCheck(built.image).pipe(
              Effect.catchTag("StepFailed", (e) =>
                Effect.as(Effect.logInfo(`unchanged check: ${e.reason}; deploying`), null)
              )
            )
      if (running !== null) {
        const kept = yield* keep(running, built.image).pipe(
          Effect.catchTag("StepFailed", (e) =>
            failBeforeCreate(e).pipe(Effect.ignore, Effect.zipRight(Effect.fail(failed(e, false))))
          )
        )
        return {
          deploymentId,
          serviceId,
          image: built.image,
          built: built.built,
          containerId: running.containerId,
          containerName: running.containerName,
          hostPort: kept.hostPort,
          unchanged: true
        }
      }
      const created = yield* create(built.image).pipe(
        Effect.catchTag("StepFailed", (e) =>
          failBeforeCreate(e).pipe(Effect.ignore, Effect.zipRight(Effect.fail(failed(e, false))))
        )
      )
      const switched = yield* Effect.gen(function* () {
        yield* start(created.containerId, created.previousContainerId, created.direct)
        yield* healthGate(created.containerId, created.pinnedPort ?? null)
        // One replica: no replicas step (the create step stored the count).
        const replicaIds =
          created.replicas === undefined || created.replicas > 1 ? yield* replicasUp(built.image) : []
        return yield* switchOver(
          created.containerId,
          created.containerName,
          built.image,
          replicaIds,
          created.previousContainerId
        )
      }).pipe(
        Effect.catchTag("StepFailed", (e) =>
          compensate(created, e).pipe(Effect.ignore, Effect.zipRight(Effect.fail(failed(e, true))))
        )
      )
      // The new version serves already: retiring the old containers and pruning old images are
      // durable but not awaited (draining and a graceful stop, often the whole stop timeout for a
      // PID-1 app that ignores SIGTERM, must not make the deploy slower). A first deploy has
      // nothing to retire or prune (a leftover of a crashed one is the cleanup pass's business).
      if (payload.fresh !== true || created.previousContainerId !== null) {
        yield* AfterDeployWorkflow.execute(
          {
            teamId,
            serviceId,
            deploymentId,
            image: built.image,
            previousContainerId: created.previousContainerId
          },
          { discard: true }
        )
      }
      return {
        deploymentId,
        serviceId,
        image: built.image,
        built: built.built,
        containerId: created.containerId,
        containerName: created.containerName,
        hostPort: switched.hostPort
      }
    })
  )

/**
 * After a deploy answered: every container of an older deployment retires (replicas included, not
 * only the row's), then the service's images beyond the retention count are pruned (never the one
 * now serving; one still used by a draining container is skipped by the builder).
 */
export const AfterDeployWorkflow = Workflow.make({
  name: "Kyozo/AfterDeploy",
  payload: {
    teamId: TeamId,
    serviceId: ServiceId,
    deploymentId: DeploymentId,
    image: Schema.String,
    previousContainerId: Schema.NullOr(Schema.String)
  },
  idempotencyKey: (p) => `after-${p.deploymentId}`
})

const afterDeployLayer = (settings: DeploySettings) =>
  AfterDeployWorkflow.toLayer((payload) =>
    Effect.gen(function* () {
      const runtime = yield* ContainerRuntime
      const builder = yield* ImageBuilder
      const { teamId, serviceId, deploymentId, previousContainerId } = payload
      const older = yield* Activity.make({
        name: "older",
        success: Schema.Array(Schema.String),
        execute: runtime.listContainers({ all: true, labels: { "kyozo.service": serviceId } }).pipe(
          Effect.map((list) =>
            list
              .filter((c) => c.labels["kyozo.deployment"] !== deploymentId && c.id !== previousContainerId)
              .map((c) => c.id)
          ),
          Effect.catchAllCause((c) => Effect.as(Effect.logWarning("listing older containers failed", c), []))
        )
      })
      for (const containerId of [...older, ...(previousContainerId === null ? [] : [previousContainerId])]) {
        yield* RetireWorkflow.execute({ teamId, serviceId, deploymentId, containerId }, { discard: true })
      }
      yield* Activity.make({
        name: "prune",
        execute: builder
          .pruneRetained(serviceId, settings.keepImages, [payload.image])
          .pipe(Effect.catchAllCause((c) => Effect.logWarning("image prune failed", c)))
      })
    })
  )

/** Drains the proxy's connections to an old container, then stops and removes it. */
export const RetireWorkflow = Workflow.make({
  name: "Kyozo/Retire",
  payload: { teamId: TeamId, serviceId: ServiceId, deploymentId: DeploymentId, containerId: Schema.String },
  idempotencyKey: (p) => `retire-${p.deploymentId}-${p.containerId}`
})

const retireLayer = (settings: DeploySettings) =>
  RetireWorkflow.toLayer((payload) =>
    Effect.gen(function* () {
      const runtime = yield* ContainerRuntime
      const services = yield* ServiceRepo
      const events = yield* DeploymentEventRepo
      const edge = yield* EdgeRouter
      yield* Activity.make({
        name: "retire",
        execute: Effect.gen(function* () {
          const old = yield* runtime.inspectContainer(payload.containerId).pipe(Effect.option)
          if (Option.isNone(old)) return
          // Never retire what serves now (a rollback may have gone back to this very container).
          const row = yield* services.findByIdAnyTeam(payload.serviceId).pipe(Effect.map(Option.getOrNull))
          if (row?.containerId === payload.containerId) return
          const oldPort = publishedPort(old.value, row?.internalPort ?? null)
          if (oldPort !== null) {
            yield* edge.drain(payload.serviceId, { host: "127.0.0.1", port: oldPort }, settings.drainTimeout)
          }
          yield* runtime
            .stopContainer(payload.containerId, { timeoutSeconds: settings.stopTimeoutSeconds })
            .pipe(Effect.catchAll(() => Effect.void))
          yield* runtime.removeContainer(payload.containerId, { force: true })
          yield* events.append({
            teamId: payload.teamId,
            serviceId: payload.serviceId,
            deploymentId: payload.deploymentId,
            type: "deploy.retired",
            message: `Stopped and removed the previous container ${old.value.name}`,
            data: { containerId: payload.containerId }
          })
        }).pipe(Effect.catchAllCause((c) => Effect.logWarning("retiring the old container failed", c)))
      })
    })
  )

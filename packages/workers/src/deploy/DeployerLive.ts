/**
 * The Deployer on the durable engine: detection and rows here, the deploy itself in the
 * `ServiceEntity` of each service (which runs the `DeployWorkflow`). Everything is team-scoped: a
 * service of another team is answered with ServiceNotFound, exactly like one that does not exist.
 *
 * Rows are written with short single statements before an entity is called; nothing here calls an
 * entity from inside a transaction (on PGlite that deadlocks: the message insert needs the connection).
 */
import * as fs from "node:fs"
import * as path from "node:path"

import * as Sharding from "@effect/cluster/Sharding"
import {
  type DeployError,
  DeployFailed,
  type DeploymentSummary,
  type DeployProgress,
  type DeployRequest,
  InvalidSource,
  NoRollbackTarget,
  NothingToDeploy,
  ServiceNotFound,
  type ServiceView
} from "@kyozo/api/domain/Deploy"
import type { DeploymentEvent } from "@kyozo/api/domain/DeploymentEvent"
import { type DeploymentId, ServiceId, type TeamId } from "@kyozo/api/domain/Ids"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import { storedSourceOf } from "@kyozo/api/domain/StoredSource"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import { type PlannedService, toResult } from "@kyozo/core/build/topology/Topology"
import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
import { EdgeRouter } from "@kyozo/core/edge/EdgeRouter"
import { hostUrlFor, httpsUrlFor } from "@kyozo/core/edge/HostNames"
import type { ImageInfo, LogLine } from "@kyozo/core/engine/ContainerRuntime"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import { serviceUrl } from "@kyozo/core/engine/ServiceNaming"
import { volumesOf } from "@kyozo/core/engine/ServiceVolumes"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { uploadDir } from "@kyozo/core/sources/Uploads"
import * as Workspaces from "@kyozo/core/sources/Workspaces"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import type { NewDependency } from "@kyozo/core/store/TopologyRepo"
import { TopologyRepo } from "@kyozo/core/store/TopologyRepo"
import { Chunk, Deferred, Duration, Effect, Layer, Option, PubSub, Queue, Stream } from "effect"

import { DeployBus, type DeployNotice } from "./DeployBus.js"
import { Deployer } from "./Deployer.js"
import type { DeploySettings } from "./DeploySettings.js"
import * as DeployWorkflow from "./DeployWorkflow.js"
import * as DurableEngine from "./DurableEngine.js"
import { syncService } from "./EdgeRoutes.js"
import * as PlannedSettings from "./PlannedSettings.js"
import * as Quotas from "./Quotas.js"
import * as Replicas from "./Replicas.js"
import * as ServiceEntity from "./ServiceEntity.js"

export interface DeployerOptions {
  /** Where uploads are extracted (`<dataDir>/uploads/<team>/<id>`); default KyozoConfig.dataDir. */
  readonly dataDir?: string
  /** Root under which `Path` sources must lie; default `<dataDir>/workspaces`. */
  readonly workspacesRoot?: string
  /** Health gate, drain and retention settings of the workflow. */
  readonly settings?: Partial<DeploySettings>
}

/** Lower-case, Docker- and DNS-friendly, as the services table requires. */
export const serviceNameOf = (raw: string): string => {
  const cleaned = raw
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 63)
  return cleaned === "" ? "app" : cleaned
}

/** Dependencies first (Kahn), otherwise in detection order; a cycle keeps detection order. */
export const dependencyOrder = (planned: ReadonlyArray<PlannedService>): ReadonlyArray<PlannedService> => {
  const names = new Set(planned.map((p) => p.service.name))
  const done = new Set<string>()
  const out: Array<PlannedService> = []
  let progress = true
  while (out.length < planned.length && progress) {
    progress = false
    for (const p of planned) {
      if (done.has(p.service.name)) continue
      if (p.service.dependsOn.every((d) => !names.has(d) || done.has(d))) {
        done.add(p.service.name)
        out.push(p)
        progress = true
      }
    }
  }
  for (const p of planned) if (!done.has(p.service.name)) out.push(p)
  return out
}

export const toView = (row: ServiceInstance): ServiceView => ({
  id: row.id,
  name: row.name,
  kind: row.kind,
  framework: row.framework,
  status: row.status,
  desiredState: row.desiredState,
  image: row.image,
  currentDeploymentId: row.currentDeploymentId,
  url: serviceUrl(row.hostPort),
  containerId: row.containerId,
  restartCount: row.restartCount,
  updatedAt: row.updatedAt.toISOString()
})

const imageRef = (info: ImageInfo): string => info.tags[0] ?? info.id

const matchesImage = (info: ImageInfo, ref: string | null): boolean =>
  ref !== null &&
  (info.id === ref || info.tags.includes(ref) || info.id.replace(/^sha256:/, "").startsWith(ref))

export const make = (options: DeployerOptions = {}) =>
  Effect.gen(function* () {
    const edgeRouter = yield* Effect.serviceOption(EdgeRouter)
    // What scaling needs, taken once (the whole context at start: RuntimeInfo, TeamRepo… included).
    const scaleContext = yield* Effect.context<ContainerRuntime | ServiceRepo>()
    /** The row's view plus what the edge says: its host name URL, which edge serves it. */
    const viewOf = (row: ServiceInstance): Effect.Effect<ServiceView> =>
      Option.match(edgeRouter, {
        onNone: () => Effect.succeed(toView(row)),
        onSome: (edge) =>
          Effect.gen(function* () {
            const status = yield* edge.status
            const route = yield* edge.route(row.id)
            const hostUrl =
              route?.hostName && status.sharedPort !== null
                ? hostUrlFor(route.hostName, status.sharedPort)
                : null
            const httpsUrl =
              route?.hostName && status.tlsPort != null ? httpsUrlFor(route.hostName, status.tlsPort) : null
            return {
              ...toView(row),
              hostUrl,
              httpsUrl,
              domains: route?.domains ?? [],
              edge: status.kind,
              replicas: row.replicas
            }
          })
      })
    const services = yield* ServiceRepo
    const deployments = yield* DeploymentRepo
    const events = yield* DeploymentEventRepo
    const quotas = yield* Quotas.makeGate
    const topology = yield* TopologyRepo
    const builder = yield* ImageBuilder
    const runtime = yield* ContainerRuntime
    const bus = yield* DeployBus
    const makeClient = yield* ServiceEntity.ServiceEntity.client
    const config = yield* Effect.serviceOption(KyozoConfig)
    const dataDir = options.dataDir ?? Option.getOrUndefined(Option.map(config, (c) => c.dataDir)) ?? ".kyozo"
    const workspacesRoot =
      options.workspacesRoot ??
      Option.getOrUndefined(Option.map(config, (c) => c.workspacesRoot)) ??
      path.join(dataDir, "workspaces")
    // Messages sent before the runner holds its shards wait for a storage poll: wait once instead.
    const sharding = yield* Sharding.Sharding
    const ready = yield* Effect.cached(
      DurableEngine.awaitReady().pipe(Effect.provideService(Sharding.Sharding, sharding), Effect.orDie)
    )

    const findService = (teamId: TeamId, service: string) =>
      Effect.gen(function* () {
        const byId = service.startsWith("svc_")
          ? yield* services.findById(teamId, ServiceId.make(service))
          : Option.none<ServiceInstance>()
        const found = Option.isSome(byId) ? byId : yield* services.findByName(teamId, service)
        return yield* Option.match(found, {
          onNone: () => Effect.fail(new ServiceNotFound({ service })),
          onSome: Effect.succeed
        })
      }).pipe(Effect.catchTag("SqlError", Effect.die))

    const resolveSource = (teamId: TeamId, request: DeployRequest) =>
      Effect.gen(function* () {
        const source = request.source
        if (source._tag === "Upload") {
          const dir = uploadDir(dataDir, teamId, source.uploadId)
          if (dir === undefined || !fs.existsSync(dir)) {
            return yield* new InvalidSource({ source: `upload ${source.uploadId}`, reason: "no such upload" })
          }
          return dir
        }
        return yield* Workspaces.resolveInside(workspacesRoot, source.path).pipe(
          Effect.mapError((e) => new InvalidSource({ source: source.path, reason: e.message }))
        )
      })

    const dispatch = (payload: DeployWorkflow.DeployPayload, serviceName: string, started: number) =>
      Effect.gen(function* () {
        yield* ready
        const outcome = yield* makeClient(payload.serviceId)
          .Deploy(payload)
          .pipe(
            Effect.catchIf(
              (e): e is Exclude<typeof e, DeployFailed> => !(e instanceof DeployFailed),
              (e) =>
                Effect.fail(
                  new DeployFailed({
                    service: serviceName,
                    deploymentId: payload.deploymentId,
                    step: "dispatch",
                    reason: String((e as { message?: unknown }).message ?? e),
                    compensated: false
                  })
                )
            ),
            Effect.mapError((e) =>
              e.service === payload.serviceId ? new DeployFailed({ ...e, service: serviceName }) : e
            )
          )
        const summary: DeploymentSummary = {
          deploymentId: payload.deploymentId,
          serviceId: payload.serviceId,
          serviceName,
          status: outcome.unchanged === true ? "unchanged" : "succeeded",
          image: outcome.image,
          built: outcome.built,
          url: serviceUrl(outcome.hostPort),
          durationMs: Date.now() - started
        }
        return summary
      })

    /** One service's deploy as progress: its build log and steps, then Deployed. */
    const deployOne = (payload: DeployWorkflow.DeployPayload, serviceName: string) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const started = Date.now()
          const sub = yield* PubSub.subscribe(bus.hub)
          const done = yield* Deferred.make<DeploymentSummary, DeployError>()
          yield* dispatch(payload, serviceName, started).pipe(
            Effect.exit,
            Effect.flatMap((exit) => Deferred.done(done, exit)),
            Effect.forkScoped
          )
          const mine = (n: DeployNotice): Option.Option<DeployProgress> =>
            n.deploymentId !== payload.deploymentId
              ? Option.none()
              : Option.some(
                  n.progress._tag === "Step"
                    ? { ...n.progress, service: serviceName }
                    : n.progress._tag === "BuildLog"
                      ? { ...n.progress, service: serviceName }
                      : n.progress
                )
          const live = Stream.fromQueue(sub).pipe(
            Stream.interruptWhen(Deferred.await(done).pipe(Effect.exit))
          )
          const rest = Stream.fromIterableEffect(Queue.takeAll(sub))
          const result = Stream.fromEffect(Deferred.await(done)).pipe(
            Stream.map((deployment): DeployProgress => ({ _tag: "Deployed", deployment }))
          )
          return Stream.concat(live, rest).pipe(Stream.filterMap(mine), Stream.concat(result))
        })
      )

    const deploy = (teamId: TeamId, request: DeployRequest): Stream.Stream<DeployProgress, DeployError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const folder = yield* resolveSource(teamId, request)
          // An upload's folder is named by its upload id: the requested name names its root app.
          const plan = yield* detectPlan(
            folder,
            request.source._tag === "Upload" && request.name !== undefined ? { rootName: request.name } : {}
          )
          if (plan.services.length === 0) {
            return yield* new NothingToDeploy({
              folder: request.source._tag === "Path" ? request.source.path : folder,
              reason: plan.reason ?? "no services found"
            })
          }
          const single = plan.services.length === 1
          const nameFor = (p: PlannedService) =>
            serviceNameOf(
              single
                ? (request.name ?? p.service.name)
                : request.name
                  ? `${request.name}-${p.service.name}`
                  : p.service.name
            )

          // New rows under the team's quota lock: a refused deploy leaves nothing behind, and two
          // deploys racing at the limit cannot both pass.
          // kyozo.json's replicas, health check and env count too (PlannedSettings: one rule).
          const rows = new Map<string, ServiceInstance>()
          const settingsBefore = new Map<string, ServiceInstance>()
          const countNew = Effect.gen(function* () {
            const sum = { services: 0, cpuMillis: 0, memoryMb: 0 }
            for (const p of plan.services) {
              const existing = Option.getOrUndefined(yield* services.findByName(teamId, nameFor(p)))
              const add = PlannedSettings.additionsOf(PlannedSettings.rowSettingsOf(p, existing), existing)
              sum.services += add.services
              sum.cpuMillis += add.cpuMillis ?? 0
              sum.memoryMb += add.memoryMb ?? 0
            }
            return sum
          })
          const writeRows = Effect.gen(function* () {
            for (const p of plan.services) {
              const name = nameFor(p)
              const existing = yield* services.findByName(teamId, name)
              const fields = {
                kind: p.service.kind,
                framework: p.service.framework,
                internalPort: p.service.port,
                source: storedSourceOf(request.source, p.service.path),
                volumes: p.volumes ?? [],
                ...PlannedSettings.rowSettingsOf(p, Option.getOrUndefined(existing))
              }
              if (Option.isSome(existing) && (fields.env !== undefined || fields.healthConfig !== undefined))
                settingsBefore.set(p.service.name, existing.value)
              const row = Option.isSome(existing)
                ? Option.getOrElse(
                    yield* services.update(teamId, existing.value.id, { ...fields, desiredState: "running" }),
                    () => existing.value
                  )
                : yield* services.create({ teamId, name, ...fields })
              rows.set(p.service.name, row)
            }
          })
          yield* quotas.withinQuota(teamId, countNew, writeRows)
          const edges: Array<NewDependency> = []
          for (const p of plan.services) {
            const row = rows.get(p.service.name)!
            for (const d of p.service.dependsOn) {
              const target = rows.get(d)
              if (target) edges.push({ serviceId: row.id, dependsOnServiceId: target.id })
            }
            for (const r of p.service.requires) edges.push({ serviceId: row.id, requires: r })
          }
          yield* topology.saveDetection({
            teamId,
            serviceId: single ? rows.get(plan.services[0]!.service.name)!.id : null,
            rootPath: folder,
            result: toResult(plan),
            dependencies: edges
          })

          const ordered = dependencyOrder(plan.services)
          const perService = ordered.map((p) =>
            Stream.unwrap(
              Effect.gen(function* () {
                const row = rows.get(p.service.name)!
                const created = yield* deployments.create({ teamId, serviceId: row.id })
                const deployment = yield* Option.match(created, {
                  onNone: () => Effect.fail(new ServiceNotFound({ service: row.name })),
                  onSome: Effect.succeed
                })
                if (row.containerId === null) yield* services.updateObserved(row.id, { status: "deploying" })
                return deployOne(
                  {
                    teamId,
                    serviceId: row.id,
                    deploymentId: deployment.id,
                    image: null,
                    root: plan.root,
                    // Encoded by the payload's schema when the workflow stores it.
                    planned: p,
                    aliases: [p.service.name],
                    ...(request.force === true ? { force: true } : {}),
                    // Settings kyozo.json changed go back to the previous ones if the deploy fails.
                    ...Option.match(Option.fromNullable(settingsBefore.get(p.service.name)), {
                      onNone: () => ({}),
                      onSome: (before) => ({
                        settings: {
                          previous: DeployWorkflow.rolloutSettingsOf(before),
                          applied: DeployWorkflow.rolloutSettingsOf(row)
                        }
                      })
                    }),
                    ...(row.containerId === null ? { fresh: true } : {})
                  },
                  row.name
                )
              }).pipe(Effect.catchTag("SqlError", Effect.die))
            )
          )
          const detected: DeployProgress = { _tag: "Detected", services: plan.services.map((p) => p.service) }
          return Stream.concat(Stream.make(detected), Stream.concatAll(Chunk.fromIterable(perService)))
        }).pipe(Effect.catchTag("SqlError", Effect.die), Effect.catchTag("ServiceNameTaken", Effect.die))
      )

    /** Records the desired state, then asks the service's entity to act on it. */
    const lifecycle =
      (operation: "Stop" | "Start" | "Restart", desiredState: "stopped" | "running") =>
      (teamId: TeamId, service: string) =>
        Effect.gen(function* () {
          const row = yield* findService(teamId, service)
          yield* services.update(teamId, row.id, { desiredState }).pipe(Effect.orDie)
          yield* ready
          const client = makeClient(row.id)
          yield* client[operation]({ serviceId: row.id }).pipe(
            Effect.catchAll(opFailed(row.name, operation.toLowerCase()))
          )
          return yield* viewOf(yield* findService(teamId, row.id))
        })

    const stop = lifecycle("Stop", "stopped")
    const start = lifecycle("Start", "running")
    const restart = lifecycle("Restart", "running")

    const remove = (teamId: TeamId, service: string, removeOptions: { readonly volumes?: boolean } = {}) =>
      Effect.gen(function* () {
        const row = yield* findService(teamId, service)
        yield* ready
        yield* Replicas.withoutConverge(
          row.id,
          Effect.gen(function* () {
            yield* makeClient(row.id)
              .Remove({ serviceId: row.id })
              .pipe(Effect.catchAll(opFailed(row.name, "remove")))
            yield* services.softDelete(teamId, row.id).pipe(Effect.orDie)
          })
        )
        yield* builder
          .pruneRetained(row.id, 0, [])
          .pipe(Effect.catchAllCause((c) => Effect.logWarning("removing the service's images failed", c)))
        // Its route (and the custom domains on it) goes now, not at the next sync: the names are free.
        if (Option.isSome(edgeRouter))
          yield* edgeRouter.value
            .remove(row.id)
            .pipe(
              Effect.catchAll((e) =>
                Effect.logWarning(`edge: route of ${row.name} left for the next sync: ${e.message}`)
              )
            )
        // Data volumes stay unless asked for (`--volumes`); one still in use stays too.
        const isLive = (id: string) =>
          services.findById(teamId, ServiceId.make(id)).pipe(
            Effect.map(Option.isSome),
            Effect.orElseSucceed(() => true)
          )
        const owned = yield* volumesOf(runtime, row, isLive).pipe(Effect.orElseSucceed(() => []))
        const removed: Array<string> = []
        const kept: Array<string> = []
        for (const v of owned) {
          if (removeOptions.volumes !== true) {
            kept.push(v.name)
            continue
          }
          const gone = yield* Effect.either(runtime.removeVolume(v.name))
          if (gone._tag === "Right") removed.push(v.name)
          else {
            kept.push(v.name)
            yield* Effect.logWarning(`volume ${v.name} of ${row.name} kept: ${gone.left.message}`)
          }
        }
        const volumeNote =
          owned.length === 0
            ? ""
            : kept.length === 0
              ? `; removed its volumes ${removed.join(", ")}`
              : `; kept its volumes ${kept.join(", ")}${removeOptions.volumes === true ? " (still in use)" : " (remove them with kyozo rm --volumes)"}`
        yield* events
          .append({
            teamId,
            serviceId: row.id,
            type: "service.removed",
            message: `Removed ${row.name}${volumeNote}`,
            data: { volumes: { removed, kept } }
          })
          .pipe(Effect.orDie)
        return { removed, kept }
      })

    const rollback = (teamId: TeamId, service: string, to?: string) =>
      Effect.gen(function* () {
        const row = yield* findService(teamId, service)
        let image: string
        if (to !== undefined && to.startsWith("dep_")) {
          const dep = yield* deployments.get(teamId, to as DeploymentId).pipe(Effect.orDie)
          if (Option.isNone(dep) || dep.value.serviceId !== row.id || dep.value.image === null) {
            return yield* new NoRollbackTarget({
              service: row.name,
              detail: `no deployment ${to} with an image for this service`
            })
          }
          image = dep.value.image
        } else {
          const retained = yield* builder.retained(row.id).pipe(
            Effect.catchAll(
              (e) =>
                new NoRollbackTarget({
                  service: row.name,
                  detail: String((e as { message?: unknown }).message ?? e)
                })
            )
          )
          if (to !== undefined) {
            const found = retained.find((i) => matchesImage(i, to))
            if (!found)
              return yield* new NoRollbackTarget({
                service: row.name,
                detail: `${to} is not a retained image of this service`
              })
            image = to.startsWith("sha256:") || found.tags.includes(to) ? to : imageRef(found)
          } else {
            const current = retained.findIndex((i) => matchesImage(i, row.image))
            const previous =
              current >= 0 ? retained[current + 1] : retained.find((i) => !matchesImage(i, row.image))
            if (!previous) {
              return yield* new NoRollbackTarget({
                service: row.name,
                detail: "no earlier image is retained"
              })
            }
            image = imageRef(previous)
          }
        }
        const created = yield* deployments.create({ teamId, serviceId: row.id, image }).pipe(Effect.orDie)
        if (Option.isNone(created)) return yield* new ServiceNotFound({ service })
        yield* events
          .append({
            teamId,
            serviceId: row.id,
            deploymentId: created.value.id,
            type: "deploy.rollback",
            message: `Rolling back to ${image}`,
            data: { image }
          })
          .pipe(Effect.orDie)
        return yield* dispatch(
          {
            teamId,
            serviceId: row.id,
            deploymentId: created.value.id,
            image,
            root: null,
            planned: null,
            aliases: []
          },
          row.name,
          Date.now()
        )
      })

    const list = (teamId: TeamId) =>
      services.list(teamId, { limit: 1000 }).pipe(
        Effect.flatMap((page) => Effect.forEach(page.items, viewOf)),
        Effect.orDie
      )

    const get = (teamId: TeamId, service: string) => Effect.flatMap(findService(teamId, service), viewOf)

    const logs = (
      teamId: TeamId,
      service: string,
      opts: { readonly follow?: boolean; readonly tail?: number } = {}
    ): Stream.Stream<LogLine, DeployError> =>
      Stream.unwrap(
        Effect.map(findService(teamId, service), (row) =>
          row.containerId === null
            ? Stream.empty
            : runtime.logs(row.containerId, {
                ...(opts.follow === undefined ? {} : { follow: opts.follow }),
                ...(opts.tail === undefined ? {} : { tail: opts.tail })
              })
        )
      )

    const eventStream = (
      teamId: TeamId,
      opts: { readonly afterId?: number; readonly follow?: boolean; readonly service?: string } = {}
    ): Stream.Stream<DeploymentEvent, DeployError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const serviceId =
            opts.service === undefined ? undefined : (yield* findService(teamId, opts.service)).id
          const page = (after: number) =>
            (serviceId === undefined
              ? events.listSince(teamId, after, 100)
              : events.listByService(teamId, serviceId, { afterId: after, limit: 100 })
            ).pipe(Effect.orDie)
          return Stream.paginateChunkEffect(opts.afterId ?? 0, (after) =>
            Effect.gen(function* () {
              let rows = yield* page(after)
              while (rows.length === 0 && opts.follow === true) {
                yield* Effect.sleep(Duration.millis(500))
                rows = yield* page(after)
              }
              const last = rows.length > 0 ? rows[rows.length - 1]!.id : after
              const more = rows.length > 0 || opts.follow === true
              return [Chunk.fromIterable(rows), more ? Option.some(last) : Option.none<number>()] as const
            })
          )
        })
      )

    const opFailed = (service: string, operation: string) => (e: unknown) =>
      Effect.fail(
        new DeployFailed({
          service,
          deploymentId: "",
          step: operation,
          reason: String((e as { message?: unknown }).message ?? e),
          compensated: false
        })
      )

    const scale = (teamId: TeamId, service: string, replicas: number) =>
      Effect.gen(function* () {
        const row = yield* findService(teamId, service)
        // Under the team's quota lock, like every change of limits or replicas: what more replicas
        // add is read there, so two racing scale-ups cannot both pass.
        const additions = Effect.map(services.findById(teamId, row.id), (current) => {
          const now = Option.getOrElse(current, () => row)
          const more = replicas - now.replicas
          return { services: 0, cpuMillis: now.cpuMillis * more, memoryMb: now.memoryMb * more }
        })
        const updated = Option.getOrElse(
          yield* quotas
            .withinQuota(teamId, additions, services.update(teamId, row.id, { replicas }))
            .pipe(Effect.catchTag("ServiceNameTaken", Effect.die)),
          () => row
        )
        // The caller gets the new desired count at once; the replicas converge in the background
        // (in the service's lane, so a health pass converging it too waits its turn), and the pass
        // repeats it anyway. Engine calls never hold up the answer (an engine outage would).
        const converge = Replicas.convergeService(updated.id).pipe(
          Effect.zipRight(
            Option.match(edgeRouter, {
              onNone: () => Effect.void,
              onSome: (edge) =>
                Effect.flatMap(services.findById(teamId, updated.id), (current) =>
                  Effect.provideService(
                    syncService(Option.getOrElse(current, () => updated)),
                    EdgeRouter,
                    edge
                  )
                )
            })
          )
        )
        yield* converge.pipe(
          Effect.provide(scaleContext),
          Effect.catchAllCause((cause) =>
            Effect.logWarning(`scaling ${row.name} continues in the next pass`, cause)
          ),
          Effect.forkDaemon
        )
        return yield* viewOf(updated)
      })

    const applySettings = (teamId: TeamId, service: string, previous?: ServiceInstance) =>
      Effect.gen(function* () {
        const row = yield* findService(teamId, service)
        if (row.image === null || row.desiredState !== "running" || row.currentDeploymentId === null)
          return Option.none<DeploymentId>()
        const image = row.image
        const created = yield* deployments.create({ teamId, serviceId: row.id, image }).pipe(Effect.orDie)
        if (Option.isNone(created)) return yield* new ServiceNotFound({ service })
        yield* events
          .append({
            teamId,
            serviceId: row.id,
            deploymentId: created.value.id,
            type: "deploy.settings",
            message: `Rolling out new settings on ${image}`,
            data: { image }
          })
          .pipe(Effect.orDie)
        // The durable workflow records the outcome (a failed gate compensates and marks the
        // deployment failed); the caller gets the deployment to follow, not the wait.
        yield* dispatch(
          {
            teamId,
            serviceId: row.id,
            deploymentId: created.value.id,
            image,
            root: null,
            planned: null,
            aliases: [],
            ...(previous === undefined
              ? {}
              : {
                  settings: {
                    previous: DeployWorkflow.rolloutSettingsOf(previous),
                    applied: DeployWorkflow.rolloutSettingsOf(row)
                  }
                })
          },
          row.name,
          Date.now()
        ).pipe(
          Effect.catchAllCause((cause) =>
            Effect.logWarning(`rolling out settings of ${row.name} failed`, cause)
          ),
          Effect.forkDaemon
        )
        return Option.some(created.value.id)
      })

    return Deployer.of({
      deploy,
      applySettings,
      scale,
      stop,
      start,
      restart,
      remove,
      rollback,
      list,
      get,
      logs,
      events: eventStream
    })
  })

/** The Deployer alone: needs the workflow, the entity and the bus registered (see `layerAll`). */
export const layer = (options: DeployerOptions = {}) => Layer.effect(Deployer, make(options))

/**
 * The Deployer with its workflow, entity and progress bus. Needs the durable engine
 * (`DurableEngine.layer*`), the repos, the runtime, the ImageBuilder and the ServiceProxy.
 */
export const layerAll = (options: DeployerOptions = {}) =>
  layer(options).pipe(
    Layer.provideMerge(Layer.mergeAll(DeployWorkflow.layer(options.settings), ServiceEntity.layer)),
    Layer.provideMerge(DeployBus.Default)
  )

/**
 * Routes follow containers, level-driven. The desired upstreams of a service are the
 * 127.0.0.1-published ports of its running containers of the current deployment (containers the
 * engine reports unhealthy are left out while a healthy one remains). `syncService` computes them
 * from what the engine shows now and hands them to the EdgeRouter, which pushes a change only when
 * it differs; so calling it after every container change, on every Docker event, on every
 * reconcile pass and when the engine comes back is cheap and always converges.
 *
 * The loop (`layer`): Docker `events` of managed containers trigger a sync of their service; the
 * breaker closing again (the engine is back) runs the health+recovery pass and a full sync at once
 * rather than at the next tick; while the breaker is not closed the engine is pinged every second
 * so the half-open trial happens as soon as it may.
 */
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import { EdgeRouter, type Upstream } from "@kyozo/core/edge/EdgeRouter"
import { hostNameFor } from "@kyozo/core/edge/HostNames"
import { publishedByEngine } from "@kyozo/core/edge/Transport"
import { RuntimeBreaker } from "@kyozo/core/engine/CircuitBreaker"
import type { ContainerSummary } from "@kyozo/core/engine/ContainerRuntime"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { RuntimeInfo } from "@kyozo/core/engine/RuntimeSelection"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { ServiceDomainRepo } from "@kyozo/core/store/ServiceDomainRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import * as KeyedLane from "@kyozo/core/supervision/KeyedLane"
import { MaintenancePasses } from "@kyozo/core/supervision/MaintenancePasses"
import { Duration, Effect, Layer, Option, Schedule, Stream } from "effect"

import { probeHttp, probePort, probeTcp } from "../maintenance/HealthWorker.js"

/** The upstreams a service should have, from the engine's list of its containers. */
export const desiredUpstreams = (
  service: Pick<ServiceInstance, "containerId" | "currentDeploymentId" | "internalPort">,
  containers: ReadonlyArray<ContainerSummary>
): ReadonlyArray<Upstream> => {
  if (service.internalPort === null) return []
  const current = containers.filter(
    (c) =>
      c.state === "running" &&
      (c.id === service.containerId ||
        (service.currentDeploymentId !== null && c.labels[Labels.Deployment] === service.currentDeploymentId))
  )
  const withPort = current.flatMap((c) => {
    const p = c.ports.find(
      (x) => x.containerPort === service.internalPort && x.protocol === "tcp" && x.hostPort > 0
    )
    return p === undefined ? [] : [{ container: c, upstream: { host: "127.0.0.1", port: p.hostPort } }]
  })
  const healthy = withPort.filter((x) => !/\(unhealthy\)/.test(x.container.status))
  const chosen = healthy.length > 0 ? healthy : withPort
  const seen = new Set<number>()
  return chosen
    .map((x) => x.upstream)
    .filter((u) => (seen.has(u.port) ? false : (seen.add(u.port), true)))
    .sort((a, b) => a.port - b.port)
}

/** Deadline of one replica probe during a route sync. */
const REPLICA_PROBE_TIMEOUT = Duration.seconds(1)

/** One replica's probe through its 127.0.0.1 port, per the service's health config. */
const probeReplica = (service: ServiceInstance, port: number): Effect.Effect<boolean> => {
  const config = service.healthConfig
  const probe: Effect.Effect<boolean, string> =
    config.type === "http"
      ? Effect.map(probeHttp(port, config.path, REPLICA_PROBE_TIMEOUT), (code) =>
          config.expectedStatus.includes(code)
        )
      : config.type === "tcp"
        ? Effect.as(probeTcp(port, REPLICA_PROBE_TIMEOUT), true)
        : Effect.as(probePort(port, REPLICA_PROBE_TIMEOUT), true)
  return Effect.orElseSucceed(probe, () => false)
}

/**
 * Every replica is probed on every sync (readiness, as Kubernetes endpoints follow it): one that
 * fails gets no traffic while another answers. When none answers all stay, so the edge's own
 * retries still try them and the URL says what is wrong instead of a bare 503.
 */
export const answering = (
  service: ServiceInstance,
  candidates: ReadonlyArray<Upstream>
): Effect.Effect<ReadonlyArray<Upstream>> =>
  candidates.length <= 1
    ? Effect.succeed(candidates)
    : Effect.gen(function* () {
        const results = yield* Effect.forEach(candidates, (u) => probeReplica(service, u.port), {
          concurrency: "unbounded"
        })
        const ok = candidates.filter((_, i) => results[i])
        if (ok.length === 0 || ok.length === candidates.length) return candidates
        const failing = candidates.filter((_, i) => !results[i]).map((u) => u.port)
        yield* Effect.logDebug(`edge: ${service.name}: replicas on ${failing.join(", ")} fail their probe`)
        return ok
      })

/**
 * Services whose route a rolling update moves replica by replica right now: the deploy owns their
 * upstreams until it switches over, so a sync in between (an engine event, the periodic pass) does
 * not put the old set back. In memory on purpose: after a crash nothing holds the route and the
 * level-driven rule (the current deployment's containers) applies again.
 */
const rolling = new Set<string>()

/** True while a rolling update holds the service's upstreams (its replicas are the rollout's too). */
export const routeHeld = (serviceId: string): Effect.Effect<boolean> =>
  Effect.sync(() => rolling.has(serviceId))

/** Runs `effect` with the service's upstreams held by the caller (see `rolling`). */
export const holdingRoute = <A, E, R>(serviceId: string, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => rolling.add(serviceId)),
    () => effect,
    () => Effect.sync(() => rolling.delete(serviceId))
  )

/**
 * How long the route keeps the port of a replica that died (its container is down, the recovery
 * loop restarts it on the same pinned port). Dropping it at once would reload Caddy at the very
 * moment requests that met the dead replica are being retried on the others, and a reload ends
 * the old config's retries with a 502; Caddy's passive health keeps traffic off the port meanwhile.
 */
export const DEAD_REPLICA_GRACE_MS = 15_000

const RELIST_DELAY = Duration.millis(300)

const missingSince = new Map<string, number>()

/**
 * The upstreams to push: `probed`, plus, for each container of the current deployment that is down
 * (not removed), one port the route serves now that `probed` lacks, for at most the grace.
 * Containers of older deployments and removed replicas get no grace: a switch or a scale-in
 * takes effect at once.
 */
export const keepDeadReplicas = (
  service: { readonly id: string; readonly currentDeploymentId: string | null },
  containers: ReadonlyArray<ContainerSummary>,
  routed: ReadonlyArray<Upstream>,
  probed: ReadonlyArray<Upstream>,
  now: number = Date.now()
): ReadonlyArray<Upstream> => {
  const key = (u: Upstream) => `${service.id} ${u.host}:${u.port}`
  for (const u of probed) missingSince.delete(key(u))
  const down = containers.filter(
    (c) =>
      c.state !== "running" &&
      service.currentDeploymentId !== null &&
      c.labels[Labels.Deployment] === service.currentDeploymentId
  ).length
  const missing = routed.filter((u) => !probed.some((p) => p.host === u.host && p.port === u.port))
  const kept: Array<Upstream> = []
  for (const u of missing) {
    // Once its grace is over the entry stays (so the port is not kept again) until it leaves the route.
    const since = missingSince.get(key(u)) ?? now
    missingSince.set(key(u), since)
    if (kept.length < down && now - since < DEAD_REPLICA_GRACE_MS && probed.length > 0) kept.push(u)
  }
  const prefix = `${service.id} `
  for (const k of missingSince.keys())
    if (k.startsWith(prefix) && !missing.some((u) => key(u) === k)) missingSince.delete(k)
  return kept.length === 0 ? probed : [...probed, ...kept].sort((a, b) => a.port - b.port)
}

export interface SyncResult {
  readonly serviceId: string
  readonly hostPort: number | null
  readonly upstreams: ReadonlyArray<Upstream>
  readonly changed: boolean
}

/** Host name of a service, when the team is known (TeamRepo present) . */
const hostNameOf = (service: ServiceInstance) =>
  Effect.gen(function* () {
    const teams = yield* Effect.serviceOption(TeamRepo)
    const config = yield* Effect.serviceOption(KyozoConfig)
    if (Option.isNone(teams)) return null
    const team = yield* teams.value.findById(service.teamId).pipe(Effect.orElseSucceed(() => Option.none()))
    if (Option.isNone(team)) return null
    const domain = Option.isSome(config) ? config.value.domain : "localhost"
    return hostNameFor(service.name, team.value.name, domain)
  })

/**
 * The service's custom domains from their table, when the repository is there (undefined: the
 * route keeps the ones it has, e.g. the database did not answer).
 */
const domainsOf = (serviceId: string): Effect.Effect<ReadonlyArray<string> | undefined> =>
  Effect.flatMap(Effect.serviceOption(ServiceDomainRepo), (repo) =>
    Option.isNone(repo)
      ? Effect.succeed(undefined)
      : repo.value.namesOf(serviceId).pipe(Effect.orElseSucceed(() => undefined))
  )

/**
 * How long an idle service's sync lane (with its last snapshot time) is kept: far longer than a
 * full pass takes to reach every service, and every pass touches each live service's lane; a
 * deleted service's lane goes after it.
 */
const SYNC_LANE_IDLE = Duration.minutes(1)

/** Per service: one sync at a time, and the snapshot time of the last one that ran. */
const syncLanes = KeyedLane.unsafeMake<string, { lastSnapshot: number }>({
  initial: () => ({ lastSnapshot: Number.NEGATIVE_INFINITY }),
  idleTimeToLive: SYNC_LANE_IDLE
})

/**
 * Runs a sync of the service in its lane, unless a sync that read the state later already ran: a
 * full pass reads every row and container at its start and reaches a service later, and an event's
 * sync may wait behind the deploy's own; pushing such an older picture after a newer one routed a
 * just-switched service to no upstream (503) until the next pass.
 */
const inSyncLane = <E, R>(
  serviceId: string,
  snapshotAt: number,
  effect: Effect.Effect<SyncResult, E, R>
): Effect.Effect<SyncResult, E, R | EdgeRouter> =>
  syncLanes.run(serviceId, (lane): Effect.Effect<SyncResult, E, R | EdgeRouter> => {
    if (lane.lastSnapshot > snapshotAt) {
      return Effect.flatMap(EdgeRouter, (edge) =>
        Effect.map(edge.route(serviceId), (route): SyncResult => ({
          serviceId,
          hostPort: route?.hostPort ?? null,
          upstreams: route?.upstreams ?? [],
          changed: false
        }))
      )
    }
    return Effect.tap(effect, () =>
      Effect.sync(() => {
        lane.lastSnapshot = Math.max(lane.lastSnapshot, snapshotAt)
      })
    )
  })

/**
 * Converges one service's route: removed → route gone; otherwise the stable port exists (and is
 * written back to the row when new), it answers on the service's host name and custom domains,
 * and the upstreams are what the engine shows. `domains`: the service's, when the caller read them.
 */
export const syncService = (
  service: ServiceInstance,
  known?: ReadonlyArray<ContainerSummary>,
  domains?: ReadonlyArray<string>,
  snapshotAt: number = performance.now()
) =>
  inSyncLane(
    service.id,
    snapshotAt,
    Effect.gen(function* () {
      const edge = yield* EdgeRouter
      const services = yield* ServiceRepo
      const runtime = yield* ContainerRuntime
      const info = yield* Effect.serviceOption(RuntimeInfo)
      if (service.desiredState === "removed" || service.deletedAt !== null) {
        yield* edge.remove(service.id)
        return { serviceId: service.id, hostPort: null, upstreams: [], changed: true } satisfies SyncResult
      }
      // Nothing to route to, and no route yet: a worker or a service without a port.
      if (service.internalPort === null && service.hostPort === null) {
        return { serviceId: service.id, hostPort: null, upstreams: [], changed: false } satisfies SyncResult
      }
      const simulated = Option.isSome(info) && info.value.mode === "mock"
      // A TCP service: Docker publishes its stable port itself (Transport.ts); the edge must not
      // hold that port, so a route left from before (an HTTP past, an adopted Caddy) goes.
      if (publishedByEngine(service) && !simulated) {
        const had = (yield* edge.route(service.id)) !== undefined
        if (had) yield* edge.remove(service.id)
        return {
          serviceId: service.id,
          hostPort: service.hostPort,
          upstreams: [],
          changed: had
        } satisfies SyncResult
      }
      const names = domains ?? (yield* domainsOf(service.id))
      const ensured = yield* edge.ensure(service.id, {
        hostPort: service.hostPort,
        hostName: yield* hostNameOf(service),
        simulated,
        label: service.name,
        ...(names === undefined ? {} : { domains: names })
      })
      if (ensured.hostPort !== service.hostPort) {
        yield* services.updateObserved(service.id, { hostPort: ensured.hostPort })
      }
      if (rolling.has(service.id)) {
        const held = (yield* edge.route(service.id))?.upstreams ?? []
        return {
          serviceId: service.id,
          hostPort: ensured.hostPort,
          upstreams: held,
          changed: false
        } satisfies SyncResult
      }
      const containers =
        service.desiredState !== "running"
          ? []
          : (known ??
            (yield* runtime.listContainers({ all: true, labels: { [Labels.Service]: service.id } })))
      const candidates = desiredUpstreams(service, containers)
      const probed = simulated ? candidates : yield* answering(service, candidates)
      // A replica that fails its probe while the engine still lists it running has often just died
      // (the engine's state follows the process by a moment): look again before deciding whether it
      // is a dead replica (kept for the grace) or one that answers badly (dropped now).
      const listing =
        probed.length < candidates.length && !simulated
          ? yield* Effect.sleep(RELIST_DELAY).pipe(
              Effect.zipRight(
                runtime.listContainers({ all: true, labels: { [Labels.Service]: service.id } })
              ),
              Effect.orElseSucceed(() => containers)
            )
          : containers
      const upstreams = keepDeadReplicas(
        service,
        listing,
        (yield* edge.route(service.id))?.upstreams ?? [],
        probed
      )
      const { changed } = yield* edge.setUpstreams(service.id, upstreams)
      if (changed) {
        yield* Effect.logInfo(
          `edge: ${service.name} → ${upstreams.length === 0 ? "no upstream" : upstreams.map((u) => u.port).join(", ")}`
        )
      }
      return { serviceId: service.id, hostPort: ensured.hostPort, upstreams, changed } satisfies SyncResult
    })
  ).pipe(Effect.withSpan("EdgeRoutes.syncService", { attributes: { serviceId: service.id } }))

/** Syncs the service with this id (re-read from its row). */
export const syncServiceId = (serviceId: string) =>
  Effect.gen(function* () {
    const services = yield* ServiceRepo
    const snapshotAt = performance.now()
    const row = yield* services.findByIdAnyTeam(serviceId as ServiceInstance["id"])
    if (Option.isNone(row)) return null
    return yield* syncService(row.value, undefined, undefined, snapshotAt)
  })

/** Every service: one failure is logged and does not stop the others. */
export const syncAll = Effect.gen(function* () {
  const services = yield* ServiceRepo
  const runtime = yield* ContainerRuntime
  const edge = yield* EdgeRouter
  const snapshotAt = performance.now()
  const all = yield* services.listDesired()
  // One engine call for every service, not one per service.
  const managed = yield* runtime.listContainers({ all: true, labels: { [Labels.Managed]: "true" } })
  // Every service's custom domains in one query, not one per service.
  const domainRepo = yield* Effect.serviceOption(ServiceDomainRepo)
  const domains = Option.isNone(domainRepo)
    ? undefined
    : yield* domainRepo.value.byService().pipe(Effect.orElseSucceed(() => undefined))
  const byService = new Map<string, Array<ContainerSummary>>()
  for (const c of managed) {
    const id = c.labels[Labels.Service]
    if (id === undefined) continue
    const list = byService.get(id) ?? []
    list.push(c)
    byService.set(id, list)
  }
  let changed = 0
  let failed = 0
  // Routes of services that no longer exist (deleted while Kyozo was down, an adopted Caddy) go.
  const wanted = new Set(all.map((s) => s.id as string))
  for (const route of yield* edge.routes) {
    if (wanted.has(route.serviceId)) continue
    const removed = yield* Effect.either(edge.remove(route.serviceId))
    if (removed._tag === "Left") failed++
    else changed++
  }
  for (const service of all) {
    const result = yield* Effect.either(
      syncService(
        service,
        byService.get(service.id) ?? [],
        domains && (domains.get(service.id) ?? []),
        snapshotAt
      )
    )
    if (result._tag === "Left") {
      failed++
      yield* Effect.logWarning(`edge sync of ${service.name} failed: ${messageOf(result.left)}`)
    } else if (result.right.changed) changed++
  }
  return { examined: all.length, changed, failed }
}).pipe(Effect.withSpan("EdgeRoutes.syncAll"))

const messageOf = (e: unknown) =>
  typeof e === "object" && e !== null && "message" in e
    ? String((e as { message: unknown }).message)
    : String(e)

export interface RouteLoopOptions {
  /** Full sync period besides events (default 5 s): catches anything an event missed. */
  readonly interval?: Duration.DurationInput
  /** Engine ping period while the breaker is not closed (default 1 s). */
  readonly enginePing?: Duration.DurationInput
}

/** Runs the route loops in the background of the layer's scope. */
export const layer = (options: RouteLoopOptions = {}) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const runtime = yield* ContainerRuntime
      const breaker = yield* Effect.serviceOption(RuntimeBreaker)
      const passes = yield* Effect.serviceOption(MaintenancePasses)
      const interval = options.interval ?? Duration.seconds(5)
      const ping = options.enginePing ?? Duration.seconds(1)
      const logged = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
        effect.pipe(Effect.catchAllCause((cause) => Effect.logWarning(`${what} failed`, cause)))

      // Periodic full sync (level-driven safety net).
      yield* logged("edge sync", syncAll).pipe(Effect.repeat(Schedule.spaced(interval)), Effect.forkScoped)

      // Docker events of managed containers: sync their service at once.
      // Not "kill": it comes while the engine still lists the container running (its probe fails, so
      // it would be dropped without the dead-replica grace, one needless Caddy reload); "die" follows.
      const relevant = new Set(["start", "die", "stop", "restart", "destroy", "unpause", "pause"])
      let since = Date.now()
      const eventLoop = () =>
        runtime.events({ labels: { [Labels.Managed]: "true" }, since }).pipe(
          Stream.filter(
            (e) => e.type === "container" && (relevant.has(e.action) || e.action.startsWith("health_status"))
          ),
          Stream.tap((e) => Effect.sync(() => (since = Math.max(since, e.time)))),
          Stream.runForEach((e) => {
            const serviceId = e.labels[Labels.Service]
            return serviceId === undefined
              ? Effect.void
              : logged("edge sync on event", syncServiceId(serviceId))
          })
        )
      yield* Effect.suspend(eventLoop).pipe(
        Effect.catchAllCause((cause) => Effect.logDebug("engine events stream ended", cause)),
        Effect.repeat(Schedule.spaced(Duration.seconds(1))),
        Effect.forkScoped
      )

      if (Option.isSome(breaker)) {
        // While the engine is out, ping it so the half-open trial happens as soon as allowed.
        yield* Effect.gen(function* () {
          const status = yield* breaker.value.status
          if (status.state !== "closed") yield* Effect.ignore(runtime.ping)
        }).pipe(Effect.repeat(Schedule.spaced(ping)), Effect.forkScoped)

        // The engine is back: restart what died and re-route now, not at the next tick.
        const onClosed = Effect.gen(function* () {
          yield* Effect.logInfo("engine back (breaker closed): recovery pass and edge sync now")
          if (Option.isSome(passes)) yield* logged("recovery pass", passes.value.health)
          yield* logged("edge sync", syncAll)
        })
        yield* breaker.value.changes.pipe(
          Stream.filter((change) => change.to === "closed"),
          Stream.runForEach(() => onClosed),
          Effect.forkScoped
        )
      }
    })
  )

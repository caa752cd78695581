/**
 * Replicas, level-driven: the current deployment of a service should have `replicas` containers.
 * Replica 0 is the deployment's own container (the row's containerId, restarted by the recovery
 * worker with its backoff); replicas 1…n-1 are `<container name>-r<i>`. Each pass starts a stopped
 * replica, re-creates a missing one from the current image (its own pinned 127.0.0.1 port), and
 * removes replicas beyond the count (scale in). Then the edge follows (EdgeRoutes.syncService).
 * A deploy in flight owns its service: nothing is touched while the row says `deploying`.
 * Passes of one service run one at a time (`convergeService`, a lane per service): the health pass
 * and a scale never both create or remove replicas of it, and each reads the row inside its turn.
 */
import type { ServiceId } from "@kyozo/api/domain/Ids"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import { freePort } from "@kyozo/core/edge/FreePort"
import { ContainerRuntime, type ContainerSummary } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { containerName, teamNetwork } from "@kyozo/core/engine/ServiceNaming"
import { ensureVolumes } from "@kyozo/core/engine/ServiceVolumes"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import * as KeyedLane from "@kyozo/core/supervision/KeyedLane"
import { Effect, Option } from "effect"

import { AliasesLabel, containerSpec } from "./DeployWorkflow.js"
import { routeHeld } from "./EdgeRoutes.js"

/** The name of replica `index` of a deployment (replica 0 keeps the deployment's container name). */
export const replicaName = (serviceName: string, deploymentId: string, index: number): string =>
  index === 0
    ? containerName(serviceName, deploymentId)
    : `${containerName(serviceName, deploymentId)}-r${index}`

/** Which replica a container is, from its name; null for a container that is not one. */
export const replicaIndex = (serviceName: string, deploymentId: string, name: string): number | null => {
  const base = containerName(serviceName, deploymentId)
  if (name === base) return 0
  const m = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-r(\\d+)$`).exec(name)
  return m ? Number(m[1]) : null
}

export interface ConvergeResult {
  readonly started: number
  readonly created: number
  readonly removed: number
}

const none: ConvergeResult = { started: 0, created: 0, removed: 0 }

/** Creates and starts replica `index` of the service's current deployment. */
export const createReplica = (service: ServiceInstance, deploymentId: string, image: string, index: number) =>
  Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const name = replicaName(service.name, deploymentId, index)
    const pinned = service.internalPort === null ? null : yield* freePort()
    const volumes = yield* ensureVolumes(runtime, service, image)
    const spec = containerSpec(
      service,
      image,
      name,
      teamNetwork(service.teamId),
      [],
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
    const info = yield* runtime.inspectContainer(ref.id)
    if (!info.running) yield* runtime.startContainer(ref.id)
    return ref
  })

/** Whether the service's current deployment is one replicas are converged for. */
const convergeable = (service: ServiceInstance): boolean =>
  service.desiredState === "running" &&
  service.status !== "deploying" &&
  service.currentDeploymentId !== null &&
  service.image !== null

/** The replicas of the current deployment by index, among `owned` (containers of the deployment). */
const indexed = (service: ServiceInstance, deploymentId: string, owned: ReadonlyArray<ContainerSummary>) => {
  const byIndex = new Map<number, ContainerSummary>()
  for (const c of owned) {
    const index = c.id === service.containerId ? 0 : replicaIndex(service.name, deploymentId, c.name)
    if (index !== null) byIndex.set(index, c)
  }
  return byIndex
}

/** True when the containers `owned` of the current deployment already match the replica count. */
const converged = (service: ServiceInstance, owned: ReadonlyArray<ContainerSummary>): boolean => {
  const deploymentId = service.currentDeploymentId!
  const byIndex = indexed(service, deploymentId, owned)
  for (let index = 1; index < service.replicas; index++) {
    const c = byIndex.get(index)
    if (c === undefined) return false
    const down = c.state !== "running" && c.state !== "restarting" && c.state !== "paused"
    if (down && service.restartPolicy !== "never") return false
  }
  for (const index of byIndex.keys()) if (index >= service.replicas && index !== 0) return false
  return true
}

/** One lane per service id while someone uses it: one pass at a time per service, others in parallel. */
const lanes = KeyedLane.unsafeMake<string>({ initial: () => undefined })

/** Runs `effect` in the service's lane. */
const inLane = <A, E, R>(serviceId: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  lanes.run(serviceId, () => effect)

/**
 * Runs `effect` with no replica pass of the service beside it: a delete removes the containers and
 * marks the row deleted before any pass that waited reads the row (else it would make a new replica
 * of a deleted service, which also keeps its volumes in use).
 */
export const withoutConverge = <A, E, R>(serviceId: ServiceId, effect: Effect.Effect<A, E, R>) =>
  inLane(serviceId, effect)

/**
 * Converges the service's replicas in its lane, from its row as it is once the lane is ours (a
 * scale that came meanwhile counts; a deleted service is left alone).
 */
export const convergeService = (
  serviceId: ServiceId
): Effect.Effect<ConvergeResult, unknown, ContainerRuntime | ServiceRepo> =>
  inLane(
    serviceId,
    Effect.gen(function* () {
      const services = yield* ServiceRepo
      const fresh = yield* services.findByIdAnyTeam(serviceId)
      if (Option.isNone(fresh) || fresh.value.deletedAt !== null) return none
      // A rolling update makes and retires replicas itself until the row names the new deployment.
      if (yield* routeHeld(serviceId)) return none
      return yield* converge(fresh.value)
    })
  )

/** One pass over the service as given (callers outside this module go through `convergeService`). */
const converge = (service: ServiceInstance): Effect.Effect<ConvergeResult, unknown, ContainerRuntime> =>
  Effect.gen(function* () {
    const deploymentId = service.currentDeploymentId
    if (!convergeable(service) || deploymentId === null || service.image === null) return none
    const runtime = yield* ContainerRuntime
    const owned = yield* runtime.listContainers({
      all: true,
      labels: { [Labels.Service]: service.id, [Labels.Deployment]: deploymentId }
    })
    const byIndex = indexed(service, deploymentId, owned)
    let started = 0
    let created = 0
    let removed = 0
    for (let index = 1; index < service.replicas; index++) {
      const c = byIndex.get(index)
      if (c === undefined) {
        yield* createReplica(service, deploymentId, service.image, index)
        created++
      } else if (c.state !== "running" && c.state !== "restarting" && c.state !== "paused") {
        if (service.restartPolicy === "never") continue
        // Its pinned port taken meanwhile: made again on a free one (the edge follows).
        yield* runtime
          .startContainer(c.id)
          .pipe(
            Effect.catchIf(portTaken, (e) =>
              Effect.asVoid(
                Effect.provideService(
                  recreateOnFreePort(service, c.id, takenPort(e)),
                  ContainerRuntime,
                  runtime
                )
              )
            )
          )
        started++
      }
    }
    for (const [index, c] of byIndex) {
      if (index < service.replicas || index === 0) continue
      yield* runtime.removeContainer(c.id, { force: true })
      removed++
    }
    if (started + created + removed > 0) {
      yield* Effect.logInfo(
        `replicas of ${service.name}: ${created} created, ${started} started, ${removed} removed (want ${service.replicas})`
      )
    }
    return { started, created, removed }
  })

const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error
    ? String((error as { message: unknown }).message)
    : String(error)

/** Docker's answer when a container's published host port is held by another program. */
export const portTaken = (error: unknown): boolean =>
  /address already in use|port is already allocated/i.test(messageOf(error))

/** The host port Docker could not bind, from its answer ("listen tcp4 127.0.0.1:P: bind: …"). */
export const takenPort = (error: unknown): number | null => {
  const m = /(?:listen tcp4? |Bind for )[^\s]*:(\d+)/i.exec(messageOf(error))
  return m ? Number(m[1]) : null
}

/**
 * A stopped container whose pinned 127.0.0.1 port another program took meanwhile: it is made again,
 * same name, image, labels and aliases, on a free port, and started; the row follows when it is the
 * service's primary container, and the edge follows at the next route sync (the URL is unchanged).
 * Not for a TCP service: there the taken port is the URL itself (the caller reports it instead).
 */
export const recreateOnFreePort = (
  service: ServiceInstance,
  containerId: string,
  taken: number | null = null
) =>
  Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const old = yield* runtime.inspectContainer(containerId)
    const deploymentId = old.labels[Labels.Deployment] ?? service.currentDeploymentId ?? ""
    const aliases = (old.labels[AliasesLabel] ?? "").split(",").filter((a) => a !== "")
    // A stopped container shows no published ports: the engine's refusal named the one it wanted.
    const oldPort = old.ports.find((p) => p.containerPort === service.internalPort)?.hostPort ?? taken
    const port = yield* freePort()
    yield* runtime.removeContainer(containerId, { force: true })
    const volumes = yield* ensureVolumes(runtime, service, old.image)
    const spec = containerSpec(
      service,
      old.image,
      old.name,
      teamNetwork(service.teamId),
      aliases,
      deploymentId,
      service.internalPort === null ? null : port,
      volumes
    )
    const ref = yield* runtime.createContainer(spec)
    yield* runtime.startContainer(ref.id)
    const services = yield* Effect.serviceOption(ServiceRepo)
    if (service.containerId === containerId && Option.isSome(services)) {
      const updated = yield* services.value.updateObserved(service.id, {
        containerId: ref.id,
        containerName: old.name
      })
      if (Option.isNone(updated))
        yield* Effect.logWarning(`service ${service.id} vanished during a re-create`)
    }
    return { containerId: ref.id, oldPort, newPort: port }
  })

/**
 * The services of a pass's snapshot: one listing of the engine's kyozo containers for all of
 * them (not one engine call per service); a service whose replicas differ from its count is read
 * again and converged from its current row (the snapshot may be a pass old: a deploy may own it now).
 */
export const convergeEach = (snapshot: ReadonlyArray<ServiceInstance>) =>
  Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const services = yield* ServiceRepo
    const notes: Array<string> = []
    let failures = 0
    const candidates = snapshot.filter(convergeable)
    const byDeployment = new Map<string, Array<ContainerSummary>>()
    if (candidates.length > 0) {
      const listed = yield* Effect.either(
        runtime.listContainers({ all: true, labels: { [Labels.Managed]: "true" } })
      )
      if (listed._tag === "Left") {
        yield* Effect.logWarning("replicas not converged: listing containers failed", listed.left)
        return { notes, failures: 1 }
      }
      for (const c of listed.right) {
        const key = `${c.labels[Labels.Service]} ${c.labels[Labels.Deployment]}`
        const list = byDeployment.get(key)
        if (list === undefined) byDeployment.set(key, [c])
        else list.push(c)
      }
    }
    for (const listed of candidates) {
      if (converged(listed, byDeployment.get(`${listed.id} ${listed.currentDeploymentId}`) ?? [])) continue
      const result = yield* Effect.either(
        convergeService(listed.id).pipe(
          Effect.provideService(ContainerRuntime, runtime),
          Effect.provideService(ServiceRepo, services)
        )
      )
      if (result._tag === "Left") {
        failures++
        yield* Effect.logWarning(`replicas of ${listed.name} not converged`, result.left)
        continue
      }
      const r = result.right
      if (r.started + r.created + r.removed > 0)
        notes.push(`${listed.id} replicas: +${r.created} created, ${r.started} started, -${r.removed}`)
    }
    return { notes, failures }
  })

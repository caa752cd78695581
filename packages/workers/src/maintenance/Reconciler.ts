/**
 * Start-up reconcile of deploys (callable later too). The rows are the desired state, the engine
 * and the proxies the observed one; after a crash:
 *
 * - the edge's routes are made to match: every service gets its stable port back (an adopted
 *   Caddy still has it; the in-process proxy starts it again) and its running containers as upstreams;
 * - a deployment whose Deploy message was never stored (the process died between writing the row
 *   and sending to the ServiceEntity) will never be resumed by the engine: it is compensated.
 *   Deployments whose message is stored are left alone: the engine resumes them;
 * - containers labelled for a service that are neither its current one nor one of a deployment
 *   still in flight are removed, so exactly one container serves each service.
 */
import { EntityAddress } from "@effect/cluster/EntityAddress"
import { EntityId } from "@effect/cluster/EntityId"
import { EntityType } from "@effect/cluster/EntityType"
import * as MessageStorage from "@effect/cluster/MessageStorage"
import * as Sharding from "@effect/cluster/Sharding"
import type { Deployment } from "@kyozo/api/domain/Deployment"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { Duration, Effect, Layer, Option } from "effect"

import * as DurableEngine from "../deploy/DurableEngine.js"
import { syncService } from "../deploy/EdgeRoutes.js"
import { ServiceEntity } from "../deploy/ServiceEntity.js"

export interface ReconcileOptions {
  /**
   * A deployment without a stored Deploy message is compensated only once it is this old: a
   * deployer in this very process may be between writing the row and sending the message.
   */
  readonly dispatchGrace?: Duration.DurationInput
}

export interface ReconcileReport {
  /** Services whose proxy was (re)started and routed to their running container. */
  readonly routed: ReadonlyArray<string>
  /** Deployments compensated because the engine will never resume them. */
  readonly compensated: ReadonlyArray<string>
  /** Containers removed because nothing should be running them. */
  readonly removed: ReadonlyArray<string>
  /** Deployments left to the engine (their message is stored). */
  readonly resuming: ReadonlyArray<string>
}

export const reconcile = (options: ReconcileOptions = {}) =>
  Effect.gen(function* () {
    const services = yield* ServiceRepo
    const deployments = yield* DeploymentRepo
    const events = yield* DeploymentEventRepo
    const runtime = yield* ContainerRuntime
    const sharding = yield* Sharding.Sharding
    const storage = yield* MessageStorage.MessageStorage
    const grace = Duration.toMillis(Duration.decode(options.dispatchGrace ?? Duration.seconds(30)))

    const routed: Array<string> = []
    const compensated: Array<string> = []
    const removed: Array<string> = []
    const resuming: Array<string> = []

    const stored = (dep: Deployment) => {
      const entityId = EntityId.make(dep.serviceId)
      const address = new EntityAddress({
        shardId: sharding.getShardId(entityId, ServiceEntity.getShardGroup(entityId)),
        entityType: EntityType.make(ServiceEntity.type),
        entityId
      })
      return storage
        .requestIdForPrimaryKey({ address, tag: "Deploy", id: dep.id })
        .pipe(Effect.map(Option.isSome))
    }

    // 1. In-flight deployments: the engine's, or orphans to compensate.
    const inFlight = new Set<string>()
    const inFlightServices = new Set<string>()
    const hasInFlight = (serviceId: string) => Effect.sync(() => inFlightServices.has(serviceId))
    for (const dep of yield* deployments.listUnfinished()) {
      if (yield* stored(dep)) {
        inFlight.add(dep.id)
        inFlightServices.add(dep.serviceId)
        resuming.push(dep.id)
        continue
      }
      if (Date.now() - dep.createdAt.getTime() < grace) {
        inFlight.add(dep.id)
        inFlightServices.add(dep.serviceId)
        continue
      }
      const svc = Option.getOrNull(yield* services.findByIdAnyTeam(dep.serviceId))
      const owned = yield* runtime.listContainers({ all: true, labels: { [Labels.Deployment]: dep.id } })
      for (const c of owned) {
        if (c.id === svc?.containerId) continue
        yield* runtime.removeContainer(c.id, { force: true })
        removed.push(c.id)
      }
      yield* deployments.updateStatus(dep.id, {
        status: "compensated",
        error: "interrupted before the deploy was handed to the engine"
      })
      if (svc !== null && svc.status === "deploying") {
        // Its previous container serves on, unprobed since: the health pass says `running`.
        yield* services.updateObserved(svc.id, { status: svc.containerId === null ? "failed" : "starting" })
      }
      yield* events.append({
        teamId: dep.teamId,
        serviceId: dep.serviceId,
        deploymentId: dep.id,
        type: "deploy.compensated",
        message: "Interrupted before the deploy was handed to the engine; nothing changed"
      })
      compensated.push(dep.id)
    }

    // 2. Services: proxies back, strays out.
    for (const svc of yield* services.listDesired()) {
      const owned = yield* runtime.listContainers({ all: true, labels: { [Labels.Service]: svc.id } })
      for (const c of owned) {
        const deployment = c.labels[Labels.Deployment]
        // The current deployment's replicas stay too (the replica pass trims any beyond the count).
        if (
          c.id === svc.containerId ||
          (deployment !== undefined && (inFlight.has(deployment) || deployment === svc.currentDeploymentId))
        )
          continue
        yield* runtime.removeContainer(c.id, { force: true })
        removed.push(c.id)
      }
      // A deploy in flight routes (or routes back) itself when it switches or compensates.
      if (yield* hasInFlight(svc.id)) continue
      // The edge (an adopted Caddy, or a fresh in-process proxy) gets the routes the rows and the
      // engine say, stable ports included.
      const synced = yield* Effect.either(syncService(svc))
      if (synced._tag === "Left") {
        yield* Effect.logWarning(`reconcile: edge route of ${svc.name} failed: ${synced.left.message}`)
        continue
      }
      if (synced.right.upstreams.length > 0) routed.push(svc.id)
    }

    const report: ReconcileReport = { routed, compensated, removed, resuming }
    yield* Effect.logInfo(
      `reconcile: ${routed.length} routed, ${compensated.length} compensated, ${removed.length} removed, ${resuming.length} resuming`
    )
    return report
  }).pipe(Effect.withSpan("Reconciler.reconcile"))

/** Runs one reconcile once the runner holds its shards, in the background of the layer's scope. */
export const layer = (options: ReconcileOptions = {}) =>
  Layer.scopedDiscard(
    DurableEngine.awaitReady().pipe(
      Effect.zipRight(reconcile(options)),
      Effect.catchAllCause((cause) => Effect.logError("start-up reconcile failed", cause)),
      Effect.forkScoped
    )
  )

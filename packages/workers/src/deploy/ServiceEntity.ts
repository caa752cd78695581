/**
 * One actor per service (`@effect/cluster` entity keyed by the service id): a service's operations
 * run one at a time, so a stop never races a deploy of the same service. Messages are persisted,
 * so an operation accepted before a crash runs after the restart; a Deploy resumes its workflow
 * (same idempotency key) instead of starting over.
 */
import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import * as Entity from "@effect/cluster/Entity"
import * as Rpc from "@effect/rpc/Rpc"
import { DeployFailed } from "@kyozo/api/domain/Deploy"
import type { ServiceId } from "@kyozo/api/domain/Ids"
import { ContainerNotFound, RuntimeError } from "@kyozo/api/domain/RuntimeErrors"
import { EdgeRouter } from "@kyozo/core/edge/EdgeRouter"
import { ContainerRuntime, Defaults } from "@kyozo/core/engine/ContainerRuntime"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { Effect, Option, Schema } from "effect"

import { DeployOutcome, DeployPayload, DeployWorkflow } from "./DeployWorkflow.js"
import { syncServiceId } from "./EdgeRoutes.js"

const ServiceOp = { serviceId: Schema.String }

export const ServiceEntity = Entity.make("Service", [
  Rpc.make("Deploy", {
    payload: DeployPayload.fields,
    success: DeployOutcome,
    error: DeployFailed,
    // A resent Deploy of the same deployment answers with the stored reply instead of running twice.
    primaryKey: (p) => p.deploymentId
  }),
  Rpc.make("Stop", { payload: ServiceOp, error: RuntimeError }),
  Rpc.make("Start", { payload: ServiceOp, error: RuntimeError }),
  Rpc.make("Restart", { payload: ServiceOp, error: RuntimeError }),
  /** Removes the container and the proxy; the row and the images are the caller's business. */
  Rpc.make("Remove", { payload: ServiceOp, error: RuntimeError })
]).annotateRpcs(ClusterSchema.Persisted, true)

export const layer = ServiceEntity.toLayer(
  Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const services = yield* ServiceRepo
    const edge = yield* EdgeRouter

    const row = (serviceId: string) =>
      services.findByIdAnyTeam(serviceId as ServiceId).pipe(Effect.map(Option.getOrNull), Effect.orDie)

    const gone = (id: string) => Effect.fail(new ContainerNotFound({ container: id }))

    // After a start or a stop the edge follows what the engine shows (pinned ports usually stay).
    const reroute = (serviceId: string) =>
      syncServiceId(serviceId).pipe(
        Effect.asVoid,
        Effect.catchAllCause((cause) => Effect.logWarning(`edge sync of ${serviceId} failed`, cause))
      )

    return ServiceEntity.of({
      Deploy: (envelope) => DeployWorkflow.execute(envelope.payload),

      Stop: ({ payload }) =>
        Effect.gen(function* () {
          const svc = yield* row(payload.serviceId)
          if (svc === null) return
          if (svc.containerId !== null) {
            yield* runtime
              .stopContainer(svc.containerId, { timeoutSeconds: Defaults.stopTimeoutSeconds })
              .pipe(Effect.catchTag("ContainerNotFound", () => Effect.void))
          }
          yield* services.updateObserved(svc.id, { status: "stopped" }).pipe(Effect.orDie)
          yield* reroute(payload.serviceId)
        }),

      Start: ({ payload }) =>
        Effect.gen(function* () {
          const svc = yield* row(payload.serviceId)
          if (svc === null) return
          if (svc.containerId === null) return yield* gone(`service ${payload.serviceId} has no container`)
          const info = yield* runtime.inspectContainer(svc.containerId)
          // A container started here has not answered anything yet: `starting` until the health
          // pass probes it through its port and its URL (only that makes it `running`). A running
          // one the row already calls running keeps its status.
          if (!info.running || svc.status !== "running") {
            yield* services.updateObserved(svc.id, { status: "starting" }).pipe(Effect.orDie)
          }
          if (!info.running) yield* runtime.startContainer(svc.containerId)
          yield* reroute(payload.serviceId)
        }),

      Restart: ({ payload }) =>
        Effect.gen(function* () {
          const svc = yield* row(payload.serviceId)
          if (svc === null) return
          if (svc.containerId === null) return yield* gone(`service ${payload.serviceId} has no container`)
          // `starting` before the restart: while it stops and starts its URL fails, and only a
          // successful probe of the health pass makes it `running` again.
          yield* services.updateObserved(svc.id, { status: "starting" }).pipe(Effect.orDie)
          yield* runtime.restartContainer(svc.containerId, { timeoutSeconds: Defaults.stopTimeoutSeconds })
          yield* reroute(payload.serviceId)
          yield* services.recordRestart(svc.id).pipe(Effect.orDie)
        }),

      Remove: ({ payload }) =>
        Effect.gen(function* () {
          yield* edge
            .remove(payload.serviceId)
            .pipe(
              Effect.catchAll((e) =>
                Effect.logWarning(`edge route of ${payload.serviceId} not removed: ${e.message}`)
              )
            )
          // Every container labelled for the service, not just the current one: a crashed deploy
          // may have left one behind.
          const owned = yield* runtime.listContainers({
            all: true,
            labels: { "kyozo.service": payload.serviceId }
          })
          for (const c of owned) yield* runtime.removeContainer(c.id, { force: true })
          yield* services
            .updateObserved(payload.serviceId as ServiceId, {
              status: "removed",
              containerId: null,
              containerName: null
            })
            .pipe(Effect.orDie)
        })
    })
  })
)

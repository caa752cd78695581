/**
 * The progress bus: build logs and steps for whoever watches a deployment in this process.
 */
import type { DeployProgress } from "@kyozo/api/domain/Deploy"
import { Effect, PubSub } from "effect"

export interface DeployNotice {
  readonly deploymentId: string
  readonly progress: DeployProgress
}

/**
 * In-process only: the durable record is `container_deployment_events`; this carries build log
 * lines (too many for rows) and step notices to a `deploy` stream in the same process.
 */
export class DeployBus extends Effect.Service<DeployBus>()("@kyozo/workers/DeployBus", {
  scoped: Effect.gen(function* () {
    const hub = yield* Effect.acquireRelease(PubSub.sliding<DeployNotice>(4096), PubSub.shutdown)
    return {
      hub,
      publish: (notice: DeployNotice) => PubSub.publish(hub, notice).pipe(Effect.asVoid)
    } as const
  })
}) {}

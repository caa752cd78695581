/**
 * The runtime's state as users are shown it (REST /v1/runtime, RPC RuntimeStatus, the dashboard's
 * Admin page, GraphQL): which engine runs services and why, the circuit breaker in front of it,
 * the edge router serving their URLs, and the maintenance schedules. Any authenticated member may
 * read it. What only the operator needs stays out: the edge's admin endpoint and process id, and
 * the passes' internal reports.
 */
import type { BreakerStatus } from "@kyozo/api/domain/Breaker"
import { ScheduleView as ScheduleViewSchema } from "@kyozo/api/KyozoRpc"
import { CurrentPrincipal } from "@kyozo/api/KyozoRpc"
import { EdgeRouter } from "@kyozo/core/edge/EdgeRouter"
import type { RuntimeMode } from "@kyozo/core/engine/ContainerRuntime"
import { ContainerManager } from "@kyozo/core/supervision/ContainerManager"
import { Effect, Option } from "effect"

export interface EdgeView {
  readonly kind: "caddy" | "inprocess"
  readonly reason: string
  /** False for the in-process fallback: the URLs stop answering when Kyozo stops. */
  readonly survivesRestart: boolean
  readonly sharedPort: number | null
  readonly tlsPort: number | null
  readonly domain: string
  readonly routes: number
  readonly lastError: string | null
}

/** One maintenance pass as the contract shows it (epoch milliseconds, null before the first pass). */
export type ScheduleView = typeof ScheduleViewSchema.Type

export interface RuntimeStatusView {
  readonly mode: RuntimeMode
  readonly reason: string
  readonly breaker: BreakerStatus
  /** None when this process runs without an edge router (the CLI's local mode). */
  readonly edge: EdgeView | null
  readonly schedules: ReadonlyArray<ScheduleView>
}

export class RuntimeStatus extends Effect.Service<RuntimeStatus>()(
  "@kyozo/server/application/RuntimeStatus",
  {
    effect: Effect.gen(function* () {
      const manager = yield* ContainerManager
      const edgeRouter = yield* Effect.serviceOption(EdgeRouter)

      const status: Effect.Effect<RuntimeStatusView, never, CurrentPrincipal> = Effect.gen(function* () {
        yield* CurrentPrincipal
        const breaker = yield* manager.circuitBreakerStatus
        const schedules = yield* manager.schedules
        const edge = Option.isSome(edgeRouter) ? yield* edgeRouter.value.status : null
        return {
          mode: manager.runtimeMode,
          reason: manager.runtimeReason,
          breaker,
          edge:
            edge === null
              ? null
              : {
                  kind: edge.kind,
                  reason: edge.reason,
                  survivesRestart: edge.survivesRestart,
                  sharedPort: edge.sharedPort,
                  tlsPort: edge.tlsPort ?? null,
                  domain: edge.domain,
                  routes: edge.routes,
                  lastError: edge.lastError
                },
          schedules: schedules.map((s) => ({
            pass: s.pass,
            intervalMs: s.intervalMs,
            runs: s.runs,
            failures: s.failures,
            lastStartedAt: s.lastStartedAt,
            lastFinishedAt: s.lastFinishedAt,
            lastDurationMs: s.lastDurationMs,
            lastError: s.lastError
          }))
        }
      })

      return { status } as const
    })
  }
) {}

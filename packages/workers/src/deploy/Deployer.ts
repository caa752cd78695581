/**
 * The Deployer: what the API, the RPC handlers and the CLI call to turn a folder into running
 * services and to operate them afterwards. Everything is team-scoped: an id from another team is
 * answered exactly like an id that does not exist (ServiceNotFound).
 *
 * Implementation: `DeployerLive.ts` (durable DeployWorkflow + one ServiceEntity per service).
 */
import type {
  DeployError,
  DeploymentSummary,
  DeployProgress,
  DeployRequest,
  RemovedVolumes,
  ServiceView
} from "@kyozo/api/domain/Deploy"
import { DeploymentEvent } from "@kyozo/api/domain/DeploymentEvent"
import type { DeploymentId, TeamId } from "@kyozo/api/domain/Ids"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import type { LogLine } from "@kyozo/core/engine/ContainerRuntime"
import { Context, type Effect, type Option, type Stream } from "effect"

/** Re-exported: the deploy contract lives in domain/Deploy. */
export {
  DeployError,
  DeployFailed,
  DeploymentSummary,
  DeployProgress,
  DeployRequest,
  DeploySource,
  InvalidSource,
  NoRollbackTarget,
  NothingToDeploy,
  QuotaExceeded,
  RemovedVolumes,
  RollbackRequest,
  ServiceNotFound,
  ServiceView
} from "@kyozo/api/domain/Deploy"

export interface DeployerShape {
  /** Detects, builds (or reuses) and deploys every service of the folder; ends with one Deployed per service. */
  readonly deploy: (teamId: TeamId, request: DeployRequest) => Stream.Stream<DeployProgress, DeployError>
  /** `service` is an id or a name within the team. */
  readonly stop: (teamId: TeamId, service: string) => Effect.Effect<ServiceView, DeployError>
  readonly start: (teamId: TeamId, service: string) => Effect.Effect<ServiceView, DeployError>
  readonly restart: (teamId: TeamId, service: string) => Effect.Effect<ServiceView, DeployError>
  /**
   * Removes the service and its containers. Its data volumes are kept unless `volumes` is true
   * (then those no container uses any more are removed); the answer says which went and which stay.
   */
  readonly remove: (
    teamId: TeamId,
    service: string,
    options?: { readonly volumes?: boolean }
  ) => Effect.Effect<RemovedVolumes, DeployError>
  /** Sets the replica count (quotas count replicas) and converges now: new replicas start, extra go. */
  readonly scale: (
    teamId: TeamId,
    service: string,
    replicas: number
  ) => Effect.Effect<ServiceView, DeployError>
  /**
   * Rolls the service's settings (env, limits, health check, as written to its row) out: redeploys
   * its current image behind the health gate, in the background. The deployment it started, or
   * none when nothing runs to replace (never deployed, or stopped: the next start uses the row).
   */
  readonly applySettings: (
    teamId: TeamId,
    service: string,
    /** The settings that worked before this change: written back when the rollout fails. */
    previous?: ServiceInstance
  ) => Effect.Effect<Option.Option<DeploymentId>, DeployError>
  readonly rollback: (
    teamId: TeamId,
    service: string,
    to?: string
  ) => Effect.Effect<DeploymentSummary, DeployError>
  readonly list: (teamId: TeamId) => Effect.Effect<ReadonlyArray<ServiceView>, DeployError>
  readonly get: (teamId: TeamId, service: string) => Effect.Effect<ServiceView, DeployError>
  readonly logs: (
    teamId: TeamId,
    service: string,
    options?: { readonly follow?: boolean; readonly tail?: number }
  ) => Stream.Stream<LogLine, DeployError>
  /** Deployment events of the team after `afterId`, then live ones when `follow`. */
  readonly events: (
    teamId: TeamId,
    options?: { readonly afterId?: number; readonly follow?: boolean; readonly service?: string }
  ) => Stream.Stream<DeploymentEvent, DeployError>
}

export class Deployer extends Context.Tag("@kyozo/workers/Deployer")<Deployer, DeployerShape>() {}

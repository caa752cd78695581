/**
 * Services, the application rules every front door calls: changing a service's settings needs
 * `manage` on it (Policy), and any change of its limits goes through the team's quota check
 * (the same gate deploys use), under the team's lock so concurrent changes cannot overshoot.
 * Every member reads every service of the team; stop, start, restart and scale need `deploy` on
 * the service, removing it `manage`. Log streams end when the caller's key stops being valid.
 */
import type { AutoscalePolicy } from "@kyozo/api/domain/AutoscalePolicy"
import {
  type DeployError,
  type QuotaExceeded,
  ServiceNotFound,
  type ServiceView
} from "@kyozo/api/domain/Deploy"
import type { HealthCheckConfig } from "@kyozo/api/domain/HealthCheckConfig"
import { type DeploymentId, ServiceId, type TeamId } from "@kyozo/api/domain/Ids"
import type { RestartPolicy, ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import { CurrentPrincipal, type Forbidden } from "@kyozo/api/KyozoRpc"
import { EdgeRouter, type EdgeRouteStatus, type EdgeStatus } from "@kyozo/core/edge/EdgeRouter"
import { hostUrlFor, httpsUrlFor } from "@kyozo/core/edge/HostNames"
import type { LogLine } from "@kyozo/core/engine/ContainerRuntime"
import * as ChangeEpoch from "@kyozo/core/store/ChangeEpoch"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import type { Page } from "@kyozo/core/store/SqlRows"
import { Deployer, type RemovedVolumes } from "@kyozo/workers/deploy/Deployer"
import * as Quotas from "@kyozo/workers/deploy/Quotas"
import { Data, Effect, Option, Stream } from "effect"

import { KeySessions } from "../KeySessions.js"
import { type Capabilities, capabilitiesOf, Policy } from "../Policy.js"
import { repository } from "./Storage.js"

export interface ServicePatch {
  readonly cpuMillis?: number
  readonly memoryMb?: number
  /** Replaces the whole env. */
  readonly env?: Readonly<Record<string, string>>
  /** Merged into the env (after `env`), read under the team's lock so concurrent sets do not lose keys. */
  readonly envSet?: Readonly<Record<string, string>>
  /** Removed from the env (after `envSet`). */
  readonly envUnset?: ReadonlyArray<string>
  readonly healthConfig?: HealthCheckConfig
  readonly restartPolicy?: RestartPolicy
  /** Applied by the Deployer: quotas count replicas, and the change converges at once. */
  readonly replicas?: number
  /**
   * Autoscaling (null: off). A count outside the new [min, max] is brought inside at once, through
   * the same quota-gated scale; the autoscaler moves it from then on.
   */
  readonly autoscale?: AutoscalePolicy | null
}

/** The updated row, and the deployment rolling its new settings out (none when nothing had to). */
export interface ServiceUpdate {
  readonly service: ServiceInstance
  readonly rollout: Option.Option<DeploymentId>
}

/** What the edge serves a service on besides its `url`. */
export interface EdgeNames {
  readonly hostUrl: string | null
  readonly httpsUrl: string | null
  readonly domains: ReadonlyArray<string>
}

const noNames: EdgeNames = { hostUrl: null, httpsUrl: null, domains: [] }

/** `page[after]` named no service of the team's list. */
export class InvalidCursor extends Data.TaggedError("InvalidCursor")<{ readonly after: string }> {}

/** How many pages of service lists are kept (a page is dropped at once when any service changes). */
const MAX_CACHED_PAGES = 1_000

const sorted = (env: Readonly<Record<string, string>>) =>
  Object.fromEntries(Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))

export class Services extends Effect.Service<Services>()("@kyozo/server/application/Services", {
  scoped: Effect.gen(function* () {
    const services = yield* repository(ServiceRepo)
    const policy = yield* Policy
    const quotas = yield* Quotas.makeGate
    const deployer = yield* Deployer
    const sessions = yield* KeySessions
    const edgeRouter = yield* Effect.serviceOption(EdgeRouter)
    yield* ChangeEpoch.follow(ChangeEpoch.services)
    const pages = new Map<
      string,
      { readonly epoch: number; readonly page: Page<ServiceInstance, ServiceId> }
    >()
    const pageKey = (
      teamId: TeamId,
      options: { readonly limit: number; readonly after?: string | undefined }
    ) => `${teamId}\u0000${options.limit}\u0000${options.after ?? ""}`
    const cachedPage = (key: string, epoch: number) => {
      const cached = pages.get(key)
      return cached !== undefined && cached.epoch === epoch ? cached.page : undefined
    }

    /**
     * A page of the team's services, oldest first. Pages are served from memory while no service row
     * has changed (`ChangeEpoch.services`: this process's writes at once, other processes' through
     * NOTIFY), so a busy list costs no query; a cursor must be a service of the team.
     */
    const list = (
      teamId: TeamId,
      options: { readonly limit: number; readonly after?: string | undefined }
    ): Effect.Effect<Page<ServiceInstance, ServiceId>, InvalidCursor> =>
      Effect.gen(function* () {
        const key = pageKey(teamId, options)
        // Read before the queries: a write landing while they run leaves the entry stale.
        const epoch = ChangeEpoch.services.current()
        const cached = cachedPage(key, epoch)
        if (cached !== undefined) return cached
        if (options.after !== undefined) {
          // Another team's id is as unknown as a made-up one.
          const cursor = yield* services.findById(teamId, ServiceId.make(options.after))
          if (Option.isNone(cursor)) return yield* new InvalidCursor({ after: options.after })
        }
        const page = yield* services.list(teamId, {
          limit: options.limit,
          ...(options.after === undefined ? {} : { after: ServiceId.make(options.after) })
        })
        if (pages.size >= MAX_CACHED_PAGES) pages.clear()
        pages.set(key, { epoch, page })
        return page
      })

    /**
     * The page `listForCaller` would answer when it is held in memory, without a query; none when
     * the query must run. Never suspends, so a hot route can run it synchronously.
     */
    const cachedForCaller = (options: {
      readonly limit: number
      readonly after?: string | undefined
    }): Effect.Effect<Option.Option<Page<ServiceInstance, ServiceId>>, never, CurrentPrincipal> =>
      Effect.map(CurrentPrincipal, (p) =>
        Option.fromNullable(cachedPage(pageKey(p.teamId, options), ChangeEpoch.services.current()))
      )

    /** A page of the caller's team's services (the same cached pages as `list`). */
    const listForCaller = (options: {
      readonly limit: number
      readonly after?: string | undefined
    }): Effect.Effect<Page<ServiceInstance, ServiceId>, InvalidCursor, CurrentPrincipal> =>
      Effect.flatMap(CurrentPrincipal, (p) => list(p.teamId, options))

    /**
     * Changes settings of a service of the caller's team; raising limits must fit the team's quotas.
     * A change of env, limits or health check is rolled out to what runs (the current image,
     * redeployed behind the health gate); restart policy and replicas need no new containers.
     */
    const update = (
      service: string,
      patch: ServicePatch
    ): Effect.Effect<
      ServiceUpdate,
      Forbidden | ServiceNotFound | QuotaExceeded | DeployError,
      CurrentPrincipal
    > =>
      Effect.gen(function* () {
        const { principal, service: found } = yield* policy.requireService(
          "change the service's settings",
          service,
          "manage"
        )
        const id = found.id
        const teamId = principal.teamId
        // What the change adds, read under the lock (the row may have changed since the policy read it).
        const additions = Effect.gen(function* () {
          const current = yield* services.findById(teamId, id)
          if (Option.isNone(current)) return { services: 0, cpuMillis: 0, memoryMb: 0 }
          return {
            services: 0,
            cpuMillis: patch.cpuMillis === undefined ? 0 : patch.cpuMillis - current.value.cpuMillis,
            memoryMb: patch.memoryMb === undefined ? 0 : patch.memoryMb - current.value.memoryMb
          }
        })
        const editsEnv = patch.env !== undefined || patch.envSet !== undefined || patch.envUnset !== undefined
        // The env to write, from the row as it is under the lock.
        const envOf = (current: Readonly<Record<string, string>>) => {
          const env: Record<string, string> = { ...(patch.env ?? current), ...patch.envSet }
          for (const key of patch.envUnset ?? []) delete env[key]
          return env
        }
        let before: ServiceInstance = found
        const apply = Effect.gen(function* () {
          const current = yield* services.findById(teamId, id)
          if (Option.isSome(current)) before = current.value
          return yield* services.update(teamId, id, {
            ...(patch.cpuMillis === undefined ? {} : { cpuMillis: patch.cpuMillis }),
            ...(patch.memoryMb === undefined ? {} : { memoryMb: patch.memoryMb }),
            ...(editsEnv ? { env: envOf(before.env) } : {}),
            ...(patch.healthConfig === undefined ? {} : { healthConfig: patch.healthConfig }),
            ...(patch.restartPolicy === undefined ? {} : { restartPolicy: patch.restartPolicy }),
            ...(patch.autoscale === undefined ? {} : { autoscale: patch.autoscale })
          })
        })
        // A rename is not part of this patch: a name conflict cannot happen here.
        const updated = yield* quotas
          .withinQuota(teamId, additions, apply)
          .pipe(Effect.catchTag("ServiceNameTaken", Effect.die))
        if (Option.isNone(updated)) return yield* new ServiceNotFound({ service })
        const after = updated.value
        const autoscale = after.autoscale
        const wanted =
          autoscale === null
            ? patch.replicas
            : Math.min(
                autoscale.maxReplicas,
                Math.max(autoscale.minReplicas, patch.replicas ?? after.replicas)
              )
        if (wanted !== undefined && wanted !== after.replicas)
          yield* deployer.scale(teamId, id, wanted).pipe(
            // A policy whose min the quota refuses is not kept: the caller gets the refusal.
            Effect.tapError(() =>
              patch.autoscale === undefined
                ? Effect.void
                : services.update(teamId, id, { autoscale: before.autoscale }).pipe(Effect.ignore)
            )
          )
        // Only what the containers are made of: an equal value written again changes nothing.
        const changed =
          after.cpuMillis !== before.cpuMillis ||
          after.memoryMb !== before.memoryMb ||
          JSON.stringify(sorted(after.env)) !== JSON.stringify(sorted(before.env)) ||
          JSON.stringify(after.healthConfig) !== JSON.stringify(before.healthConfig)
        const rollout = changed
          ? yield* deployer.applySettings(teamId, id, before)
          : Option.none<DeploymentId>()
        const latest = yield* services.findById(teamId, id)
        return { service: Option.getOrElse(latest, () => after), rollout }
      })

    /**
     * Services of the caller's team among `ids`, in one read (for batched lookups); others' ids
     * and unknown ones are simply absent.
     */
    const getMany = (
      ids: ReadonlyArray<string>
    ): Effect.Effect<ReadonlyArray<ServiceInstance>, never, CurrentPrincipal> =>
      Effect.flatMap(CurrentPrincipal, (p) =>
        services.findByIds(
          p.teamId,
          ids.map((id) => ServiceId.make(id))
        )
      )

    /**
     * http://<service>.<team>.<domain>:<edge port> of a service the edge names by host, null when it
     * names none (host names off, no edge in this process). It follows the edge, not the row.
     */
    const hostUrlOf = (id: ServiceId): Effect.Effect<string | null> =>
      Option.match(edgeRouter, {
        onNone: () => Effect.succeed(null),
        onSome: (edge) =>
          Effect.gen(function* () {
            const status = yield* edge.status
            const route = yield* edge.route(id)
            return route?.hostName && status.sharedPort !== null
              ? hostUrlFor(route.hostName, status.sharedPort)
              : null
          })
      })

    /**
     * Every name the edge serves the service on: its host URL, its HTTPS URL (KYOZO_EDGE_TLS_PORT)
     * and its custom domains. It follows the edge, not the row (a service without a route has none).
     */
    const namesOf = (route: EdgeRouteStatus | undefined, status: EdgeStatus): EdgeNames =>
      route === undefined
        ? noNames
        : {
            hostUrl:
              route.hostName && status.sharedPort !== null
                ? hostUrlFor(route.hostName, status.sharedPort)
                : null,
            httpsUrl:
              route.hostName && status.tlsPort != null ? httpsUrlFor(route.hostName, status.tlsPort) : null,
            domains: route.domains
          }

    const edgeNamesOf = (id: ServiceId): Effect.Effect<EdgeNames> =>
      Option.match(edgeRouter, {
        onNone: () => Effect.succeed(noNames),
        onSome: (edge) =>
          Effect.gen(function* () {
            return namesOf(yield* edge.route(id), yield* edge.status)
          })
      })

    /** `edgeNamesOf` for many services, reading the edge's routes once (a page of the list). */
    const edgeNamesOfMany = (ids: ReadonlyArray<ServiceId>): Effect.Effect<ReadonlyArray<EdgeNames>> =>
      Option.match(edgeRouter, {
        onNone: () => Effect.succeed(ids.map(() => noNames)),
        onSome: (edge) =>
          Effect.gen(function* () {
            const status = yield* edge.status
            const routes = new Map((yield* edge.routes).map((r) => [r.serviceId, r]))
            return ids.map((id) => namesOf(routes.get(id), status))
          })
      })

    /** A service of the caller's team by id or name (every member reads every service of the team). */
    const get = (service: string): Effect.Effect<ServiceInstance, ServiceNotFound, CurrentPrincipal> =>
      Effect.map(policy.viewService(service), (a) => a.service)

    /**
     * A service of the caller's team and what the caller may do on it (team role raised by grants):
     * the one rule front doors report, so clients show the controls the server will allow.
     */
    const getWithCapabilities = (
      service: string
    ): Effect.Effect<
      { readonly service: ServiceInstance; readonly can: Capabilities },
      ServiceNotFound,
      CurrentPrincipal
    > =>
      Effect.flatMap(policy.viewService(service), (a) =>
        Effect.map(policy.permissionOn(a.principal, a.service), (permission) => ({
          service: a.service,
          can: capabilitiesOf(permission)
        }))
      )

    /** The service as the runtime sees it (status, replicas, URL), and what the caller may do on it. */
    const view = (service: string): Effect.Effect<ServiceView, DeployError, CurrentPrincipal> =>
      Effect.flatMap(policy.viewService(service), (a) =>
        Effect.zipWith(
          deployer.get(a.principal.teamId, a.service.id),
          policy.permissionOn(a.principal, a.service),
          (view, permission): ServiceView => ({ ...view, can: capabilitiesOf(permission) })
        )
      )

    /** Every service of the caller's team as the runtime sees it. */
    const views: Effect.Effect<ReadonlyArray<ServiceView>, DeployError, CurrentPrincipal> = Effect.flatMap(
      CurrentPrincipal,
      (p) => deployer.list(p.teamId)
    )

    /** The names of the service's env variables (never their values). */
    const envKeys = (
      service: string
    ): Effect.Effect<ReadonlyArray<string>, ServiceNotFound, CurrentPrincipal> =>
      Effect.map(get(service), (s) => Object.keys(s.env).sort())

    /** Lifecycle operations need `deploy` on the service; removing it needs `manage`. */
    const lifecycle =
      (operation: string, act: (teamId: TeamId, id: ServiceId) => Effect.Effect<ServiceView, DeployError>) =>
      (service: string): Effect.Effect<ServiceView, Forbidden | DeployError, CurrentPrincipal> =>
        Effect.flatMap(policy.requireService(operation, service, "deploy"), (a) =>
          act(a.principal.teamId, a.service.id)
        )

    const stop = lifecycle("stop services", (teamId, id) => deployer.stop(teamId, id))
    const start = lifecycle("start services", (teamId, id) => deployer.start(teamId, id))
    const restart = lifecycle("restart services", (teamId, id) => deployer.restart(teamId, id))

    /** Sets the replica count (the Deployer's quota gate counts replicas). */
    const scale = (
      service: string,
      replicas: number
    ): Effect.Effect<ServiceView, Forbidden | DeployError, CurrentPrincipal> =>
      Effect.flatMap(policy.requireService("scale services", service, "deploy"), (a) =>
        deployer.scale(a.principal.teamId, a.service.id, replicas)
      )

    /** Removes the service, its containers and routes; its data volumes only when asked. */
    const remove = (
      service: string,
      options: { readonly volumes?: boolean } = {}
    ): Effect.Effect<RemovedVolumes, Forbidden | DeployError, CurrentPrincipal> =>
      Effect.flatMap(policy.requireService("remove services", service, "manage"), (a) =>
        deployer.remove(a.principal.teamId, a.service.id, { volumes: options.volumes === true })
      )

    /** The service's log lines (the last `tail`, then live ones when `follow`); ends when the key dies. */
    const logs = (
      service: string,
      options: { readonly follow?: boolean | undefined; readonly tail?: number | undefined } = {}
    ): Stream.Stream<LogLine, DeployError, CurrentPrincipal> =>
      Stream.unwrap(
        Effect.map(policy.viewService(service), (a) =>
          deployer
            .logs(a.principal.teamId, a.service.id, {
              follow: options.follow ?? false,
              tail: options.tail ?? 100
            })
            .pipe(sessions.guard(a.principal.keyId))
        )
      )

    return {
      list,
      listForCaller,
      cachedForCaller,
      update,
      getMany,
      hostUrlOf,
      edgeNamesOf,
      edgeNamesOfMany,
      get,
      getWithCapabilities,
      view,
      views,
      envKeys,
      stop,
      start,
      restart,
      scale,
      remove,
      logs
    } as const
  }),
  dependencies: [ServiceRepo.Default, Policy.Default]
}) {}

/**
 * Deployments, the rules every front door (REST, RPC, GraphQL) calls:
 * - a new deploy needs the deploy right (Policy.requireDeploy: members and above, or a `deploy`
 *   grant on the existing service of that name); its source is resolved inside the team (Sources);
 * - redeploying a service and rolling it back need `deploy` on it; a redeploy uses the source the
 *   service was deployed from and always asks for new containers;
 * - every member reads the team's deployments and their events; another team's ids are unknown.
 * Streams (deploy progress, events) end when the caller's key stops being valid.
 * Storage errors are defects here, once.
 */
import {
  type DeployError,
  type DeploymentSummary,
  type DeployProgress,
  type DeploySource,
  type ServiceNotFound
} from "@kyozo/api/domain/Deploy"
import type { Deployment } from "@kyozo/api/domain/Deployment"
import type { DeploymentEvent } from "@kyozo/api/domain/DeploymentEvent"
import { DeploymentId, ServiceId, type TeamId } from "@kyozo/api/domain/Ids"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import { CurrentPrincipal, type Forbidden } from "@kyozo/api/KyozoRpc"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { Deployer } from "@kyozo/workers/deploy/Deployer"
import { Data, Deferred, Effect, Option, Stream } from "effect"

import { KeySessions } from "../KeySessions.js"
import { Policy } from "../Policy.js"
import { Sources } from "./Sources.js"
import { repository } from "./Storage.js"

/** No deployment of that id in the caller's team (another team's is as unknown as a made-up one). */
export class DeploymentNotFound extends Data.TaggedError("DeploymentNotFound")<{
  readonly deploymentId: string
}> {
  override get message() {
    return "No such deployment in your team: list them with GET /v1/deployments."
  }
}

/** The service has no stored source to deploy from again (deploy its folder instead). */
export class NoStoredSource extends Data.TaggedError("NoStoredSource")<{ readonly service: string }> {
  override get message() {
    return "The service has no stored source to deploy from: deploy its folder or upload again."
  }
}

/** What a new deploy is asked for (the source as the caller names it, not yet resolved). */
export interface NewDeploy {
  readonly source: DeploySource
  readonly name?: string | undefined
  readonly force?: boolean | undefined
}

/** Page sizes of deployment and event reads. */
export interface ListOptions {
  readonly limit?: number | undefined
}

/** How many events are read per query while collecting one deployment's events. */
const EVENT_PAGE = 100

/** The source a service was deployed from (stored by the deploy path), to deploy it again. */
const storedSource = (s: ServiceInstance): Option.Option<DeploySource> => {
  const src = s.source
  if (src["type"] === "upload" && typeof src["uploadId"] === "string")
    return Option.some({ _tag: "Upload", uploadId: src["uploadId"] })
  if (src["type"] === "path" && typeof src["path"] === "string")
    return Option.some({ _tag: "Path", path: src["path"] })
  return Option.none()
}

export class Deployments extends Effect.Service<Deployments>()("@kyozo/server/application/Deployments", {
  effect: Effect.gen(function* () {
    const deployer = yield* Deployer
    const deployments = yield* repository(DeploymentRepo)
    const events = yield* repository(DeploymentEventRepo)
    const policy = yield* Policy
    const sources = yield* Sources
    const sessions = yield* KeySessions

    /** The team's deployments, newest first. */
    const list = (
      options: ListOptions = {}
    ): Effect.Effect<ReadonlyArray<Deployment>, never, CurrentPrincipal> =>
      Effect.flatMap(CurrentPrincipal, (p) =>
        deployments.listByTeam(p.teamId, { limit: options.limit ?? 50 })
      )

    /** One service's deployments (id or name), newest first. */
    const listByService = (
      service: string,
      options: ListOptions = {}
    ): Effect.Effect<ReadonlyArray<Deployment>, ServiceNotFound, CurrentPrincipal> =>
      Effect.flatMap(policy.viewService(service), ({ principal, service: found }) =>
        deployments.listByService(principal.teamId, found.id, { limit: options.limit ?? 50 })
      )

    /** A deployment of the caller's team. */
    const get = (deploymentId: string): Effect.Effect<Deployment, DeploymentNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const p = yield* CurrentPrincipal
        const found = yield* deployments.get(p.teamId, DeploymentId.make(deploymentId))
        if (Option.isNone(found)) return yield* new DeploymentNotFound({ deploymentId })
        return found.value
      })

    /** The events of one deployment of the caller's team, oldest first (at most `limit`, default 100). */
    const eventsOf = (
      deploymentId: string,
      options: ListOptions = {}
    ): Effect.Effect<ReadonlyArray<DeploymentEvent>, DeploymentNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const p = yield* CurrentPrincipal
        const deployment = yield* get(deploymentId)
        const limit = Math.max(1, Math.floor(options.limit ?? 100))
        const out: Array<DeploymentEvent> = []
        let afterId = 0
        // Events are kept per service; a deployment's are the service's that name it.
        for (;;) {
          const page = yield* events.listByService(p.teamId, deployment.serviceId, {
            afterId,
            limit: EVENT_PAGE
          })
          for (const e of page) if (e.deploymentId === deployment.id && out.length < limit) out.push(e)
          if (page.length < EVENT_PAGE || out.length >= limit) return out
          afterId = page[page.length - 1]!.id
        }
      })

    /** One service's events after `afterId` (default: from the start), oldest first. */
    const eventsOfService = (
      service: string,
      options: ListOptions & { readonly afterId?: number | undefined } = {}
    ): Effect.Effect<ReadonlyArray<DeploymentEvent>, ServiceNotFound, CurrentPrincipal> =>
      Effect.flatMap(policy.viewService(service), ({ principal, service: found }) =>
        events.listByService(principal.teamId, found.id, {
          afterId: options.afterId ?? 0,
          limit: options.limit ?? 100
        })
      )

    /** The team's events after `afterId`, then live ones when `follow`; ends when the key dies. */
    const eventStream = (options: {
      readonly afterId?: number | undefined
      readonly follow?: boolean | undefined
      readonly service?: string | undefined
    }): Stream.Stream<DeploymentEvent, DeployError, CurrentPrincipal> =>
      Stream.unwrap(
        Effect.map(CurrentPrincipal, (p) =>
          deployer
            .events(p.teamId, {
              ...(options.afterId === undefined ? {} : { afterId: options.afterId }),
              ...(options.service === undefined ? {} : { service: options.service }),
              follow: options.follow ?? false
            })
            .pipe(sessions.guard(p.keyId))
        )
      )

    /** Checks the deploy right and resolves the source inside the caller's team. */
    const prepare = (request: NewDeploy) =>
      Effect.gen(function* () {
        const principal = yield* policy.requireDeploy(request.name)
        const source = yield* sources.resolve(principal.teamId, request.source)
        return {
          principal,
          request: {
            source,
            ...(request.name === undefined ? {} : { name: request.name }),
            ...(request.force === true ? { force: true } : {})
          }
        }
      })

    /** A deploy, followed step by step to the end (ends when the caller's key dies). */
    const deploy = (
      request: NewDeploy
    ): Stream.Stream<DeployProgress, Forbidden | DeployError, CurrentPrincipal> =>
      Stream.unwrap(
        Effect.map(prepare(request), ({ principal, request }) =>
          deployer.deploy(principal.teamId, request).pipe(sessions.guard(principal.keyId))
        )
      )

    /**
     * Starts a deploy and answers once every detected service has its deployment (build, start and
     * health gate go on in the durable workflow after the answer).
     */
    const startDeploy = (teamId: TeamId, request: Parameters<Deployer["Type"]["deploy"]>[1]) =>
      Effect.gen(function* () {
        const started = yield* Deferred.make<ReadonlyArray<string>, DeployError>()
        const seen = new Map<string, string>()
        let expected: number | undefined
        const settleIfAllSeen = Effect.suspend(() =>
          expected !== undefined && seen.size >= expected
            ? Deferred.succeed(started, [...seen.values()])
            : Effect.void
        )
        yield* deployer.deploy(teamId, request).pipe(
          Stream.runForEach((progress) =>
            Effect.suspend(() => {
              if (progress._tag === "Detected") expected = progress.services.length
              else if (progress._tag === "Step") seen.set(progress.service, progress.deploymentId)
              else if (progress._tag === "Deployed")
                seen.set(progress.deployment.serviceName, progress.deployment.deploymentId)
              return settleIfAllSeen
            })
          ),
          Effect.exit,
          Effect.flatMap((exit) =>
            exit._tag === "Success"
              ? Deferred.succeed(started, [...seen.values()])
              : Effect.flatMap(Effect.exit(Effect.failCause(exit.cause)), (e) => Deferred.done(started, e))
          ),
          Effect.forkDaemon
        )
        const ids = yield* Deferred.await(started)
        const out: Array<Deployment> = []
        for (const id of ids) {
          const found = yield* deployments.get(teamId, DeploymentId.make(id))
          if (Option.isSome(found)) out.push(found.value)
        }
        return out
      })

    /** A new deploy, answered with its deployments once each service has one. */
    const start = (
      request: NewDeploy
    ): Effect.Effect<ReadonlyArray<Deployment>, Forbidden | DeployError, CurrentPrincipal> =>
      Effect.flatMap(prepare(request), ({ principal, request }) => startDeploy(principal.teamId, request))

    /** Deploys a service again from its stored source, always with new containers. */
    const redeploy = (
      service: string
    ): Effect.Effect<
      ReadonlyArray<Deployment>,
      Forbidden | ServiceNotFound | NoStoredSource | DeployError,
      CurrentPrincipal
    > =>
      Effect.gen(function* () {
        const { principal, service: found } = yield* policy.requireService(
          "deploy the service",
          service,
          "deploy"
        )
        const source = storedSource(found)
        if (Option.isNone(source)) return yield* new NoStoredSource({ service })
        const resolved = yield* sources.resolveStored(principal.teamId, source.value)
        // "Redeploy this service" (the dashboard's button) asks for new containers: always forced.
        return yield* startDeploy(principal.teamId, { source: resolved, name: found.name, force: true })
      })

    /** Rolls a service back to `to` (a deployment id or image; default: the previous retained image). */
    const rollback = (
      service: string,
      to?: string
    ): Effect.Effect<
      { readonly summary: DeploymentSummary; readonly deployment: Deployment },
      Forbidden | ServiceNotFound | DeployError,
      CurrentPrincipal
    > =>
      Effect.gen(function* () {
        const { principal, service: found } = yield* policy.requireService(
          "roll back the service",
          service,
          "deploy"
        )
        const summary = yield* deployer.rollback(principal.teamId, found.id, to)
        const deployment = yield* deployments.get(principal.teamId, summary.deploymentId)
        // The Deployer has just written it in this team: its absence is a bug, not a user's error.
        if (Option.isNone(deployment))
          return yield* Effect.dieMessage(`rollback deployment ${summary.deploymentId} has no row`)
        return { summary, deployment: deployment.value }
      })

    /** The newest deployment of each of the caller's team's services among `serviceIds`, in one read. */
    const latestOf = (
      serviceIds: ReadonlyArray<string>
    ): Effect.Effect<ReadonlyArray<Deployment>, never, CurrentPrincipal> =>
      Effect.flatMap(CurrentPrincipal, (p) =>
        deployments.latestByServices(
          p.teamId,
          serviceIds.map((id) => ServiceId.make(id))
        )
      )

    /** The team's events after `afterId` (default: from the start), oldest first; one service's when named. */
    const listEvents = (
      options: ListOptions & {
        readonly afterId?: number | undefined
        readonly service?: string | undefined
      } = {}
    ): Effect.Effect<ReadonlyArray<DeploymentEvent>, ServiceNotFound, CurrentPrincipal> =>
      options.service !== undefined
        ? eventsOfService(options.service, options)
        : Effect.flatMap(CurrentPrincipal, (p) =>
            events.listSince(p.teamId, options.afterId ?? 0, options.limit ?? 100)
          )

    return {
      list,
      listByService,
      get,
      latestOf,
      listEvents,
      eventsOf,
      eventsOfService,
      eventStream,
      deploy,
      start,
      redeploy,
      rollback
    } as const
  }),
  dependencies: [DeploymentRepo.Default, DeploymentEventRepo.Default, Policy.Default, Sources.Default]
}) {}

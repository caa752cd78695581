/**
 * The resolvers: each decodes its arguments, calls an application service through `ctx.run`
 * (which provides the caller as CurrentPrincipal) and maps the answer to the schema's shape. No
 * rule lives here: who may read what, team scoping and paging are the application's.
 */
import type { Deployment } from "@kyozo/api/domain/Deployment"
import type { DeploymentEvent } from "@kyozo/api/domain/DeploymentEvent"
import type { HealthCheck } from "@kyozo/api/domain/HealthCheck"
import type { MetricSample } from "@kyozo/api/domain/MetricSample"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import { serviceUrl } from "@kyozo/core/engine/ServiceNaming"
import type { Webhook } from "@kyozo/core/Webhook"
import { Effect } from "effect"
import type { GraphQLError } from "graphql"

import { Deployments } from "../application/Deployments.js"
import { Insights } from "../application/Insights.js"
import { Members, type MemberView } from "../application/Members.js"
import { Services } from "../application/Services.js"
import { Webhooks } from "../application/Webhooks.js"
import { badInput, type Run } from "./Execution.js"
import type { Loaders } from "./Loaders.js"

/** What a resolver may call. */
export type AppServices = Services | Members | Deployments | Insights | Webhooks

// A type alias, not an interface: graphql-http wants a context assignable to a record.
export type GraphqlContext = {
  readonly run: Run<AppServices>
  readonly loaders: Loaders
}

/** The largest page any list answers. */
export const MAX_FIRST = 100

const first = (value: unknown, fallback: number): number => {
  const n = value === undefined || value === null ? fallback : Number(value)
  if (!Number.isInteger(n) || n < 1 || n > MAX_FIRST)
    throw badInput("first", `\`first\` must be an integer from 1 to ${MAX_FIRST}.`)
  return n
}

/** An id or name argument: PostgreSQL refuses NUL bytes, so they are refused here first. */
const idArg = (name: string, value: unknown): string => {
  const s = String(value)
  if (s === "" || s.includes("\0") || s.length > 200) throw badInput(name, `\`${name}\` is not a valid id.`)
  return s
}

const optionalIdArg = (name: string, value: unknown): string | undefined =>
  value === undefined || value === null ? undefined : idArg(name, value)

/** An event cursor: a non-negative integer event id. */
const eventCursor = (value: unknown): number | undefined => {
  if (value === undefined || value === null) return undefined
  const s = String(value).trim()
  if (!/^\d{1,15}$/.test(s)) throw badInput("after", "`after` must be an event id (a non-negative integer).")
  return Number(s)
}

/** Unknown or foreign objects answer null (never an error that would confirm they exist elsewhere). */
const orNull = <A>(promise: Promise<A>): Promise<A | null> =>
  promise.catch((e: GraphQLError) => {
    if (e?.extensions?.["code"] === "NOT_FOUND") return null
    throw e
  })

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString())

export const resolvers = {
  Query: {
    services: async (_: unknown, args: { first?: number; after?: string | null }, ctx: GraphqlContext) => {
      const limit = first(args.first, 50)
      const after = optionalIdArg("after", args.after)
      const page = await ctx.run(Effect.flatMap(Services, (app) => app.listForCaller({ limit, after })))
      for (const s of page.items) ctx.loaders.service.prime(s.id, s)
      return page.items
    },
    service: (_: unknown, args: { id: string }, ctx: GraphqlContext) => {
      const id = idArg("id", args.id)
      return orNull(ctx.run(Effect.flatMap(Services, (s) => s.get(id))))
    },
    deployments: (_: unknown, args: { service?: string | null; first?: number }, ctx: GraphqlContext) => {
      const limit = first(args.first, 50)
      const service = optionalIdArg("service", args.service)
      return ctx.run(
        Effect.flatMap(Deployments, (d) =>
          service === undefined ? d.list({ limit }) : d.listByService(service, { limit })
        )
      )
    },
    deployment: (_: unknown, args: { id: string }, ctx: GraphqlContext) => {
      const id = idArg("id", args.id)
      return orNull(ctx.run(Effect.flatMap(Deployments, (d) => d.get(id))))
    },
    events: (
      _: unknown,
      args: { service?: string | null; after?: string | null; first?: number },
      ctx: GraphqlContext
    ) => {
      const limit = first(args.first, 100)
      const afterId = eventCursor(args.after)
      const service = optionalIdArg("service", args.service)
      return ctx.run(Effect.flatMap(Deployments, (d) => d.listEvents({ afterId, limit, service })))
    },
    healthHistory: (_: unknown, args: { service: string; first?: number }, ctx: GraphqlContext) => {
      const limit = first(args.first, 50)
      const service = idArg("service", args.service)
      return ctx.run(Effect.flatMap(Insights, (i) => i.healthHistory(service, { limit })))
    },
    metrics: (
      _: unknown,
      args: { service: string; window?: "hour" | "day" | "week" },
      ctx: GraphqlContext
    ) => {
      const service = idArg("service", args.service)
      return ctx.run(Effect.flatMap(Insights, (i) => i.metrics(service, args.window ?? "hour")))
    },
    members: (_: unknown, __: unknown, ctx: GraphqlContext) =>
      ctx.run(Effect.flatMap(Members, (app) => app.listForCaller)),
    webhooks: (_: unknown, __: unknown, ctx: GraphqlContext) =>
      ctx.run(Effect.flatMap(Webhooks, (w) => w.list))
  },
  Service: {
    desiredState: (s: ServiceInstance) => s.desiredState,
    url: (s: ServiceInstance) => serviceUrl(s.hostPort),
    hostUrl: (s: ServiceInstance, _: unknown, ctx: GraphqlContext) =>
      ctx.run(Effect.flatMap(Services, (app) => app.hostUrlOf(s.id))),
    httpsUrl: (s: ServiceInstance, _: unknown, ctx: GraphqlContext) =>
      ctx.run(Effect.flatMap(Services, (app) => Effect.map(app.edgeNamesOf(s.id), (n) => n.httpsUrl))),
    domains: (s: ServiceInstance, _: unknown, ctx: GraphqlContext) =>
      ctx.run(Effect.flatMap(Services, (app) => Effect.map(app.edgeNamesOf(s.id), (n) => n.domains))),
    envKeys: (s: ServiceInstance) => Object.keys(s.env).sort(),
    createdAt: (s: ServiceInstance) => s.createdAt.toISOString(),
    updatedAt: (s: ServiceInstance) => s.updatedAt.toISOString(),
    lastDeployment: (s: ServiceInstance, _: unknown, ctx: GraphqlContext) =>
      ctx.loaders.lastDeployment.load(s.id),
    can: (s: ServiceInstance, _: unknown, ctx: GraphqlContext) =>
      ctx.run(Effect.flatMap(Services, (app) => Effect.map(app.getWithCapabilities(s.id), (r) => r.can)))
  },
  Deployment: {
    createdAt: (d: Deployment) => d.createdAt.toISOString(),
    finishedAt: (d: Deployment) => iso(d.finishedAt),
    service: (d: Deployment, _: unknown, ctx: GraphqlContext) => ctx.loaders.service.load(d.serviceId)
  },
  Event: {
    id: (e: DeploymentEvent) => String(e.id),
    data: (e: DeploymentEvent) => JSON.stringify(e.data),
    createdAt: (e: DeploymentEvent) => e.createdAt.toISOString(),
    service: (e: DeploymentEvent, _: unknown, ctx: GraphqlContext) =>
      e.serviceId === null ? null : ctx.loaders.service.load(e.serviceId)
  },
  HealthCheck: {
    id: (c: HealthCheck) => String(c.id),
    checkedAt: (c: HealthCheck) => c.checkedAt.toISOString()
  },
  MetricSample: {
    id: (m: MetricSample) => String(m.id),
    sampledAt: (m: MetricSample) => m.sampledAt.toISOString()
  },
  Member: {
    // A pending one is named by its invitation (its user's id is not the team's to learn yet).
    userId: (m: MemberView) => m.id,
    createdAt: (m: MemberView) => m.createdAt.toISOString()
  },
  Webhook: {
    createdAt: (w: Webhook) => w.createdAt.toISOString()
  }
}

/**
 * EdgeRouter: the data plane. Each service gets a stable per-service port on 127.0.0.1 (its `url`)
 * and, where the edge supports it, a host name on one shared port (its `hostUrl`); traffic goes to
 * the service's upstreams, the 127.0.0.1-published ports of its running containers.
 *
 * One tag, two layers (see `layer` in EdgeSelection.ts):
 * - Caddy (CaddyEdge.ts): a separate process driven through its admin API, so user traffic keeps
 *   flowing while Kyozo is down or restarting; config applied atomically (`POST /load`).
 * - in-process (InProcessEdge.ts): the embedded fallback when Caddy is absent, a TCP pipe inside
 *   Kyozo (ServiceProxy). It dies with Kyozo, and says so in /readyz, the logs and `kyozo ps`.
 *
 * Callers do not route by hand: `EdgeRoutes.sync` computes the desired upstreams from the engine
 * and calls `setUpstreams`, which pushes a change only when it differs.
 */
import { Context, type Duration, type Effect, Schema } from "effect"

export type EdgeKind = "caddy" | "inprocess"

export interface Upstream {
  readonly host: string
  readonly port: number
}

export const UpstreamSchema = Schema.Struct({ host: Schema.String, port: Schema.Int })

export interface EnsureRoute {
  /** The stable port; absent or 0 picks a free one. */
  readonly hostPort?: number | null
  /** `<service>.<team>.<domain>` on the shared edge port, when the edge serves host names. */
  readonly hostName?: string | null
  /** A simulated (mock-runtime) service: the edge answers a page saying so instead of proxying. */
  readonly simulated?: boolean
  /** The service's name, for the pages the edge answers itself. */
  readonly label?: string
  /**
   * Custom domains of the service, served like `hostName` (on the shared port, and over HTTPS);
   * absent keeps the route's current ones. The in-process edge serves no host names: it keeps them
   * for the status only.
   */
  readonly domains?: ReadonlyArray<string>
}

export const EdgeRouteStatus = Schema.Struct({
  serviceId: Schema.String,
  hostPort: Schema.Int,
  hostName: Schema.NullOr(Schema.String),
  /** Custom domains routed like the host name (EnsureRoute.domains). */
  domains: Schema.Array(Schema.String),
  simulated: Schema.Boolean,
  upstreams: Schema.Array(UpstreamSchema)
})
export type EdgeRouteStatus = typeof EdgeRouteStatus.Type

export const EdgeStatus = Schema.Struct({
  kind: Schema.Literal("caddy", "inprocess"),
  /** Why this edge: "KYOZO_EDGE=caddy", "caddy adopted at …", "no caddy binary: …". */
  reason: Schema.String,
  /** False for the in-process fallback: the URLs stop answering when Kyozo stops. */
  survivesRestart: Schema.Boolean,
  /** The admin endpoint (Caddy only). */
  admin: Schema.NullOr(Schema.String),
  pid: Schema.NullOr(Schema.Int),
  /** The shared host-name port, null when host names are not served. */
  sharedPort: Schema.NullOr(Schema.Int),
  /** The HTTPS port of the host names and custom domains, null when HTTPS is off or not served. */
  tlsPort: Schema.optional(Schema.NullOr(Schema.Int)),
  domain: Schema.String,
  /** The last apply error, if the edge refused a config (the previous one keeps serving). */
  lastError: Schema.NullOr(Schema.String),
  routes: Schema.Int
})
export type EdgeStatus = typeof EdgeStatus.Type

export class EdgeUnavailable extends Schema.TaggedError<EdgeUnavailable>()("EdgeUnavailable", {
  reason: Schema.Literal("not-installed", "start-failed", "admin-unreachable"),
  detail: Schema.String
}) {
  override get message() {
    switch (this.reason) {
      case "not-installed":
        return `Caddy is not installed (${this.detail}). Install it (apt-get install -y caddy) or set KYOZO_EDGE=inprocess.`
      case "start-failed":
        return `Caddy did not start: ${this.detail}. See the edge log in the data dir, or set KYOZO_EDGE=inprocess.`
      case "admin-unreachable":
        return `Caddy's admin API does not answer: ${this.detail}. Check KYOZO_CADDY_ADMIN, or run \`kyozo edge stop\` and restart Kyozo.`
    }
  }
}

export class EdgeApplyFailed extends Schema.TaggedError<EdgeApplyFailed>()("EdgeApplyFailed", {
  serviceId: Schema.String,
  reason: Schema.Literal("port-in-use", "port-mismatch", "rejected"),
  detail: Schema.String
}) {
  override get message() {
    switch (this.reason) {
      case "port-in-use":
        return `The edge cannot listen for service ${this.serviceId}: ${this.detail}. Free the port or give the service another one.`
      case "port-mismatch":
        return `Service ${this.serviceId}: ${this.detail}. Remove its route first to move it.`
      case "rejected":
        return `The edge refused the route of service ${this.serviceId}: ${this.detail}. The previous routes keep serving.`
    }
  }
}

export type EdgeError = EdgeUnavailable | EdgeApplyFailed

export interface EdgeRouterShape {
  readonly kind: EdgeKind
  /** Declares the service's route (idempotent); returns its stable port. */
  readonly ensure: (
    serviceId: string,
    options?: EnsureRoute
  ) => Effect.Effect<{ readonly hostPort: number }, EdgeError>
  /**
   * The service's upstreams from now on (empty: the edge answers 503). Pushes to the edge only
   * when the set differs from the current one; `changed` says whether it did.
   */
  readonly setUpstreams: (
    serviceId: string,
    upstreams: ReadonlyArray<Upstream>
  ) => Effect.Effect<{ readonly changed: boolean }, EdgeError>
  /** Waits until no request or connection goes to `upstream`, or `timeout`; reports what is left. */
  readonly drain: (
    serviceId: string,
    upstream: Upstream,
    timeout: Duration.DurationInput
  ) => Effect.Effect<{ readonly remaining: number }>
  readonly route: (serviceId: string) => Effect.Effect<EdgeRouteStatus | undefined>
  readonly routes: Effect.Effect<ReadonlyArray<EdgeRouteStatus>>
  /** Drops the service's route and closes its port. */
  readonly remove: (serviceId: string) => Effect.Effect<void, EdgeError>
  readonly status: Effect.Effect<EdgeStatus>
}

export class EdgeRouter extends Context.Tag("@kyozo/core/edge/EdgeRouter")<EdgeRouter, EdgeRouterShape>() {}

export const sameNames = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean =>
  a.length === b.length && a.every((n, i) => n === b[i])

export const sameUpstreams = (a: ReadonlyArray<Upstream>, b: ReadonlyArray<Upstream>): boolean => {
  if (a.length !== b.length) return false
  const key = (u: Upstream) => `${u.host}:${u.port}`
  const left = a.map(key).sort()
  const right = b.map(key).sort()
  return left.every((k, i) => k === right[i])
}

/** The page the edge answers for a simulated service (mock runtime): never an empty reply. */
export const simulatedPage = (label: string): string =>
  `<!doctype html><title>${escapeHtml(label)} (simulated)</title><h1>${escapeHtml(label)}</h1>` +
  `<p>This service runs on Kyozo's simulated (mock) runtime: no container serves it. ` +
  `Start a Docker engine and restart Kyozo to run it for real.</p>\n`

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

/** The page for a service with no upstream right now. */
export const unavailableText = (label: string): string =>
  `Service ${label} has no running container right now; Kyozo is bringing it back.\n`

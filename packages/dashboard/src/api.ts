/**
 * The dashboard's calls to the Kyozo server: REST /v1 (JSON:API), a few typed RPCs at /rpc, and the
 * session routes. Types come from the contract modules (`@kyozo/api`), imported as types only so no
 * server code reaches the bundle. Every request rides on the session cookie; writes carry the CSRF
 * token. Failures are the API's own error documents, kept whole so the UI can show what they say.
 */
import type { DeployProgress as DeployProgressType } from "@kyozo/api/domain/Deploy"
import type { TopologyResult } from "@kyozo/api/domain/Topology"
import type {
  AlertRuleResource,
  ApiKeyResource,
  DeploymentResource,
  ErrorObject,
  HealthCheckResource,
  InvitationResource,
  LogLineResource,
  MemberResource,
  MetricSampleResource,
  PermissionResource,
  RecommendationResource,
  RuntimeResource,
  ServiceResource,
  TeamResource,
  WebhookDeliveryResource,
  WebhookResource
} from "@kyozo/api/KyozoHttpApi"
import type { EventView } from "@kyozo/api/KyozoRpc"
import type { CurrentSessionDocument, SessionDocument } from "@kyozo/api/KyozoSession"

export type Service = typeof ServiceResource.Type
export type Deployment = typeof DeploymentResource.Type
export type HealthCheck = typeof HealthCheckResource.Type
export type MetricSample = typeof MetricSampleResource.Type
export type Recommendation = typeof RecommendationResource.Type
export type Member = typeof MemberResource.Type
export type Invitation = typeof InvitationResource.Type
export type ApiKey = typeof ApiKeyResource.Type
export type Webhook = typeof WebhookResource.Type
export type WebhookDelivery = typeof WebhookDeliveryResource.Type
export type AlertRule = typeof AlertRuleResource.Type
export type Runtime = typeof RuntimeResource.Type
export type Team = typeof TeamResource.Type
export type Grant = typeof PermissionResource.Type
export type Permission = Grant["attributes"]["permission"]
export type LogLine = typeof LogLineResource.Type
export type Session = SessionDocument["data"]["attributes"]
export type Role = Session["role"]
export type KyozoEvent = EventView
export type Topology = TopologyResult
export type DeployProgress = DeployProgressType
export type { ErrorObject }

const JSON_API = "application/vnd.api+json"
const CSRF_HEADER = "x-csrf-token"

/** A failed call: the error objects of the API's document (or one made up for a network failure). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: ReadonlyArray<ErrorObject>
  ) {
    super(errors.map((e) => `${e.title}: ${e.detail}`).join("; "))
  }
}

let csrfToken = ""
let onSignedOut: () => void = () => {}

export const setCsrfToken = (token: string) => {
  csrfToken = token
}
export const whenSignedOut = (f: () => void) => {
  onSignedOut = f
}
export const csrfHeaders = (): Record<string, string> => ({ [CSRF_HEADER]: csrfToken })

/**
 * A call the browser could not complete (`fetch` rejected: the connection failed or was cut). Never
 * retried behind the user's back: a read says so, and a write says that its outcome is unknown (the
 * server may have carried it out before the answer was lost), so the user checks before redoing it.
 */
const networkError = (cause: unknown, write: boolean) => {
  const why = cause instanceof Error ? cause.message : String(cause)
  return new ApiError(0, [
    write
      ? {
          status: "0",
          code: "network",
          title: "No answer from the server",
          detail: `${why}: the connection failed before the answer arrived, so the change may or may not have been made. The page now shows what the server has; check it before trying again.`
        }
      : {
          status: "0",
          code: "network",
          title: "The server did not answer",
          detail: `${why}. Check that Kyozo is running and reachable, then try again.`
        }
  ])
}

/** The error objects of a failed answer, whatever shape its body has. */
export const errorsOf = (status: number, text: string): ReadonlyArray<ErrorObject> => {
  try {
    const body = JSON.parse(text) as { errors?: ReadonlyArray<ErrorObject> }
    if (Array.isArray(body.errors) && body.errors.length > 0) return body.errors
  } catch {
    /* not JSON */
  }
  return [
    {
      status: String(status),
      code: "http_" + status,
      title: `The server answered ${status}`,
      detail: text.slice(0, 300) || "No details were given."
    }
  ]
}

export const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
  const write = method !== "GET" && method !== "HEAD"
  let res: Response
  try {
    res = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: {
        accept: JSON_API,
        ...(body === undefined ? {} : { "content-type": JSON_API }),
        ...(write ? csrfHeaders() : {})
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
  } catch (cause) {
    throw networkError(cause, write)
  }
  const text = await res.text()
  if (!res.ok) {
    if (res.status === 401 && path !== "/v1/session") onSignedOut()
    throw new ApiError(res.status, errorsOf(res.status, text))
  }
  return (text === "" ? undefined : JSON.parse(text)) as T
}

export interface Collection<R> {
  readonly data: ReadonlyArray<R>
  readonly links: { readonly self: string; readonly next?: string | null }
}
export interface Single<R> {
  readonly data: R
}

/** What the caller may do on one service, as the server decides it. */
export interface ServiceCan {
  readonly deploy: boolean
  readonly manage: boolean
  readonly admin: boolean
}

const doc = (type: string, attributes: Record<string, unknown>) => ({ data: { type, attributes } })

/** Every page of a collection. */
export const listAll = async <R>(path: string): Promise<ReadonlyArray<R>> => {
  const out: Array<R> = []
  let next: string | null | undefined = path
  for (let i = 0; next && i < 50; i++) {
    const page: Collection<R> = await call<Collection<R>>("GET", next)
    out.push(...page.data)
    next = page.links.next
  }
  return out
}

// -------------------------------------------------------------------------------------------
// Session

export const session = {
  current: () => call<CurrentSessionDocument>("GET", "/v1/session").then((d) => d.data?.attributes ?? null),
  signIn: (apiKey: string) =>
    call<SessionDocument>("POST", "/v1/session", doc("sessions", { apiKey })).then((d) => d.data.attributes),
  signOut: () => call<void>("DELETE", "/v1/session")
}

// -------------------------------------------------------------------------------------------
// RPC over HTTP (ndjson): for the operations the REST API does not have yet (stop/start/restart,
// detection before a deploy, the event history of a service).

let rpcId = 0
/** RPCs that only read (a failed one changed nothing); every other one may have been carried out. */
const READ_RPCS: ReadonlySet<string> = new Set(["Detect", "Events", "Logs"])
interface RpcExit {
  readonly _tag: "Exit"
  readonly exit:
    | { readonly _tag: "Success"; readonly value: unknown }
    | { readonly _tag: "Failure"; readonly cause: unknown }
}

const failureOf = (cause: unknown): unknown => {
  // Cause encoded as { _tag: "Fail", error } or nested Sequential/Parallel.
  const c = cause as { _tag?: string; error?: unknown; left?: unknown; right?: unknown; defect?: unknown }
  if (c?._tag === "Fail") return c.error
  if (c?._tag === "Die") return { message: String((c.defect as { message?: string })?.message ?? c.defect) }
  if (c?.left) return failureOf(c.left) ?? failureOf(c.right)
  return undefined
}

const rpcError = (error: unknown): ApiError => {
  const e = (error ?? {}) as { _tag?: string; message?: string; operation?: string; required?: string }
  const status = e._tag === "Forbidden" ? 403 : e._tag === "Unauthorized" ? 401 : 422
  const detail =
    e._tag === "Forbidden"
      ? `Your role may not ${e.operation ?? "do this"}; it needs ${e.required ?? "a higher role"}.`
      : (e.message ??
        ([(error as { step?: string }).step, (error as { reason?: string }).reason]
          .filter((x) => typeof x === "string" && x !== "")
          .join(": ") ||
          JSON.stringify(error)))
  return new ApiError(status, [
    { status: String(status), code: e._tag ?? "rpc_failed", title: e._tag ?? "Failed", detail }
  ])
}

/** One RPC; a streaming RPC's chunks are collected until its end. */
export const rpc = async <T>(tag: string, payload: Record<string, unknown>): Promise<T> => {
  const id = String(++rpcId)
  let res: Response
  try {
    res = await fetch("/rpc", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/ndjson", ...csrfHeaders() },
      body: JSON.stringify({ _tag: "Request", id, tag, payload, headers: [] }) + "\n"
    })
  } catch (cause) {
    throw networkError(cause, !READ_RPCS.has(tag))
  }
  const text = await res.text()
  if (!res.ok) throw new ApiError(res.status, errorsOf(res.status, text))
  const chunks: Array<unknown> = []
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue
    const message = JSON.parse(line) as { _tag: string; values?: ReadonlyArray<unknown> } | RpcExit
    if (message._tag === "Chunk")
      chunks.push(...((message as { values?: ReadonlyArray<unknown> }).values ?? []))
    if (message._tag === "Exit") {
      const exit = (message as RpcExit).exit
      if (exit._tag === "Failure") {
        const error = failureOf(exit.cause)
        if ((error as { _tag?: string })?._tag === "Unauthorized") onSignedOut()
        throw rpcError(error)
      }
      return (exit.value === undefined || exit.value === null ? chunks : exit.value) as T
    }
  }
  return chunks as T
}

/** A streaming RPC: each chunk's values as they arrive (ndjson over one HTTP answer). */
export const rpcStream = async <T>(
  tag: string,
  payload: Record<string, unknown>,
  onValue: (value: T) => void,
  signal?: AbortSignal
): Promise<void> => {
  const id = String(++rpcId)
  let res: Response
  try {
    res = await fetch("/rpc", {
      method: "POST",
      credentials: "same-origin",
      ...(signal ? { signal } : {}),
      headers: { "content-type": "application/ndjson", ...csrfHeaders() },
      body: JSON.stringify({ _tag: "Request", id, tag, payload, headers: [] }) + "\n"
    })
  } catch (cause) {
    throw networkError(cause, !READ_RPCS.has(tag))
  }
  if (!res.ok || res.body === null) throw new ApiError(res.status, errorsOf(res.status, await res.text()))
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ""
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    let nl: number
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).trim()
      buffer = buffer.slice(nl + 1)
      if (line === "") continue
      const message = JSON.parse(line) as { _tag: string; values?: ReadonlyArray<T> } | RpcExit
      if (message._tag === "Chunk")
        for (const v of (message as { values?: ReadonlyArray<T> }).values ?? []) onValue(v)
      if (message._tag === "Exit") {
        const exit = (message as RpcExit).exit
        if (exit._tag === "Failure") throw rpcError(failureOf(exit.cause))
        return
      }
    }
  }
}

// -------------------------------------------------------------------------------------------
// REST

const enc = encodeURIComponent

export const api = {
  team: () => call<Single<Team>>("GET", "/v1/teams/current").then((d) => d.data),
  runtime: () => call<Single<Runtime>>("GET", "/v1/runtime").then((d) => d.data),
  services: () => listAll<Service>("/v1/services?page[size]=100"),
  service: (id: string) => call<Single<Service>>("GET", `/v1/services/${enc(id)}`).then((d) => d.data),
  /** The service and what the caller may do on it (`meta.can`: team role raised by grants). */
  serviceWithCan: (id: string) =>
    call<Single<Service> & { readonly meta?: { readonly can?: ServiceCan } }>(
      "GET",
      `/v1/services/${enc(id)}`
    ).then((d) => ({ service: d.data, can: d.meta?.can })),
  updateService: (id: string, attributes: Record<string, unknown>) =>
    call<Single<Service>>("PATCH", `/v1/services/${enc(id)}`, doc("services", attributes)).then(
      (d) => d.data
    ),
  /** PATCH with the rollout it started: the deployment applying the change to what runs, if any. */
  updateServiceRollout: (id: string, attributes: Record<string, unknown>) =>
    call<Single<Service> & { readonly meta?: { readonly rollout?: { readonly deploymentId: string } } }>(
      "PATCH",
      `/v1/services/${enc(id)}`,
      doc("services", attributes)
    ).then((d) => ({ service: d.data, rollout: d.meta?.rollout?.deploymentId })),
  deleteService: (id: string) => call<void>("DELETE", `/v1/services/${enc(id)}`),
  createService: (uploadId: string, name: string | undefined) =>
    call<Collection<Deployment>>(
      "POST",
      "/v1/services",
      doc("services", { source: { uploadId }, ...(name ? { name } : {}) })
    ).then((d) => d.data),
  redeploy: (id: string) =>
    call<Collection<Deployment>>("POST", `/v1/services/${enc(id)}/deployments`).then((d) => d.data),
  rollback: (id: string, to: string | undefined) =>
    call<Single<Deployment>>(
      "POST",
      `/v1/services/${enc(id)}/rollback`,
      doc("rollbacks", to ? { to } : {})
    ).then((d) => d.data),
  deployments: (serviceId: string) =>
    call<Collection<Deployment>>(
      "GET",
      `/v1/deployments?page[size]=50&filter[service]=${enc(serviceId)}`
    ).then((d) => d.data),
  logs: (id: string, tail = 200) =>
    call<Collection<LogLine>>("GET", `/v1/services/${enc(id)}/logs?tail=${tail}`).then((d) => d.data),
  health: (id: string) =>
    call<Collection<HealthCheck>>("GET", `/v1/services/${enc(id)}/health?page[size]=30`).then((d) => d.data),
  metrics: (id: string, window: "hour" | "day" | "week") =>
    call<Collection<MetricSample>>("GET", `/v1/services/${enc(id)}/metrics?window=${window}`).then(
      (d) => d.data
    ),
  recommendations: (id: string) =>
    call<Single<Recommendation>>("GET", `/v1/services/${enc(id)}/recommendations?window=week`).then(
      (d) => d.data
    ),
  alertRules: () => listAll<AlertRule>("/v1/alert-rules"),
  grants: (serviceId: string) => listAll<Grant>(`/v1/services/${enc(serviceId)}/permissions`),
  grant: (serviceId: string, userId: string, permission: Permission) =>
    call<Single<Grant>>(
      "POST",
      `/v1/services/${enc(serviceId)}/permissions`,
      doc("service-permissions", { userId, permission })
    ).then((d) => d.data),
  revokeGrant: (serviceId: string, grantId: string) =>
    call<void>("DELETE", `/v1/services/${enc(serviceId)}/permissions/${enc(grantId)}`),
  members: () => listAll<Member>("/v1/members"),
  /** Always an invitation (202): a new person is a member at once, one with an account joins on accepting. */
  addMember: (email: string, role: Role) =>
    call<Single<Invitation>>("POST", "/v1/members", doc("members", { email, role })).then((d) => d.data),
  /** The caller's pending invitations (to other teams). */
  invitations: () => listAll<Invitation>("/v1/invitations"),
  /** Joins the team: the answer carries a key for it, in clear this once. */
  acceptInvitation: (id: string) =>
    call<Single<Member> & { meta: { team: Team; key: ApiKey } }>(
      "POST",
      `/v1/invitations/${enc(id)}/accept`
    ).then((d) => ({ member: d.data, team: d.meta.team, key: d.meta.key })),
  changeRole: (userId: string, role: Role) =>
    call<Single<Member>>("PATCH", `/v1/members/${enc(userId)}`, doc("members", { role })).then((d) => d.data),
  removeMember: (userId: string) => call<void>("DELETE", `/v1/members/${enc(userId)}`),
  apiKeys: () => listAll<ApiKey>("/v1/api-keys"),
  issueKey: (name: string, userId?: string) =>
    call<Single<ApiKey>>(
      "POST",
      "/v1/api-keys",
      doc("api-keys", { name, ...(userId ? { userId } : {}) })
    ).then((d) => d.data),
  revokeKey: (id: string) => call<void>("DELETE", `/v1/api-keys/${enc(id)}`),
  webhooks: () => listAll<Webhook>("/v1/webhooks"),
  createWebhook: (url: string) =>
    call<Single<Webhook>>("POST", "/v1/webhooks", doc("webhooks", { url })).then((d) => d.data),
  deleteWebhook: (id: string) => call<void>("DELETE", `/v1/webhooks/${enc(id)}`),
  deliveries: (id: string) =>
    call<Collection<WebhookDelivery>>("GET", `/v1/webhooks/${enc(id)}/deliveries?page[size]=20`).then(
      (d) => d.data
    ),
  // RPC-only operations
  stop: (service: string) => rpc<unknown>("StopService", { service }),
  start: (service: string) => rpc<unknown>("StartService", { service }),
  restart: (service: string) => rpc<unknown>("RestartService", { service }),
  /** Deploys an uploaded folder, reporting detection, build log lines, steps and the result as they happen. */
  deploy: (uploadId: string, name: string | undefined, onProgress: (p: DeployProgressType) => void) =>
    rpcStream<DeployProgressType>(
      "Deploy",
      { source: { _tag: "Upload", uploadId }, ...(name ? { name } : {}) },
      onProgress
    ),
  /** The service's log lines: the last `tail`, then new ones as they are written, until `signal` aborts. */
  followLogs: (
    service: string,
    tail: number,
    onLine: (l: LogLine["attributes"]) => void,
    signal: AbortSignal
  ) => rpcStream<LogLine["attributes"]>("Logs", { service, follow: true, tail }, onLine, signal),
  detect: (uploadId: string) => rpc<Topology>("Detect", { source: { _tag: "Upload", uploadId } }),
  serviceEvents: (service: string) => rpc<ReadonlyArray<KyozoEvent>>("Events", { service, follow: false })
}

/** Uploads a tar with progress (XHR: fetch reports no upload progress). */
export const upload = (
  tar: Uint8Array,
  onProgress: (fraction: number) => void
): Promise<{ uploadId: string; files: number; bytes: number }> =>
  new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open("POST", "/v1/uploads")
    xhr.withCredentials = true
    xhr.setRequestHeader("content-type", "application/x-tar")
    xhr.setRequestHeader(CSRF_HEADER, csrfToken)
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total)
    }
    xhr.onload = () => {
      if (xhr.status === 201) {
        onProgress(1)
        resolve(JSON.parse(xhr.responseText))
      } else {
        if (xhr.status === 401) onSignedOut()
        reject(new ApiError(xhr.status, errorsOf(xhr.status, xhr.responseText)))
      }
    }
    xhr.onerror = () => reject(networkError(new Error("the upload was interrupted"), false))
    xhr.send(new Blob([tar as BlobPart]))
  })

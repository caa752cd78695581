/**
 * The Docker engine's transport: one `dial` per HTTP exchange over docker-modem, so that every call
 * gets the same deadline (an AbortSignal plus `Effect.timeoutFail`) and the same error mapping;
 * streams get an inactivity timeout instead, because a quiet stream is not a hung one until it has
 * been quiet for long. Statuses are left raw (`HttpStatus`) for each operation to interpret.
 */
import type { IncomingMessage } from "node:http"
import type { Readable } from "node:stream"

import * as NodeStream from "@effect/platform-node/NodeStream"
import {
  DockerApiError,
  DockerTimeout,
  DockerUnavailable,
  type RuntimeError
} from "@kyozo/api/domain/RuntimeErrors"
import type Docker from "dockerode"
import { Data, Duration, Effect, Option, Stream } from "effect"

import type { LabelFilter } from "../ContainerRuntime.js"

export interface DockerRuntimeOptions {
  /** `unix:///path`, `/path`, `tcp://host:port` (DOCKER_HOST forms); default $DOCKER_HOST, then the local socket. */
  readonly dockerHost?: string | undefined
  /** Deadline of each call (default 30 s). */
  readonly timeout?: Duration.DurationInput | undefined
  /** How long a stream (logs with follow, events, pull) may stay silent before failing (default 5 min). */
  readonly streamIdleTimeout?: Duration.DurationInput | undefined
  /** Which of the engine's builders runs image builds (default "buildkit", classic where it has none). */
  readonly builder?: "buildkit" | "classic" | undefined
}

export const defaultSocket = "/var/run/docker.sock"

/** Resolves a DOCKER_HOST value to dockerode options and a printable endpoint. */
export const parseDockerHost = (
  dockerHost: string | undefined
): { readonly endpoint: string; readonly options: Docker.DockerOptions } => {
  const value = dockerHost?.trim() || `unix://${defaultSocket}`
  // `host: undefined` matters: docker-modem merges DOCKER_HOST from the environment into its options.
  if (value.startsWith("unix://")) {
    const socketPath = value.slice("unix://".length) || defaultSocket
    return { endpoint: `unix://${socketPath}`, options: { socketPath, host: undefined, port: undefined } }
  }
  if (value.startsWith("/")) {
    return { endpoint: `unix://${value}`, options: { socketPath: value, host: undefined, port: undefined } }
  }
  const url = new URL(value.includes("://") ? value : `tcp://${value}`)
  const protocol = url.protocol === "https:" ? "https" : "http"
  const port = url.port || (protocol === "https" ? "2376" : "2375")
  return {
    endpoint: `${url.protocol === "https:" ? "https" : "tcp"}://${url.hostname}:${port}`,
    options: { host: url.hostname, port, protocol, socketPath: undefined }
  }
}

/** A non-2xx answer, before each operation decides what that status means for it. */
export class HttpStatus extends Data.TaggedError("HttpStatus")<{
  readonly operation: string
  readonly status: number
  readonly detail: string
}> {}

/**
 * Docker's wire JSON as the engine sends it: read field by field, with checks, by the decoders below
 * (`summaryOf`, `infoOf`, ...), which alone turn it into typed values.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the one loose type, named once
export type Wire = any

export type Raw<A, R = never> = Effect.Effect<A, RuntimeError | HttpStatus, R>

export type StatusCases<B> = {
  readonly [status: number]: ((e: HttpStatus) => Effect.Effect<B, RuntimeError>) | undefined
}

/** Maps statuses an operation understands; any other status becomes `DockerApiError`. */
export const onStatus = <A, R = never, B = never>(
  self: Raw<A, R>,
  cases: StatusCases<B> = {}
): Effect.Effect<A | B, RuntimeError, R> =>
  Effect.catchAll(self, (e): Effect.Effect<B, RuntimeError> => {
    if (e._tag !== "HttpStatus") return Effect.fail(e)
    const handler = cases[e.status]
    return handler ? handler(e) : Effect.fail(apiError(e))
  })

export const apiError = (e: HttpStatus) =>
  new DockerApiError({ operation: e.operation, status: e.status, detail: e.detail })

export const connectionCodes = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "EPIPE",
  "ECONNRESET",
  "EACCES",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENOTSOCK",
  "ECONNABORTED"
])

export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** The engine's explanation of an error: its JSON `message`, or docker-modem's text. */
export const detailOf = (e: Wire): string => {
  const json = e?.json
  if (json && typeof json === "object" && !Buffer.isBuffer(json) && typeof json.message === "string") {
    return json.message
  }
  if (Buffer.isBuffer(json) && json.length > 0) return json.toString("utf8").trim()
  if (typeof json === "string" && json.length > 0) return json.trim()
  return errorText(e)
}

export const toFailure = (endpoint: string, operation: string, e: unknown): RuntimeError | HttpStatus => {
  const err = e as Wire
  if (typeof err?.statusCode === "number") {
    return new HttpStatus({ operation, status: err.statusCode, detail: detailOf(err) })
  }
  const code: string | undefined = err?.code ?? err?.cause?.code
  if ((code && connectionCodes.has(code)) || /socket hang up|connect/i.test(errorText(e))) {
    return new DockerUnavailable({ endpoint, cause: code ? `${code}: ${errorText(e)}` : errorText(e) })
  }
  return new DockerApiError({ operation, status: 0, detail: errorText(e) })
}

export interface DialSpec {
  readonly operation: string
  readonly method: "GET" | "POST" | "DELETE" | "PUT" | "HEAD"
  readonly path: string
  readonly query?: Record<string, unknown> | undefined
  readonly body?: unknown
  /** The response body is handed over as a stream instead of being parsed. */
  readonly stream?: boolean
  /** Upgrade the connection (exec start): the raw socket is handed over. */
  readonly hijack?: boolean
  readonly file?: Readable | undefined
  readonly authconfig?: unknown
  readonly headers?: Record<string, string> | undefined
}

export const okStatuses = { 200: true, 201: true, 204: true, 304: true }

export const dropUndefined = (record: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(record)) if (v !== undefined) out[k] = v
  return out
}

/** Docker's `filters` parameter for label filters: `{label: ["k=v", "k"]}`. */
export const labelFilters = (filter?: LabelFilter, always: Record<string, string> = {}): Array<string> => {
  const entries = new Map<string, string | null>(Object.entries(filter?.labels ?? {}))
  for (const [k, v] of Object.entries(always)) entries.set(k, v)
  return Array.from(entries, ([k, v]) => (v === null ? k : `${k}=${v}`))
}

export const filtersQuery = (labels: Array<string>, extra: Record<string, Array<string>> = {}) => {
  const filters: Record<string, Array<string>> = { ...extra }
  if (labels.length > 0) filters.label = labels
  return Object.keys(filters).length > 0 ? JSON.stringify(filters) : undefined
}

/** Epoch ms → Docker's `seconds.nanoseconds` timestamp (always 9 digits, so it is unambiguous). */
export const dockerTimestamp = (ms: number): string => {
  const seconds = Math.floor(ms / 1000)
  const nanos = Math.round((ms - seconds * 1000) * 1e6)
  return `${seconds}.${String(nanos).padStart(9, "0")}`
}

/**
 * Node readable → Stream. Not `Stream.fromAsyncIterable`: an async iterator's `return()` waits for
 * the pending `next()`, so interrupting a silent stream would hang until the engine sent data.
 */
export const nodeStream = <E>(
  readable: NodeJS.ReadableStream,
  onError: (e: unknown) => E
): Stream.Stream<Uint8Array, E> =>
  NodeStream.fromReadable<E, Uint8Array | string>(() => readable, onError).pipe(
    Stream.map((chunk) => (typeof chunk === "string" ? Buffer.from(chunk) : chunk))
  )

/** Newline-delimited JSON (build, pull, events); lines that are not JSON are skipped. */
export const jsonLines = <E>(bytes: Stream.Stream<Uint8Array, E>): Stream.Stream<Wire, E> =>
  bytes.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.filterMap((line) => {
      const trimmed = line.trim()
      if (trimmed.length === 0) return Option.none()
      try {
        return Option.some(JSON.parse(trimmed))
      } catch {
        return Option.none()
      }
    })
  )

/** The engine at one endpoint: `dial` for calls, `dialStream` + `bodyOf` for streamed answers. */
export interface DockerTransport {
  readonly endpoint: string
  readonly callTimeout: Duration.Duration
  readonly dial: <A = Wire>(spec: DialSpec, timeout?: Duration.Duration) => Raw<A>
  /** A streaming response, destroyed when the scope closes. */
  readonly dialStream: (
    spec: DialSpec,
    timeout?: Duration.Duration
  ) => Effect.Effect<IncomingMessage, RuntimeError | HttpStatus, import("effect/Scope").Scope>
  /** Response bytes with the inactivity timeout; connection drops become `DockerUnavailable`. */
  readonly bodyOf: (
    operation: string,
    res: NodeJS.ReadableStream,
    idle?: Duration.Duration
  ) => Stream.Stream<Uint8Array, RuntimeError>
}

/** A transport on the engine at `options.dockerHost`. Connects lazily. */
export const makeTransport = (options: DockerRuntimeOptions = {}): DockerTransport => {
  const { endpoint, options: dockerOptions } = parseDockerHost(options.dockerHost)
  // dockerode (with docker-modem, ssh2 and their dependencies, some 20 MB of heap) is loaded at
  // the first call: a server on the mock engine, or one whose engine is not used yet, never pays it.
  let docker: Promise<Docker> | undefined
  const client = (): Promise<Docker> =>
    (docker ??= import("dockerode").then(({ default: Dockerode }) => new Dockerode(dockerOptions)))
  const callTimeout = Duration.decode(options.timeout ?? Duration.seconds(30))
  const idleTimeout = Duration.decode(options.streamIdleTimeout ?? Duration.minutes(5))

  const dial = <A = Wire>(spec: DialSpec, timeout: Duration.Duration = callTimeout): Raw<A> =>
    Effect.tryPromise({
      try: async (signal) => {
        const engine = await client()
        return new Promise<A>((resolve, reject) => {
          const query = dropUndefined(spec.query ?? {})
          engine.modem.dial(
            {
              path: `${spec.path}?`,
              method: spec.method,
              // docker-modem takes the query from `_query` and the JSON body from `_body`.
              options: { _query: query, _body: spec.body ?? {} },
              isStream: spec.stream === true || spec.hijack === true,
              hijack: spec.hijack,
              file: spec.file,
              authconfig: spec.authconfig,
              headers: spec.headers,
              abortSignal: signal,
              statusCodes: okStatuses
            } as Wire,
            (err: unknown, data: unknown) => (err ? reject(err) : resolve(data as A))
          )
        })
      },
      catch: (e) => toFailure(endpoint, spec.operation, e)
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new DockerTimeout({ operation: spec.operation, timeoutMs: Duration.toMillis(timeout) })
      })
    )

  const dialStream = (spec: DialSpec, timeout: Duration.Duration = callTimeout) =>
    Effect.acquireRelease(dial<IncomingMessage>({ ...spec, stream: true }, timeout), (res) =>
      Effect.sync(() => res.destroy())
    )

  const bodyOf = (operation: string, res: NodeJS.ReadableStream, idle: Duration.Duration = idleTimeout) =>
    nodeStream(res, (e) => toFailure(endpoint, operation, e) as RuntimeError).pipe(
      Stream.timeoutFail(
        () =>
          new DockerTimeout({ operation: `${operation} (stream idle)`, timeoutMs: Duration.toMillis(idle) }),
        idle
      )
    )

  return { endpoint, callTimeout, dial, dialStream, bodyOf }
}

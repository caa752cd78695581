/**
 * Container operations on the Docker engine: create, start, stop, restart, remove, inspect, list,
 * logs, stats and exec, each with what its statuses mean (404 → not found, 409 → wrong state).
 */
import {
  ContainerNotFound,
  DockerTimeout,
  ImageNotFound,
  InvalidContainerState,
  NameConflict,
  NetworkNotFound
} from "@kyozo/api/domain/RuntimeErrors"
import { Chunk, Duration, Effect, Stream } from "effect"

import { type ContainerRuntimeShape, Defaults, type LogLine } from "../ContainerRuntime.js"
import {
  dockerTimestamp,
  type DockerTransport,
  filtersQuery,
  type HttpStatus,
  labelFilters,
  onStatus,
  type Wire
} from "./DockerTransport.js"
import {
  createBody,
  demuxAll,
  Demuxer,
  infoOf,
  splitTimestamp,
  summaryOf,
  toContainerStats
} from "./DockerWire.js"

export const containerNotFound = (id: string) => () => Effect.fail(new ContainerNotFound({ container: id }))

export const notRunning = (id: string, operation: string) => (e: HttpStatus) =>
  Effect.fail(
    new InvalidContainerState({
      container: id,
      state: /paused/i.test(e.detail) ? "paused" : /running/i.test(e.detail) ? "running" : "stopped",
      operation
    })
  )

export type ContainerOperations = Pick<
  ContainerRuntimeShape,
  | "createContainer"
  | "startContainer"
  | "stopContainer"
  | "restartContainer"
  | "removeContainer"
  | "inspectContainer"
  | "listContainers"
  | "logs"
  | "stats"
  | "exec"
>

export const containerOperations = ({
  bodyOf,
  callTimeout,
  dial,
  dialStream
}: DockerTransport): ContainerOperations => {
  const inspectContainer = (id: string) =>
    onStatus(
      dial({
        operation: "inspectContainer",
        method: "GET",
        path: `/containers/${encodeURIComponent(id)}/json`
      }),
      {
        404: containerNotFound(id)
      }
    ).pipe(Effect.map(infoOf))

  const logs: ContainerRuntimeShape["logs"] = (id, logOptions = {}) =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const info = yield* onStatus(
          dial({ operation: "logs", method: "GET", path: `/containers/${encodeURIComponent(id)}/json` }),
          { 404: containerNotFound(id) }
        )
        const res = yield* onStatus(
          dialStream({
            operation: "logs",
            method: "GET",
            path: `/containers/${encodeURIComponent(id)}/logs`,
            query: {
              stdout: true,
              stderr: true,
              timestamps: true,
              follow: logOptions.follow === true,
              tail: logOptions.tail === undefined ? "all" : String(logOptions.tail),
              since: logOptions.since === undefined ? undefined : dockerTimestamp(logOptions.since)
            }
          }),
          { 404: containerNotFound(id) }
        )
        const demuxer = new Demuxer(info.Config?.Tty === true)
        const toLine = (l: { stream: "stdout" | "stderr"; text: string }): LogLine => {
          const { line, timestamp } = splitTimestamp(l.text)
          return { stream: l.stream, timestamp, line }
        }
        return bodyOf("logs", res).pipe(
          Stream.mapConcat((chunk) => demuxer.push(chunk).map(toLine)),
          Stream.concat(Stream.suspend(() => Stream.fromIterable(demuxer.end().map(toLine))))
        )
      })
    )

  const exec: ContainerRuntimeShape["exec"] = (id, cmd, execOptions = {}) => {
    const timeout = execOptions.timeoutMs === undefined ? callTimeout : Duration.millis(execOptions.timeoutMs)
    return Effect.scoped(
      Effect.gen(function* () {
        const created = yield* onStatus(
          dial<{ Id: string }>({
            operation: "exec",
            method: "POST",
            path: `/containers/${encodeURIComponent(id)}/exec`,
            body: { Cmd: cmd, AttachStdout: true, AttachStderr: true, AttachStdin: false, Tty: false }
          }),
          { 404: containerNotFound(id), 409: notRunning(id, "exec") }
        )
        const socket = yield* Effect.acquireRelease(
          onStatus(
            dial<NodeJS.ReadWriteStream & { destroy(): void }>(
              {
                operation: "exec",
                method: "POST",
                path: `/exec/${created.Id}/start`,
                body: { Detach: false, Tty: false },
                hijack: true
              },
              timeout
            ),
            { 404: containerNotFound(id), 409: notRunning(id, "exec") }
          ),
          (s) => Effect.sync(() => s.destroy())
        )
        const chunks = yield* bodyOf("exec", socket, timeout).pipe(Stream.runCollect)
        const output = demuxAll(Buffer.concat(Chunk.toArray(chunks)), false)
        // The exit code can lag the end of the output by a moment.
        const inspect = dial<{ Running: boolean; ExitCode: number | null }>({
          operation: "exec",
          method: "GET",
          path: `/exec/${created.Id}/json`
        })
        let result = yield* onStatus(inspect)
        for (let i = 0; i < 20 && result.Running; i++) {
          yield* Effect.sleep(Duration.millis(50))
          result = yield* onStatus(inspect)
        }
        return { exitCode: result.ExitCode ?? -1, output }
      })
    ).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new DockerTimeout({ operation: "exec", timeoutMs: Duration.toMillis(timeout) })
      })
    )
  }

  return {
    createContainer: (spec) =>
      onStatus(
        dial<{ Id: string }>({
          operation: "createContainer",
          method: "POST",
          path: "/containers/create",
          query: { name: spec.name },
          body: createBody(spec)
        }),
        {
          // 404 on create: the image (or, rarely, the network) is missing.
          404: (e) =>
            Effect.fail(
              /network/i.test(e.detail) && spec.network
                ? new NetworkNotFound({ network: spec.network })
                : new ImageNotFound({ image: spec.image })
            ),
          409: (e) => Effect.fail(new NameConflict({ kind: "container", name: spec.name, detail: e.detail }))
        }
      ).pipe(Effect.map((r) => ({ id: r.Id, name: spec.name }))),

    startContainer: (id) =>
      onStatus(
        dial({
          operation: "startContainer",
          method: "POST",
          path: `/containers/${encodeURIComponent(id)}/start`
        }),
        {
          404: containerNotFound(id),
          409: notRunning(id, "start")
        }
      ).pipe(Effect.asVoid),

    stopContainer: (id, stopOptions) => {
      const t = stopOptions?.timeoutSeconds ?? Defaults.stopTimeoutSeconds
      return onStatus(
        dial(
          {
            operation: "stopContainer",
            method: "POST",
            path: `/containers/${encodeURIComponent(id)}/stop`,
            query: { t }
          },
          Duration.sum(callTimeout, Duration.seconds(t))
        ),
        { 404: containerNotFound(id) }
      ).pipe(Effect.asVoid)
    },

    restartContainer: (id, restartOptions) => {
      const t = restartOptions?.timeoutSeconds ?? Defaults.stopTimeoutSeconds
      return onStatus(
        dial(
          {
            operation: "restartContainer",
            method: "POST",
            path: `/containers/${encodeURIComponent(id)}/restart`,
            query: { t }
          },
          Duration.sum(callTimeout, Duration.seconds(t))
        ),
        { 404: containerNotFound(id) }
      ).pipe(Effect.asVoid)
    },

    removeContainer: (id, removeOptions) =>
      onStatus(
        dial({
          operation: "removeContainer",
          method: "DELETE",
          path: `/containers/${encodeURIComponent(id)}`,
          query: { force: removeOptions?.force === true, v: true }
        }),
        {
          404: () => Effect.void,
          409: (e) => (/already in progress/i.test(e.detail) ? Effect.void : notRunning(id, "remove")(e))
        }
      ).pipe(Effect.asVoid),

    inspectContainer,

    listContainers: (filter) =>
      onStatus(
        dial<Array<Wire>>({
          operation: "listContainers",
          method: "GET",
          path: "/containers/json",
          query: { all: filter?.all === true, filters: filtersQuery(labelFilters(filter)) }
        })
      ).pipe(Effect.map((list) => list.map(summaryOf))),

    logs,

    stats: (id) =>
      onStatus(
        dial({
          operation: "stats",
          method: "GET",
          path: `/containers/${encodeURIComponent(id)}/stats`,
          query: { stream: false, "one-shot": true }
        }),
        { 404: containerNotFound(id) }
      ).pipe(Effect.map((s) => toContainerStats(id, s))),

    exec
  }
}

/**
 * Image operations on the Docker engine: build (whose errors arrive inside a 200 stream), pull,
 * push, inspect, tag, list, remove, pruning of Kyozo's images by label, and the build cache's budget.
 */
import { Readable } from "node:stream"

import {
  BuildFailed,
  DockerApiError,
  DockerTimeout,
  ImageNotFound,
  type RuntimeError
} from "@kyozo/api/domain/RuntimeErrors"
import { Duration, Effect, Stream } from "effect"

import { traceReader } from "../BuildkitTrace.js"
import type { BuildEvent, ContainerRuntimeShape, PruneReport, PullEvent } from "../ContainerRuntime.js"
import { labelsFor, Managed } from "../Labels.js"
import {
  type DockerTransport,
  errorText,
  filtersQuery,
  type HttpStatus,
  jsonLines,
  labelFilters,
  onStatus,
  type Wire
} from "./DockerTransport.js"
import { imageInfoOf, imageSummaryOf, splitRef } from "./DockerWire.js"

const tailSize = 30

const pruneReport = (removed: Array<string>, reclaimed: unknown): PruneReport => ({
  removed,
  reclaimedBytes: typeof reclaimed === "number" ? reclaimed : 0
})

/** One progress line of a pull or push; errors arrive inside the 200 stream as `error` lines. */
const progressOf =
  (onError: (detail: string) => RuntimeError) =>
  (msg: Wire): Effect.Effect<PullEvent, RuntimeError> =>
    msg.error || msg.errorDetail
      ? Effect.fail(onError(String(msg.errorDetail?.message ?? msg.error)))
      : Effect.succeed(
          typeof msg.id === "string"
            ? { _tag: "Progress", status: String(msg.status ?? ""), id: msg.id }
            : { _tag: "Progress", status: String(msg.status ?? "") }
        )

export type ImageOperations = Pick<
  ContainerRuntimeShape,
  | "buildImage"
  | "pullImage"
  | "pushImage"
  | "inspectImage"
  | "tagImage"
  | "listImages"
  | "removeImage"
  | "pruneImages"
  | "pruneBuildCache"
>

export const imageOperations = (
  { bodyOf, callTimeout, dial, dialStream }: DockerTransport,
  preferred: "buildkit" | "classic" = "buildkit"
): ImageOperations => {
  /** Classic when configured so, or once the engine refused a BuildKit build (then for every later one). */
  const builder = { classicOnly: preferred === "classic" }
  const inspectImage = (ref: string) =>
    onStatus(
      dial({ operation: "inspectImage", method: "GET", path: `/images/${encodeURIComponent(ref)}/json` }),
      {
        404: () => Effect.fail(new ImageNotFound({ image: ref }))
      }
    ).pipe(Effect.map(imageInfoOf))

  const buildImage: ContainerRuntimeShape["buildImage"] = (build) =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const deadline = Duration.millis(build.timeoutMs ?? 10 * 60_000)
        const tail: Array<string> = []
        const remember = (text: string) => {
          for (const line of text.split("\n")) {
            const trimmed = line.trimEnd()
            if (trimmed.length === 0) continue
            tail.push(trimmed)
            if (tail.length > tailSize) tail.shift()
          }
        }
        let contextError: unknown = undefined
        let imageId: string | undefined = undefined
        const failed = (reason: string) => new BuildFailed({ image: build.tag, reason, logTail: [...tail] })

        // A failing context stream must end the upload with an error, not with a short tar.
        const contextStream = () =>
          Readable.from(
            (async function* () {
              try {
                for await (const chunk of Stream.toAsyncIterable(build.context)) yield Buffer.from(chunk)
              } catch (e) {
                contextError = e
                throw e
              }
            })(),
            { objectMode: false }
          )
        const contextFailure = (e: RuntimeError): RuntimeError =>
          contextError === undefined
            ? e
            : failed(`the build context could not be read: ${errorText(contextError)}`)

        // BuildKit (`version=2`) takes the same tar body and runs metadata-only steps (ENV, USER,
        // LABEL, ...) without a container commit each, which the classic builder needs (~40-90 ms
        // per step). An engine without BuildKit refuses it before reading the body: classic then.
        const request = (buildkit: boolean) =>
          dialStream(
            {
              operation: "buildImage",
              method: "POST",
              path: "/build",
              file: contextStream(),
              headers: { "Content-Type": "application/x-tar" },
              query: {
                t: build.tag,
                dockerfile: build.dockerfile,
                labels: build.labelsInDockerfile
                  ? undefined
                  : JSON.stringify(labelsFor({}, build.labels ?? {})),
                buildargs: build.buildArgs ? JSON.stringify(build.buildArgs) : undefined,
                rm: true,
                forcerm: true,
                version: buildkit ? "2" : undefined
              }
            },
            deadline
          )
        const res = yield* onStatus(
          builder.classicOnly
            ? request(false)
            : request(true).pipe(
                Effect.catchIf(
                  (e): e is HttpStatus =>
                    e._tag === "HttpStatus" && /buildkit|builder version|not supported/i.test(e.detail),
                  () => {
                    builder.classicOnly = true
                    return request(false)
                  }
                )
              ),
          { 400: (e) => Effect.fail(failed(e.detail)) }
        ).pipe(Effect.mapError(contextFailure))

        const trace = traceReader()
        const steps = jsonLines(bodyOf("buildImage", res, deadline)).pipe(
          Stream.mapEffect((msg: Wire): Effect.Effect<ReadonlyArray<BuildEvent>, RuntimeError> => {
            if (msg.error || msg.errorDetail) {
              const reason = String(msg.errorDetail?.message ?? msg.error)
              remember(reason)
              return Effect.fail(failed(reason))
            }
            if (typeof msg.aux?.ID === "string") imageId = msg.aux.ID
            if (msg.id === "moby.buildkit.trace" && typeof msg.aux === "string") {
              const lines = trace(msg.aux)
              for (const line of lines) remember(line)
              return Effect.succeed(lines.map((line) => ({ _tag: "Step", line }) as const))
            }
            const text =
              typeof msg.stream === "string"
                ? msg.stream
                : typeof msg.status === "string"
                  ? msg.status
                  : undefined
            if (text === undefined || text.trim().length === 0) return Effect.succeed([])
            remember(text)
            return Effect.succeed([{ _tag: "Step", line: text.trimEnd() } as const])
          }),
          Stream.flattenIterables,
          Stream.mapError(contextFailure)
        )
        const built = Stream.fromEffect(
          Effect.suspend(() =>
            imageId !== undefined
              ? Effect.succeed(imageId)
              : inspectImage(build.tag).pipe(
                  Effect.map((i) => i.id),
                  Effect.catchTag("ImageNotFound", () =>
                    Effect.fail(failed("the engine ended the build without producing an image"))
                  )
                )
          ).pipe(Effect.map((id): BuildEvent => ({ _tag: "Built", imageId: id, tag: build.tag })))
        )
        return Stream.concat(steps, built).pipe(
          Stream.interruptWhen(
            Effect.sleep(deadline).pipe(
              Effect.zipRight(
                Effect.fail(
                  new DockerTimeout({ operation: "buildImage", timeoutMs: Duration.toMillis(deadline) })
                )
              )
            )
          )
        )
      })
    )

  const pullImage: ContainerRuntimeShape["pullImage"] = (ref, pullOptions) =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const { repo, tag } = splitRef(ref)
        const res = yield* onStatus(
          dialStream({
            operation: "pullImage",
            method: "POST",
            path: "/images/create",
            query: { fromImage: repo, tag },
            authconfig: pullOptions?.auth
          }),
          { 404: () => Effect.fail(new ImageNotFound({ image: ref })) }
        )
        return jsonLines(bodyOf("pullImage", res)).pipe(
          Stream.mapEffect(
            progressOf((detail) =>
              /not found|does not exist|manifest unknown/i.test(detail)
                ? new ImageNotFound({ image: ref })
                : new DockerApiError({ operation: "pullImage", status: 200, detail })
            )
          )
        )
      })
    )

  const pushImage: ContainerRuntimeShape["pushImage"] = (ref, pushOptions) =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const { repo, tag } = splitRef(ref)
        const res = yield* onStatus(
          dialStream({
            operation: "pushImage",
            method: "POST",
            path: `/images/${encodeURIComponent(repo)}/push`,
            query: { tag },
            // The engine insists on the header even for registries without auth.
            authconfig: pushOptions?.auth ?? {}
          }),
          { 404: () => Effect.fail(new ImageNotFound({ image: ref })) }
        )
        return jsonLines(bodyOf("pushImage", res)).pipe(
          Stream.mapEffect(
            progressOf((detail) => new DockerApiError({ operation: "pushImage", status: 200, detail }))
          )
        )
      })
    )

  return {
    buildImage,
    pullImage,
    pushImage,
    inspectImage,

    tagImage: (ref, target) => {
      const { repo, tag } = splitRef(target)
      return onStatus(
        dial({
          operation: "tagImage",
          method: "POST",
          path: `/images/${encodeURIComponent(ref)}/tag`,
          query: { repo, tag }
        }),
        { 404: () => Effect.fail(new ImageNotFound({ image: ref })) }
      ).pipe(Effect.asVoid)
    },

    listImages: (filter) =>
      onStatus(
        dial<Array<Wire>>({
          operation: "listImages",
          method: "GET",
          path: "/images/json",
          query: { filters: filtersQuery(labelFilters(filter)) }
        })
      ).pipe(Effect.map((list) => list.map(imageSummaryOf))),

    removeImage: (ref, removeOptions) =>
      onStatus(
        dial({
          operation: "removeImage",
          method: "DELETE",
          path: `/images/${encodeURIComponent(ref)}`,
          query: { force: removeOptions?.force === true }
        }),
        { 404: () => Effect.void }
      ).pipe(Effect.asVoid),

    pruneImages: (filter) =>
      onStatus(
        dial<{
          ImagesDeleted: Array<{ Deleted?: string; Untagged?: string }> | null
          SpaceReclaimed: number
        }>(
          {
            operation: "pruneImages",
            method: "POST",
            path: "/images/prune",
            // Unused kyozo images, tagged or not; never anything without kyozo.managed=true.
            query: {
              filters: filtersQuery(labelFilters(filter, { [Managed]: "true" }), { dangling: ["false"] })
            }
          },
          Duration.sum(callTimeout, Duration.minutes(2))
        )
      ).pipe(
        Effect.map((r) =>
          pruneReport(
            (r.ImagesDeleted ?? []).flatMap((d) => (d.Deleted ? [d.Deleted] : [])),
            r.SpaceReclaimed
          )
        )
      ),

    pruneBuildCache: (budget) =>
      onStatus(
        dial<{ CachesDeleted: Array<string> | null; SpaceReclaimed: number }>(
          {
            operation: "pruneBuildCache",
            method: "POST",
            path: "/build/prune",
            // No label filter: the engine's build cache has no labels, and a label filter it does not
            // understand prunes every unused entry on the host (seen on Docker 20.10).
            query: { "keep-storage": Math.max(0, Math.floor(budget.keepBytes)) }
          },
          Duration.sum(callTimeout, Duration.minutes(2))
        )
      ).pipe(Effect.map((r) => pruneReport(r.CachesDeleted ?? [], r.SpaceReclaimed)))
  }
}

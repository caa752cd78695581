/**
 * `POST /v1/uploads`: a folder arrives as a tar (optionally gzip) body and is extracted, checked
 * entry by entry, into `<dataDir>/uploads/<teamId>/<uploadId>` (see core `Uploads`). The answer,
 * `201 { uploadId, files, bytes }`, is what `Deploy { source: { _tag: "Upload", uploadId } }` takes.
 * Errors use the JSON:API shape `{ errors: [{ status, code, title, detail }] }`: an empty body is a
 * 400, a body that is not a tar (by its content type) a 415, a viewer a 403 (unless `?service=<name>`
 * names a service it holds a deploy grant on), a team over its upload
 * quota a 413 (rules in `application/UploadPolicy`).
 */
import * as fs from "node:fs/promises"

import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import * as UploadArchive from "@kyozo/core/sources/UploadArchive"
import * as Uploads from "@kyozo/core/sources/Uploads"
import { Duration, Effect, Exit, Layer, Queue, Stream, Take } from "effect"

import { UploadPolicy } from "./application/UploadPolicy.js"
import { makeAuthenticate } from "./Auth.js"
import { tooManyRequests } from "./RateLimit.js"

export const errorResponse = (status: number, code: string, title: string, detail: string) =>
  HttpServerResponse.unsafeJson({ errors: [{ status: String(status), code, title, detail }] }, { status })

/** UploadArchive words its limit rejections "larger than N bytes" / "more than N entries". */
const overLimit = (reason: string): boolean => /larger than \d+ bytes|more than \d+ entries/.test(reason)

/**
 * The body as a stream that keeps reading after the consumer stops: when extraction rejects an
 * archive early, the rest of the body is still read (and dropped), so the client sees the 4xx
 * instead of a connection reset in the middle of its upload.
 */
const decoupled = <E>(body: Stream.Stream<Uint8Array, E>) =>
  Effect.gen(function* () {
    const queue = yield* Queue.bounded<Take.Take<Uint8Array, E>>(16)
    let consumerGone = false
    yield* body.pipe(
      Stream.runForEach((chunk) => (consumerGone ? Effect.void : Queue.offer(queue, Take.of(chunk)))),
      Effect.exit,
      Effect.flatMap((exit) =>
        consumerGone
          ? Effect.void
          : Queue.offer(
              queue,
              Exit.match(exit, { onSuccess: () => Take.end, onFailure: (cause) => Take.failCause(cause) })
            )
      ),
      Effect.timeout(Duration.minutes(10)),
      Effect.ignore,
      Effect.forkDaemon
    )
    // Emptying the queue frees an offer blocked on it; later chunks are dropped, never offered.
    const stop = Effect.sync(() => {
      consumerGone = true
    }).pipe(Effect.zipRight(Queue.takeAll(queue)))
    return { stream: Stream.flattenTake(Stream.fromQueue(queue)), stop }
  })

/** Content types of a tar body (a missing one is taken as a tar, as curl --data-binary sends). */
const TAR_TYPES = [
  "application/x-tar",
  "application/tar",
  "application/gzip",
  "application/x-gzip",
  "application/x-compressed-tar",
  "application/octet-stream"
]

const removeQuietly = (dir: string) =>
  Effect.promise(() => fs.rm(dir, { recursive: true, force: true }).catch(() => undefined))

export const layer = Layer.unwrapEffect(
  Effect.gen(function* () {
    const authenticate = yield* makeAuthenticate
    const config = yield* KyozoConfig
    const policy = yield* UploadPolicy
    // Optional overrides of UploadArchive's defaults (200 MiB, 20 000 entries).
    const limits: UploadArchive.UploadLimits = {
      ...(config.uploadMaxBytes === undefined ? {} : { maxBytes: config.uploadMaxBytes }),
      ...(config.uploadMaxFiles === undefined ? {} : { maxFiles: config.uploadMaxFiles })
    }
    return HttpLayerRouter.add("POST", "/v1/uploads", (request: HttpServerRequest.HttpServerRequest) =>
      Effect.gen(function* () {
        const principal = yield* authenticate(request.headers["authorization"])
        // The service the folder is for, when named: a per-service deploy grant covers its upload.
        const service = new URL(request.url, "http://kyozo").searchParams.get("service")
        yield* policy.requireUpload(principal, service === null || service === "" ? undefined : service)
        const contentType = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
        if (contentType !== "" && !TAR_TYPES.includes(contentType))
          return errorResponse(
            415,
            "UnsupportedMediaType",
            "Unsupported media type",
            `Send the folder as a tar (optionally gzipped): content-type ${TAR_TYPES[0]}.`
          )
        const length = Number(request.headers["content-length"] ?? "NaN")
        if (length === 0)
          return errorResponse(
            400,
            "EmptyUpload",
            "Empty upload",
            "The body is empty: send the folder as a tar."
          )
        yield* policy.checkQuota(principal.teamId, Number.isFinite(length) ? length : 0)
        const uploadId = Uploads.makeUploadId()
        // makeUploadId always yields a valid id, so the directory is always defined.
        const dir = Uploads.uploadDir(config.dataDir, principal.teamId, uploadId)!
        const body = yield* decoupled(request.stream)
        const result = yield* UploadArchive.extract(body.stream, dir, limits).pipe(
          Effect.ensuring(body.stop),
          // A rejected or broken archive leaves nothing behind.
          Effect.tapError(() => removeQuietly(dir)),
          Effect.onInterrupt(() => removeQuietly(dir))
        )
        yield* policy
          .commit(principal.teamId, uploadId, result.bytes)
          .pipe(Effect.tapError(() => removeQuietly(dir)))
        yield* Effect.logInfo(`upload ${uploadId}: ${result.files} files, ${result.bytes} bytes`).pipe(
          Effect.annotateLogs({ teamId: principal.teamId })
        )
        return HttpServerResponse.unsafeJson(
          { uploadId, files: result.files, bytes: result.bytes },
          { status: 201 }
        )
      }).pipe(
        Effect.catchTags({
          Unauthorized: (e) => Effect.succeed(errorResponse(401, "Unauthorized", "Unauthorized", e.message)),
          RateLimited: (e) => Effect.succeed(tooManyRequests(e)),
          Forbidden: (e) => Effect.succeed(errorResponse(403, "Forbidden", "Forbidden", e.message)),
          UploadQuotaExceeded: (e) =>
            Effect.succeed(errorResponse(413, "UploadQuotaExceeded", "Upload quota exceeded", e.message)),
          UploadRejected: (e) =>
            Effect.succeed(
              overLimit(e.reason)
                ? errorResponse(413, "UploadTooLarge", "Upload too large", e.message)
                : errorResponse(400, "UploadRejected", "Upload rejected", e.message)
            ),
          RequestError: (e) =>
            Effect.succeed(errorResponse(400, "BadRequest", "Unreadable request body", e.message))
        })
      )
    )
  })
)

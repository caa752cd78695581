/**
 * Content-addressed images: the tag of a service's image is derived from the hash of its build
 * context (`kyozo/<serviceId>:<16 hex>`), so "is this version already built?" is one
 * `inspectImage`. An unchanged redeploy builds nothing.
 *
 * Builds for the same tag are serialised (a per-tag semaphore): the second caller finds the image
 * the first one built instead of building it again.
 */
import * as fs from "node:fs"
import * as path from "node:path"

import {
  BaseImageUnavailable,
  BuildFailed,
  ImageNotFound,
  type RuntimeError
} from "@kyozo/api/domain/RuntimeErrors"
import { Duration, Effect, Option, Stream } from "effect"

import { ContainerRuntime, type ImageInfo } from "../engine/ContainerRuntime.js"
import { labelsFor, Service } from "../engine/Labels.js"
import { type BuildContextError, BuildContextUnreadable, fromFolder } from "./BuildContext.js"
import {
  BASE_IMAGE_KEYS,
  type BaseImageKey,
  type BaseImageMap,
  BaseImages,
  LOCAL_BASE_IMAGES
} from "./dockerfile/BaseImages.js"
import {
  BUILD_CA_CONTEXT_FILE,
  BuildSettings,
  type BuildSettingsShape,
  loadBuildSettings
} from "./dockerfile/BuildSettings.js"
import { type DockerfileBuildOptions, generateDockerfile } from "./dockerfile/DockerfileGenerator.js"
import { Registries } from "./Registries.js"
import type { PlannedService } from "./topology/Topology.js"

export const ContextHashLabel = "kyozo.context-hash"
/** The generated Dockerfile's name in the context: a user's own `Dockerfile` is never replaced. */
export const GENERATED_DOCKERFILE = "Dockerfile.kyozo"
const LOG_TAIL = 50

export interface EnsureImageInput {
  readonly serviceId: string
  readonly teamId: string
  /** The folder the topology was detected in; the service's `path` is relative to it. */
  readonly root: string
  readonly planned: PlannedService
  /** Build output, one line at a time, as the engine sends it. */
  readonly onLog?: (line: string) => Effect.Effect<void>
  /** Extra labels on a built image (tests mark their objects with them). */
  readonly labels?: Record<string, string>
  readonly timeoutMs?: number
}

export interface EnsuredImage {
  /** Tag to create containers from (or the image reference of an image-only service). */
  readonly image: string
  /** Context hash (built images) or image id (image-only services). */
  readonly hash: string
  /** False when an image with this hash already existed: nothing was built. */
  readonly built: boolean
  readonly contextBytes: number
  readonly logTail: ReadonlyArray<string>
}

/** `LABEL "k"="v" …` for a Dockerfile (JSON strings are valid Dockerfile quoting). */
const labelLine = (labels: Record<string, string>): string =>
  `LABEL ${Object.entries(labels)
    .map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`)
    .join(" ")}`

/** Docker repository names are lower case `[a-z0-9._-]`; ids are already close to that. */
export const repositoryFor = (serviceId: string): string =>
  `kyozo/${
    serviceId
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, "-")
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "") || "service"
  }`

export const imageTagFor = (serviceId: string, hash: string): string =>
  `${repositoryFor(serviceId)}:${hash.slice(0, 16).toLowerCase()}`

/** The Dockerfile of a "dockerfile" service, relative to its path: from detection evidence, else "Dockerfile". */
const dockerfileOf = (planned: PlannedService): string => {
  const ev = planned.service.evidence.find((e) => e.detail.startsWith("Dockerfile present"))
  if (!ev) return "Dockerfile"
  const servicePath = planned.service.path === "." ? "" : planned.service.path
  const rel = path.posix.relative(servicePath, ev.file)
  return rel === "" || rel.startsWith("..") ? "Dockerfile" : rel
}

/** A user's Dockerfile as text (only read to name a base image that failed to pull). */
const userDockerfile = (contextDir: string, dockerfile: string): string => {
  try {
    return fs.readFileSync(path.join(contextDir, dockerfile), "utf8")
  } catch {
    return ""
  }
}

/** The images a Dockerfile builds FROM (stage names excluded). */
export const fromImages = (dockerfile: string): Array<string> => {
  const stages = new Set<string>()
  const out: Array<string> = []
  for (const m of dockerfile.matchAll(/^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/gim)) {
    const ref = m[1]!
    if (!stages.has(ref.toLowerCase()) && !out.includes(ref)) out.push(ref)
    if (m[2]) stages.add(m[2].toLowerCase())
  }
  return out
}

/** How an image reference shows in an engine's pull error: `library/node/manifests/20`, `docker.io/library/node:20`. */
const pullNames = (ref: string): Array<string> => {
  const at = ref.indexOf("@")
  const colon = ref.lastIndexOf(":")
  const [name, tag] =
    at >= 0
      ? [ref.slice(0, at), ref.slice(at + 1)]
      : colon > ref.lastIndexOf("/")
        ? [ref.slice(0, colon), ref.slice(colon + 1)]
        : [ref, "latest"]
  const parts = name.split("/")
  const hasHost = parts.length > 1 && /[.:]|^localhost$/.test(parts[0]!)
  const repo = hasHost ? parts.slice(1).join("/") : parts.length === 1 ? `library/${name}` : name
  return [`${repo}/manifests/${tag}`, `${hasHost ? parts[0] : "docker.io"}/${repo}:${tag}`]
}

/**
 * A failure of a FROM that could not pull: the image it named, else undefined. The classic builder
 * names it in its `Step n/m : FROM x` line; BuildKit only in the error (or its "load metadata for"
 * line), so the Dockerfile's FROM images (`candidates`) are matched against those.
 */
export const pullFailureImage = (
  reason: string,
  logTail: ReadonlyArray<string>,
  candidates: ReadonlyArray<string> = []
): string | undefined => {
  if (
    !/registry|pull access denied|manifest|dial tcp|no such host|not found|unauthorized|connection refused/i.test(
      reason
    )
  )
    return undefined
  const step = [...logTail].reverse().find((l) => /^Step \d+\/\d+ : /i.test(l))
  const classic = step ? /^Step \d+\/\d+ : FROM\s+(?:--platform=\S+\s+)?(\S+)/i.exec(step)?.[1] : undefined
  if (classic !== undefined || step !== undefined) return classic
  const names = (text: string) =>
    candidates.filter((ref) => text.includes(ref) || pullNames(ref).some((n) => text.includes(n)))
  // The error names the image; the "load metadata for" lines list every FROM, so they decide only alone.
  const inReason = names(reason)
  if (inReason.length > 0) return inReason[0]
  const loading = names(logTail.filter((l) => /load metadata for /i.test(l)).join("\n"))
  return loading.length === 1 ? loading[0] : undefined
}

/** How long a "cannot be pulled, use the local image" decision is reused before pulling again. */
const withStandIn = (images: BaseImageMap, keys: ReadonlyArray<BaseImageKey>, local: string): BaseImageMap =>
  Object.assign({}, images, Object.fromEntries(keys.map((k) => [k, local]))) as BaseImageMap

const FALLBACK_TTL = Duration.toMillis("10 minutes")

export class ImageBuilder extends Effect.Service<ImageBuilder>()("@kyozo/core/ImageBuilder", {
  effect: Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const { images: baseImages } = yield* BaseImages
    // Optional, like Registries: layers built without it read the same variables directly.
    const configured = yield* Effect.serviceOption(BuildSettings)
    const settings: BuildSettingsShape = Option.isSome(configured)
      ? configured.value
      : yield* Effect.orDie(loadBuildSettings)
    const buildOptions: DockerfileBuildOptions = {
      ca: settings.ca !== undefined,
      ...(settings.npmRegistry ? { npmRegistry: settings.npmRegistry } : {}),
      ...(settings.pipIndexUrl ? { pipIndexUrl: settings.pipIndexUrl } : {}),
      ...(settings.pipFindLinks ? { pipFindLinks: settings.pipFindLinks } : {})
    }
    /** Configured base image → local stand-in, decided when the configured one could not be pulled. */
    const standIns = new Map<string, { readonly local: string; readonly at: number }>()
    // Optional: without registry configuration images stay on the engine only.
    const registries = Option.getOrUndefined(yield* Effect.serviceOption(Registries))

    const locks = new Map<string, { readonly sem: Effect.Semaphore; users: number }>()
    const withTagLock = <A, E, R>(tag: string, effect: Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          let lock = locks.get(tag)
          if (!lock) {
            lock = { sem: Effect.unsafeMakeSemaphore(1), users: 0 }
            locks.set(tag, lock)
          }
          lock.users++
          return lock
        }),
        (lock) => lock.sem.withPermits(1)(effect),
        (lock) =>
          Effect.sync(() => {
            if (--lock.users === 0) locks.delete(tag)
          })
      )

    const existing = (ref: string) =>
      runtime.inspectImage(ref).pipe(
        Effect.asSome,
        Effect.catchTag("ImageNotFound", () => Effect.succeedNone)
      )

    const ensureImageOnly = (input: EnsureImageInput) =>
      Effect.gen(function* () {
        const ref = input.planned.service.image
        if (!ref) return yield* new ImageNotFound({ image: `(no image for ${input.planned.service.name})` })
        const found = yield* existing(ref)
        if (found._tag === "Some") {
          return { image: ref, hash: found.value.id, built: false, contextBytes: 0, logTail: [] }
        }
        const tail: Array<string> = []
        // No registry may be reachable: a failed pull means the image is simply not available.
        const auth = registries?.authFor(input.teamId, ref)
        yield* runtime.pullImage(ref, auth ? { auth } : undefined).pipe(
          Stream.runForEach((p) =>
            Effect.suspend(() => {
              const line = p.id ? `${p.id}: ${p.status}` : p.status
              tail.push(line)
              if (tail.length > LOG_TAIL) tail.shift()
              return input.onLog ? input.onLog(line) : Effect.void
            })
          ),
          Effect.catchTags({
            DockerApiError: (e) =>
              Effect.logWarning(`pull of ${ref} failed: ${e.detail}`).pipe(
                Effect.zipRight(Effect.fail(new ImageNotFound({ image: ref })))
              )
          })
        )
        const pulled = yield* runtime.inspectImage(ref)
        return { image: ref, hash: pulled.id, built: true, contextBytes: 0, logTail: tail }
      })

    /**
     * With a push registry configured for the team, the new image also goes there. A failed push
     * is reported in the build log and the log, not fatal: the image is on this engine.
     */
    const pushToTeamRegistry = (input: EnsureImageInput, tag: string) => {
      const target = registries?.pushTarget(input.teamId)
      if (!target) return Effect.void
      const remote = target.ref(tag)
      const say = (line: string) => (input.onLog ? input.onLog(line) : Effect.void)
      return runtime.tagImage(tag, remote).pipe(
        Effect.zipRight(say(`pushing ${remote}`)),
        Effect.zipRight(runtime.pushImage(remote, { auth: target.auth }).pipe(Stream.runDrain)),
        Effect.zipRight(say(`pushed ${remote}`)),
        Effect.catchAll((e) =>
          say(`push of ${remote} failed: ${e.message}`).pipe(
            Effect.zipRight(Effect.logWarning(`push of ${remote} failed`, e))
          )
        )
      )
    }

    const ensureBuilt = (input: EnsureImageInput) =>
      Effect.gen(function* () {
        const { planned } = input
        const root = path.resolve(input.root)
        const contextDir = path.resolve(root, planned.service.path)
        const rel = path.relative(root, contextDir)
        if (rel.startsWith("..") || path.isAbsolute(rel)) {
          // A compose `build.context` may point anywhere; only the deployed folder is ever sent.
          return yield* new BuildContextUnreadable({
            folder: planned.service.path,
            path: "",
            reason: "the service's build context is outside the deployed folder"
          })
        }
        const say = (line: string) => (input.onLog ? input.onLog(line) : Effect.void)
        /** One build on a base-image map; generated Dockerfiles may be rebuilt on local stand-ins. */
        const attempt = (
          images: BaseImageMap,
          tries: number
        ): Effect.Effect<EnsuredImage, RuntimeError | BuildContextError> =>
          Effect.gen(function* () {
            const generated = generateDockerfile(planned, images, buildOptions)
            const ownership = {
              ...input.labels,
              ...labelsFor({ serviceId: input.serviceId, teamId: input.teamId })
            }
            const context = yield* fromFolder(
              contextDir,
              generated
                ? {
                    // One LABEL line in our own Dockerfile: the classic builder turns every build-time
                    // label into a step of its own (~90 ms each).
                    extraFiles: {
                      ...planned.hints?.contextFiles,
                      [GENERATED_DOCKERFILE]: `${generated.content.trimEnd()}\n${labelLine(ownership)}\n`,
                      // Build stages only: the generated Dockerfile keeps it out of the final image.
                      ...(generated.usesBuildCa && settings.ca
                        ? { [BUILD_CA_CONTEXT_FILE]: settings.ca.pem }
                        : {})
                    },
                    // The name is Kyozo's own: a stale copy in the folder must not win over the fresh one.
                    replaceExisting: true,
                    dockerfile: GENERATED_DOCKERFILE
                  }
                : { dockerfile: dockerfileOf(planned) }
            )
            const tag = imageTagFor(input.serviceId, context.hash)
            return yield* withTagLock(
              tag,
              Effect.gen(function* () {
                const found = yield* existing(tag)
                if (found._tag === "Some") {
                  return {
                    image: tag,
                    hash: context.hash,
                    built: false,
                    contextBytes: context.sizeBytes,
                    logTail: []
                  } satisfies EnsuredImage
                }
                const tail: Array<string> = []
                let builtId: string | undefined
                yield* runtime
                  .buildImage({
                    context: context.tar,
                    tag,
                    dockerfile: context.dockerfile,
                    // A generated Dockerfile labels the image itself (its LABEL line); the tag names
                    // the context hash. A user's Dockerfile gets the labels at build time.
                    ...(generated
                      ? { labels: ownership, labelsInDockerfile: true }
                      : { labels: { ...ownership, [ContextHashLabel]: context.hash } }),
                    ...(input.timeoutMs !== undefined ? { timeoutMs: input.timeoutMs } : {})
                  })
                  .pipe(
                    Stream.runForEach((event) =>
                      Effect.suspend(() => {
                        if (event._tag === "Built") {
                          builtId = event.imageId
                          return Effect.void
                        }
                        tail.push(event.line)
                        if (tail.length > LOG_TAIL) tail.shift()
                        return input.onLog ? input.onLog(event.line) : Effect.void
                      })
                    ),
                    // A FROM the engine could not pull (a user's Dockerfile on a host without a registry).
                    Effect.catchTag(
                      "BuildFailed",
                      (e): Effect.Effect<never, BuildFailed | BaseImageUnavailable> => {
                        const image = pullFailureImage(
                          e.reason,
                          e.logTail.length > 0 ? e.logTail : tail,
                          fromImages(generated?.content ?? userDockerfile(contextDir, context.dockerfile))
                        )
                        return image === undefined
                          ? Effect.fail(e)
                          : Effect.fail(
                              new BaseImageUnavailable({
                                image,
                                key: BASE_IMAGE_KEYS.find((k) => baseImages[k] === image) ?? null,
                                reason: /not found|does not exist/i.test(e.reason)
                                  ? "NotFound"
                                  : "PullFailed",
                                detail: e.reason
                              })
                            )
                      }
                    )
                  )
                if (builtId === undefined) {
                  return yield* new BuildFailed({
                    image: tag,
                    reason: "the engine ended the build without producing an image",
                    logTail: tail
                  })
                }
                yield* pushToTeamRegistry(input, tag)
                return {
                  image: tag,
                  hash: context.hash,
                  built: true,
                  contextBytes: context.sizeBytes,
                  logTail: tail
                } satisfies EnsuredImage
              })
            )
          }).pipe(
            // A FROM of a generated Dockerfile could not be pulled: the local base image of its key
            // stands in (remembered, so the next deploy starts from it and reuses the image).
            Effect.catchTag("BaseImageUnavailable", (e) =>
              Effect.gen(function* () {
                if (!planned.hints || tries >= BASE_IMAGE_KEYS.length) return yield* Effect.fail(e)
                const keys = BASE_IMAGE_KEYS.filter((k) => images[k] === e.image)
                const local = keys
                  .map((k) => LOCAL_BASE_IMAGES[k])
                  .find((l) => l !== undefined && l !== e.image)
                if (local === undefined || (yield* existing(local))._tag === "None")
                  return yield* Effect.fail(e)
                standIns.set(e.image, { local, at: Date.now() })
                yield* say(
                  `base image ${e.image} cannot be pulled (${e.detail}): building on the local ${local}`
                )
                yield* Effect.logWarning(`base image ${e.image} cannot be pulled; using ${local}`)
                return yield* attempt(withStandIn(images, keys, local), tries + 1)
              })
            )
          )
        // Stand-ins decided lately apply from the start: the same Dockerfile, the same image tag.
        let images: BaseImageMap = baseImages
        for (const [ref, standIn] of standIns) {
          if (Date.now() - standIn.at > FALLBACK_TTL) standIns.delete(ref)
          else
            images = withStandIn(
              images,
              BASE_IMAGE_KEYS.filter((k) => baseImages[k] === ref),
              standIn.local
            )
        }
        return yield* attempt(images, 0)
      })

    /** The image for a planned service: reused when its context hash is already built, else built. */
    const ensureImage = (
      input: EnsureImageInput
    ): Effect.Effect<EnsuredImage, RuntimeError | BuildContextError> =>
      (input.planned.service.kind === "image" ? ensureImageOnly(input) : ensureBuilt(input)).pipe(
        Effect.withSpan("ImageBuilder.ensureImage", {
          attributes: { serviceId: input.serviceId, service: input.planned.service.name }
        })
      )

    /** Images of a service, newest first. */
    const retained = (serviceId: string): Effect.Effect<ReadonlyArray<ImageInfo>, RuntimeError> =>
      runtime.listImages({ labels: { [Service]: serviceId } }).pipe(
        // List summaries carry whole seconds only: inspect for the precise creation time.
        Effect.flatMap((list) =>
          Effect.forEach(
            list,
            (image) =>
              runtime.inspectImage(image.id).pipe(
                Effect.map((info) => ({ ...image, createdAt: Math.max(image.createdAt, info.createdAt) })),
                Effect.catchTag("ImageNotFound", () => Effect.succeed(image))
              ),
            { concurrency: 4 }
          )
        ),
        Effect.map((list) => [...list].sort((a, b) => b.createdAt - a.createdAt))
      )

    /**
     * Removes a service's images beyond the newest `keep`, never one named in `protect` (by tag or
     * id). An image still used by a container is skipped, not forced.
     */
    const pruneRetained = (
      serviceId: string,
      keep: number,
      protect: ReadonlyArray<string> = []
    ): Effect.Effect<
      { readonly removed: ReadonlyArray<string>; readonly kept: ReadonlyArray<string> },
      RuntimeError
    > =>
      Effect.gen(function* () {
        const images = yield* retained(serviceId)
        const shortId = (id: string) => id.replace(/^sha256:/, "")
        const isProtected = (image: ImageInfo) =>
          protect.some(
            (p) =>
              image.tags.includes(p) || (shortId(p).length >= 12 && shortId(image.id).startsWith(shortId(p)))
          )
        const removed: Array<string> = []
        const kept: Array<string> = []
        for (const [i, image] of images.entries()) {
          const name = image.tags[0] ?? image.id
          if (i < Math.max(0, keep) || isProtected(image)) {
            kept.push(name)
            continue
          }
          // Removing each tag untags it; the last one deletes the image. Untagged: by id.
          const refs = image.tags.length > 0 ? image.tags : [image.id]
          const result = yield* Effect.forEach(refs, (ref) => runtime.removeImage(ref), {
            discard: true
          }).pipe(
            Effect.as(true),
            Effect.catchTag("DockerApiError", (e) =>
              e.status === 409
                ? Effect.logInfo(`keeping ${name}: ${e.detail}`).pipe(Effect.as(false))
                : Effect.fail(e)
            )
          )
          if (result) removed.push(name)
          else kept.push(name)
        }
        return { removed, kept }
      })

    return { ensureImage, retained, pruneRetained } as const
  }),
  dependencies: [BaseImages.Default, BuildSettings.Default, Registries.Default]
}) {}

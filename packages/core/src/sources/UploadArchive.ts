/**
 * Extracting an uploaded folder (a tar, optionally gzipped) safely: nothing may land outside the
 * destination, nothing dangerous (devices, fifos, escaping links, setuid bits) lands at all, and
 * the limits count bytes actually received, not what headers claim.
 *
 * All or nothing: entries go into a temp dir next to the destination, which is renamed into place
 * only once the whole archive was accepted, and removed on any failure or interruption.
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { Readable, Transform } from "node:stream"
import { pipeline } from "node:stream/promises"
import * as zlib from "node:zlib"

import { Effect, Either, Schema, Stream } from "effect"
import * as tar from "tar-stream"

export class UploadRejected extends Schema.TaggedError<UploadRejected>()("UploadRejected", {
  /** The archive entry at fault, or "(archive)" when it is the archive as a whole. */
  entry: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Upload rejected at ${this.entry}: ${this.reason}. Nothing was extracted.`
  }
}

export interface UploadLimits {
  /** Total bytes of file content (default 200 MiB). */
  readonly maxBytes?: number
  /** Entries of any kind (default 20 000). */
  readonly maxFiles?: number
  /** Characters of an entry path (default 1024). */
  readonly maxPathLength?: number
}

export interface Extracted {
  readonly files: number
  readonly bytes: number
}

export const DEFAULT_UPLOAD_LIMITS = {
  maxBytes: 200 * 1024 * 1024,
  maxFiles: 20_000,
  maxPathLength: 1024
} as const

const ARCHIVE = "(archive)"

/** Thrown inside the extraction promise when the source stream fails; carries the typed error out. */
class SourceFailed {
  constructor(readonly error: unknown) {}
}

/** Splits an entry name into safe segments, or says why it is not acceptable. */
export const entrySegments = (name: string): Either.Either<ReadonlyArray<string>, string> => {
  if (name.startsWith("/") || /^[A-Za-z]:[\\/]/.test(name)) return Either.left("absolute path")
  if (name.includes("\0")) return Either.left("NUL in path")
  const segments = name.split("/").filter((s) => s !== "" && s !== ".")
  if (segments.includes("..")) return Either.left("path contains ..")
  return Either.right(segments)
}

/**
 * Resolves a symlink target lexically from the link's directory. Fails when it leaves the folder,
 * is absolute, or passes through another link before its last segment (a link to "." followed by
 * ".." would escape although every string looks inside).
 */
export const linkTargetProblem = (
  linkSegments: ReadonlyArray<string>,
  target: string,
  links: ReadonlySet<string>
): string | undefined => {
  if (target === "") return "empty link target"
  if (target.startsWith("/")) return `link target ${target} is absolute`
  const parts = linkSegments.slice(0, -1)
  const steps = target.split("/").filter((s) => s !== "" && s !== ".")
  for (const [i, step] of steps.entries()) {
    if (step === "..") {
      if (parts.length === 0) return `link target ${target} leaves the folder`
      parts.pop()
    } else {
      parts.push(step)
      if (i < steps.length - 1 && links.has(parts.join("/")))
        return `link target ${target} passes through the link ${parts.join("/")}`
    }
  }
  return undefined
}

const fileMode = (mode: number | undefined, dir: boolean): number => {
  // Keep rwx bits (the executable bit matters), drop setuid/setgid/sticky; the owner can always manage it.
  const base = (mode ?? (dir ? 0o755 : 0o644)) & 0o777
  return dir ? base | 0o700 : base | 0o600
}

export const extract = <E>(
  source: Stream.Stream<Uint8Array, E>,
  destDir: string,
  limits: UploadLimits = {}
): Effect.Effect<Extracted, UploadRejected | E> => {
  const maxBytes = limits.maxBytes ?? DEFAULT_UPLOAD_LIMITS.maxBytes
  const maxFiles = limits.maxFiles ?? DEFAULT_UPLOAD_LIMITS.maxFiles
  const maxPathLength = limits.maxPathLength ?? DEFAULT_UPLOAD_LIMITS.maxPathLength
  const dest = path.resolve(destDir)
  const tmp = path.join(
    path.dirname(dest),
    `.${path.basename(dest)}.partial-${randomBytes(6).toString("hex")}`
  )
  const removeTmp = Effect.promise(() => fsp.rm(tmp, { recursive: true, force: true }))

  return Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const chunks = Stream.toAsyncIterableRuntime(Stream.either(source), runtime)
    return yield* Effect.tryPromise({
      try: (signal) => run(chunks, dest, tmp, { maxBytes, maxFiles, maxPathLength }, signal),
      catch: (e) => e
    }).pipe(
      Effect.catchAll((e): Effect.Effect<never, UploadRejected | E> => {
        if (e instanceof SourceFailed) return Effect.fail(e.error as E)
        if (e instanceof UploadRejected) return Effect.fail(e)
        return Effect.die(e)
      })
    )
  }).pipe(
    Effect.onExit((exit) => (exit._tag === "Failure" ? removeTmp : Effect.void)),
    Effect.withSpan("UploadArchive.extract", { attributes: { destDir: dest } })
  )
}

const run = async (
  chunks: AsyncIterable<Either.Either<Uint8Array, unknown>>,
  dest: string,
  tmp: string,
  limits: { maxBytes: number; maxFiles: number; maxPathLength: number },
  signal: AbortSignal
): Promise<Extracted> => {
  const reject = (entry: string, reason: string) => new UploadRejected({ entry, reason })
  if (
    await fsp.lstat(dest).then(
      () => true,
      () => false
    )
  ) {
    throw reject(ARCHIVE, `the destination ${path.basename(dest)} already exists`)
  }
  await fsp.mkdir(path.dirname(dest), { recursive: true })
  await fsp.mkdir(tmp, { mode: 0o700 })

  let succeeded = false
  const iterator = chunks[Symbol.asyncIterator]()
  try {
    // Peek at the first bytes: gzip announces itself with 1f 8b.
    const head: Array<Buffer> = []
    let headBytes = 0
    let ended = false
    while (headBytes < 2) {
      const next = await iterator.next()
      if (next.done) {
        ended = true
        break
      }
      if (Either.isLeft(next.value)) throw new SourceFailed(next.value.left)
      const buf = Buffer.from(next.value.right)
      head.push(buf)
      headBytes += buf.length
    }
    const first = Buffer.concat(head)
    const gzipped = first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b
    // A hand-made Readable rather than Readable.from(generator): destroying it must not wait for a
    // pending read of the source (an upload that stalls), which a suspended generator would.
    let pendingHead: Buffer | undefined = first.length > 0 ? first : undefined
    const body = new Readable({
      read() {
        if (pendingHead) {
          const chunk = pendingHead
          pendingHead = undefined
          this.push(chunk)
          return
        }
        if (ended) {
          this.push(null)
          return
        }
        iterator.next().then(
          (next) => {
            if (next.done) this.push(null)
            else if (Either.isLeft(next.value))
              this.destroy(new SourceFailed(next.value.left) as unknown as Error)
            else this.push(Buffer.from(next.value.right))
          },
          (e: unknown) => this.destroy(new SourceFailed(e) as unknown as Error)
        )
      },
      destroy(err, done) {
        done(err)
      }
    })

    // Raw tar bytes are bounded too (headers, padding, a gzip bomb of zeros).
    const rawLimit = limits.maxBytes + (limits.maxFiles + 4) * 1536 + 1024 * 1024
    let rawBytes = 0
    const rawCounter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        rawBytes += chunk.length
        if (rawBytes > rawLimit) done(reject(ARCHIVE, `archive larger than ${rawLimit} bytes unpacked`))
        else done(null, chunk)
      }
    })
    const extractor = tar.extract()
    const feeding = pipeline(
      gzipped ? [body, zlib.createGunzip(), rawCounter, extractor] : [body, rawCounter, extractor],
      { signal }
    ).then(
      () => undefined,
      (e: unknown) => e ?? new Error("archive stream failed")
    )

    // An entry's body never ends when the archive is cut short: wait for it or for the feed to fail.
    const feedFailed = new Promise<never>((_, rejectFeed) => {
      void feeding.then((e) => {
        if (e !== undefined) rejectFeed(e)
      })
    })
    feedFailed.catch(() => undefined)

    let files = 0
    let bytes = 0
    const links = new Set<string>()
    const regular = new Set<string>()
    const symlinks: Array<{ name: string; segments: ReadonlyArray<string>; target: string }> = []
    let entryError: unknown = undefined
    let current: { destroy: (e?: Error) => unknown } | undefined

    try {
      for await (const entry of extractor) {
        current = entry
        if (signal.aborted) throw signal.reason
        const header = entry.header
        const name = header.name
        if (name.length > limits.maxPathLength)
          throw reject(name.slice(0, 120), `path longer than ${limits.maxPathLength} characters`)
        const segments = Either.getOrThrowWith(entrySegments(name), (reason) => reject(name, reason))
        if (segments.length === 0) {
          entry.resume()
          continue
        }
        const rel = segments.join("/")
        if (++files > limits.maxFiles) throw reject(name, `more than ${limits.maxFiles} entries`)
        // Never write through a link: every parent must be a real directory we created.
        for (let i = 1; i < segments.length; i++) {
          const parent = segments.slice(0, i).join("/")
          if (links.has(parent) || regular.has(parent))
            throw reject(name, `its parent ${parent} is not a directory`)
        }
        const target = path.join(tmp, ...segments)
        const existing = await fsp.lstat(target).catch(() => undefined)
        if (existing?.isDirectory() && header.type !== "directory")
          throw reject(name, "an entry of another type has the same path as a directory")
        if (existing && !existing.isDirectory()) {
          // A later entry of the same path wins, as with tar itself; the old one (maybe a link) goes first.
          await fsp.rm(target, { force: true })
          links.delete(rel)
          regular.delete(rel)
        }
        const parentDir = path.dirname(target)
        switch (header.type) {
          case "directory": {
            await fsp.mkdir(target, { recursive: true })
            await fsp.chmod(target, fileMode(header.mode, true))
            entry.resume()
            break
          }
          case "file":
          case "contiguous-file": {
            const declared = header.size ?? 0
            if (bytes + declared > limits.maxBytes)
              throw reject(name, `the upload is larger than ${limits.maxBytes} bytes`)
            await fsp.mkdir(parentDir, { recursive: true })
            let written = 0
            const counter = new Transform({
              transform(chunk: Buffer, _enc, done) {
                written += chunk.length
                if (bytes + written > limits.maxBytes)
                  done(reject(name, `the upload is larger than ${limits.maxBytes} bytes`))
                else done(null, chunk)
              }
            })
            await Promise.race([
              pipeline(
                entry,
                counter,
                fs.createWriteStream(target, { flags: "wx", mode: fileMode(header.mode, false) })
              ),
              feedFailed
            ])
            await fsp.chmod(target, fileMode(header.mode, false))
            bytes += written
            regular.add(rel)
            break
          }
          case "symlink": {
            const linkTarget = header.linkname ?? ""
            const problem = linkTargetProblem(segments, linkTarget, links)
            if (problem) throw reject(name, problem)
            await fsp.mkdir(parentDir, { recursive: true })
            await fsp.symlink(linkTarget, target)
            links.add(rel)
            symlinks.push({ name, segments, target: linkTarget })
            entry.resume()
            break
          }
          case "link": {
            // Hard link names are relative to the archive root, and must name a file extracted before.
            const linkName = header.linkname ?? ""
            const linkSegments = entrySegments(linkName)
            if (Either.isLeft(linkSegments))
              throw reject(name, `hard link to ${linkName}: ${linkSegments.left}`)
            const source = linkSegments.right.join("/")
            if (!regular.has(source))
              throw reject(name, `hard link to ${linkName}, which is not a file earlier in the archive`)
            await fsp.mkdir(parentDir, { recursive: true })
            await fsp.link(path.join(tmp, ...linkSegments.right), target)
            regular.add(rel)
            entry.resume()
            break
          }
          default:
            throw reject(
              name,
              `${header.type ?? "unknown"} entries are not allowed (only files, folders and links)`
            )
        }
      }
    } catch (e) {
      entryError = e
      // Ends a half-written file's pipeline too, so its descriptor closes before the temp dir goes.
      current?.destroy()
      extractor.destroy()
    }
    const feedError = await feeding
    // Precedence: the source's own failure, then our verdict on an entry, then a broken archive.
    if (feedError instanceof SourceFailed) throw feedError
    if (entryError instanceof SourceFailed || entryError instanceof UploadRejected) throw entryError
    if (feedError instanceof UploadRejected) throw feedError
    if (signal.aborted) throw signal.reason
    if (feedError !== undefined)
      throw reject(
        ARCHIVE,
        `not a valid ${gzipped ? "gzipped " : ""}tar archive (${feedError instanceof Error ? feedError.message : String(feedError)})`
      )
    if (entryError !== undefined) throw entryError
    // Links are checked once more against the final set: one created later may sit on their way.
    for (const link of symlinks) {
      const problem = linkTargetProblem(link.segments, link.target, links)
      if (problem) throw reject(link.name, problem)
    }
    await fsp.rename(tmp, dest)
    succeeded = true
    return { files, bytes }
  } finally {
    await iterator.return?.().catch(() => undefined)
    if (!succeeded) await fsp.rm(tmp, { recursive: true, force: true })
  }
}

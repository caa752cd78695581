/**
 * A folder as a Docker build context: the entries Docker would send (`.dockerignore` honoured), a
 * content hash that names the image, and a tar of exactly those entries.
 *
 * The hash covers (path, type, mode, content or link target) of every entry in sorted order, never
 * mtimes, owners or walk order: the same folder checked out twice, or extracted from an upload
 * with another umask, hashes the same, and that is what lets an unchanged redeploy skip the build.
 * Modes are normalised (0755 / 0644 by the executable bit) for the same reason.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"

import dockerignore from "@balena/dockerignore"
import { Effect, Schema, Stream } from "effect"
import * as tar from "tar-stream"

import { DEFAULT_DOCKERIGNORE } from "./dockerfile/DockerfileGenerator.js"

export const DEFAULT_MAX_BYTES = 500 * 1024 * 1024
export const DEFAULT_MAX_FILES = 50_000

export class BuildContextTooLarge extends Schema.TaggedError<BuildContextTooLarge>()("BuildContextTooLarge", {
  folder: Schema.String,
  limit: Schema.Literal("bytes", "files"),
  max: Schema.Number
}) {
  override get message() {
    const what = this.limit === "bytes" ? `${Math.round(this.max / 1024 / 1024)} MiB` : `${this.max} files`
    return `The build context ${this.folder} is larger than ${what}. List build output, dependencies and data folders in .dockerignore so they are not sent to the build.`
  }
}

export class BuildContextUnreadable extends Schema.TaggedError<BuildContextUnreadable>()(
  "BuildContextUnreadable",
  {
    folder: Schema.String,
    path: Schema.String,
    reason: Schema.String
  }
) {
  override get message() {
    return `Cannot read ${this.path === "" ? "the folder" : this.path} in the build context ${this.folder}: ${this.reason}. Check that the folder exists and that Kyozo may read it.`
  }
}

export class DockerfileMissing extends Schema.TaggedError<DockerfileMissing>()("DockerfileMissing", {
  folder: Schema.String,
  dockerfile: Schema.String
}) {
  override get message() {
    return `The build context ${this.folder} has no ${this.dockerfile}. Add it to the folder, or deploy without it so Kyozo generates one.`
  }
}

export class BuildContextConflict extends Schema.TaggedError<BuildContextConflict>()("BuildContextConflict", {
  folder: Schema.String,
  path: Schema.String
}) {
  override get message() {
    return `Kyozo needs to add ${this.path} to the build context of ${this.folder}, but the folder already has one. Rename or remove your ${this.path}.`
  }
}

export const BuildContextError = Schema.Union(
  BuildContextTooLarge,
  BuildContextUnreadable,
  DockerfileMissing,
  BuildContextConflict
)
export type BuildContextError = typeof BuildContextError.Type

export interface BuildContext {
  /** sha256 hex over the sorted (path, type, mode, content) of every included entry. */
  readonly hash: string
  /** Bytes of file content (not counting tar headers). */
  readonly sizeBytes: number
  /** Files and links (directories are not counted). */
  readonly fileCount: number
  /** The Dockerfile path inside the context. */
  readonly dockerfile: string
  /** A tar of exactly the hashed entries; every run emits the same bytes. */
  readonly tar: Stream.Stream<Uint8Array>
}

export interface FromFolderOptions {
  /** Files added at the context root (e.g. a generated `Dockerfile.kyozo`); never subject to .dockerignore. */
  readonly extraFiles?: Record<string, string>
  /** When an extra file has the same path as a folder entry: replace it (true) or fail (default). */
  readonly replaceExisting?: boolean
  /** Dockerfile path inside the context (default "Dockerfile"); always kept, like docker does. */
  readonly dockerfile?: string
  /** Whether the Dockerfile must exist (default true). */
  readonly requireDockerfile?: boolean
  readonly maxBytes?: number
  readonly maxFiles?: number
}

type Entry =
  | { readonly type: "directory"; readonly path: string; readonly mode: number }
  | {
      readonly type: "file"
      readonly path: string
      readonly mode: number
      readonly abs?: string
      readonly content?: Buffer
      readonly size: number
    }
  | { readonly type: "symlink"; readonly path: string; readonly mode: number; readonly target: string }

/** Docker's own tars carry real mtimes; a fixed one keeps the tar bytes reproducible. */
const FIXED_MTIME = new Date(Date.UTC(2000, 0, 1))
const TAR_CHUNK = 64 * 1024

const normaliseMode = (mode: number, dir: boolean): number => (dir || (mode & 0o111) !== 0 ? 0o755 : 0o644)

const toPosix = (p: string): string => p.split(path.sep).join("/")

const ioReason = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException
  return err?.code ? `${err.code}: ${err.message}` : String(e)
}

/** Lexical: is `target` (relative or absolute, resolved against `linkDir`) inside `root`? */
const insideRoot = (root: string, resolved: string): boolean => {
  const rel = path.relative(root, resolved)
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel))
}

const normaliseExtraPath = (p: string): string =>
  path.posix.normalize(p.replace(/\\/g, "/")).replace(/^(\.\/)+|^\/+/, "")

export const fromFolder = (
  dir: string,
  options: FromFolderOptions = {}
): Effect.Effect<BuildContext, BuildContextError> =>
  Effect.tryPromise({
    try: () => collect(dir, options),
    catch: (e) =>
      Schema.is(BuildContextError)(e)
        ? e
        : new BuildContextUnreadable({ folder: dir, path: "", reason: ioReason(e) })
  }).pipe(Effect.withSpan("BuildContext.fromFolder", { attributes: { dir } }))

const collect = async (dir: string, options: FromFolderOptions): Promise<BuildContext> => {
  const root = path.resolve(dir)
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
  const maxFiles = options.maxFiles ?? DEFAULT_MAX_FILES
  const dockerfile = normaliseExtraPath(options.dockerfile ?? "Dockerfile")
  const unreadable = (p: string, e: unknown) =>
    new BuildContextUnreadable({ folder: dir, path: p, reason: ioReason(e) })

  const rootStat = await fs.stat(root).catch((e) => {
    throw unreadable("", e)
  })
  if (!rootStat.isDirectory()) throw unreadable("", new Error("not a directory"))

  const ignoreText = await fs.readFile(path.join(root, ".dockerignore"), "utf8").catch((e) => {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw unreadable(".dockerignore", e)
  })
  const patterns = (ignoreText ?? DEFAULT_DOCKERIGNORE)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
  // CJS module: `.default` is the factory both under Node's ESM loader and under bundlers.
  const ig = dockerignore.default().add(patterns)
  // With exceptions ("!x") an ignored directory may still hold kept files, so it must be walked.
  const hasExceptions = patterns.some((p) => p.startsWith("!"))
  const alwaysKept = new Set([".dockerignore", dockerfile])

  const entries: Array<Entry> = []
  let bytes = 0
  let files = 0
  const countFile = (size: number) => {
    files++
    bytes += size
    if (files > maxFiles) throw new BuildContextTooLarge({ folder: dir, limit: "files", max: maxFiles })
    if (bytes > maxBytes) throw new BuildContextTooLarge({ folder: dir, limit: "bytes", max: maxBytes })
  }

  const walk = async (rel: string): Promise<void> => {
    const abs = rel === "" ? root : path.join(root, rel)
    const names = await fs.readdir(abs).catch((e) => {
      throw unreadable(rel, e)
    })
    for (const name of names) {
      const childRel = rel === "" ? name : `${rel}/${name}`
      const childAbs = path.join(abs, name)
      const st = await fs.lstat(childAbs).catch((e) => {
        throw unreadable(childRel, e)
      })
      const ignored = !alwaysKept.has(childRel) && ig.ignores(childRel)
      if (st.isDirectory()) {
        if (!ignored) entries.push({ type: "directory", path: childRel, mode: 0o755 })
        if (!ignored || hasExceptions || dockerfile.startsWith(`${childRel}/`)) await walk(childRel)
      } else if (ignored) {
        continue
      } else if (st.isFile()) {
        countFile(st.size)
        entries.push({
          type: "file",
          path: childRel,
          mode: normaliseMode(st.mode, false),
          abs: childAbs,
          size: st.size
        })
      } else if (st.isSymbolicLink()) {
        // Never followed: kept as a link when it points inside the folder, skipped otherwise.
        const raw = await fs.readlink(childAbs).catch((e) => {
          throw unreadable(childRel, e)
        })
        const resolved = path.resolve(path.dirname(childAbs), raw)
        if (!insideRoot(root, resolved)) continue
        // An absolute target would mean something else inside the image: make it relative.
        const target = path.isAbsolute(raw)
          ? toPosix(path.relative(path.dirname(childAbs), resolved)) || "."
          : raw
        countFile(0)
        entries.push({ type: "symlink", path: childRel, mode: 0o777, target })
      }
      // Sockets, fifos and devices are never part of a build context.
    }
  }
  await walk("")

  for (const [rawPath, content] of Object.entries(options.extraFiles ?? {})) {
    const p = normaliseExtraPath(rawPath)
    const existing = entries.findIndex((e) => e.path === p)
    if (existing >= 0) {
      if (!options.replaceExisting) throw new BuildContextConflict({ folder: dir, path: p })
      const old = entries[existing]!
      if (old.type === "file") {
        files--
        bytes -= old.size
      } else if (old.type === "symlink") files--
      entries.splice(existing, 1)
    }
    const buf = Buffer.from(content, "utf8")
    countFile(buf.length)
    entries.push({ type: "file", path: p, mode: 0o644, content: buf, size: buf.length })
  }

  if (
    options.requireDockerfile !== false &&
    !entries.some((e) => e.path === dockerfile && e.type !== "directory")
  ) {
    throw new DockerfileMissing({ folder: dir, dockerfile })
  }

  // Byte order, not locale order: the same on every machine.
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))

  const hash = createHash("sha256")
  const pack = tar.pack()
  const chunks: Array<Buffer> = []
  pack.on("data", (chunk: unknown) => void chunks.push(chunk as Buffer))
  const packed = new Promise<void>((resolve, reject) => {
    pack.on("end", () => resolve())
    pack.on("error", reject)
  })
  const entryDone = (header: Partial<tar.Header> & { name: string }, content?: Buffer) =>
    new Promise<void>((resolve, reject) =>
      content === undefined
        ? pack.entry(header, (err) => (err ? reject(err) : resolve()))
        : pack.entry(header, content, (err) => (err ? reject(err) : resolve()))
    )
  const common = { uid: 0, gid: 0, mtime: FIXED_MTIME }
  let sizeBytes = 0
  for (const entry of entries) {
    hash.update(`${entry.type}\0${entry.path}\0${entry.mode.toString(8)}\0`)
    if (entry.type === "directory") {
      await entryDone({ ...common, name: entry.path, type: "directory", mode: entry.mode })
    } else if (entry.type === "symlink") {
      hash.update(`${entry.target}\0`)
      await entryDone({
        ...common,
        name: entry.path,
        type: "symlink",
        mode: entry.mode,
        linkname: entry.target
      })
    } else {
      const content =
        entry.content ??
        (await fs.readFile(entry.abs!).catch((e) => {
          throw unreadable(entry.path, e)
        }))
      hash.update(`${content.length}\0`)
      hash.update(content)
      sizeBytes += content.length
      await entryDone(
        { ...common, name: entry.path, type: "file", mode: entry.mode, size: content.length },
        content
      )
    }
  }
  pack.finalize()
  await packed
  const archive = Buffer.concat(chunks)
  const fileCount = entries.filter((e) => e.type !== "directory").length

  return {
    hash: hash.digest("hex"),
    sizeBytes,
    fileCount,
    dockerfile,
    tar: Stream.suspend(() => {
      const parts: Array<Uint8Array> = []
      for (let i = 0; i < archive.length; i += TAR_CHUNK) parts.push(archive.subarray(i, i + TAR_CHUNK))
      return Stream.fromIterable(parts)
    })
  }
}

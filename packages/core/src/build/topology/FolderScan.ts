/**
 * One bounded walk of a folder: the list of files detection may look at, and a capped, cached reader.
 * Nothing from the folder is ever executed; symlinks are never followed.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"

import { DetectError } from "@kyozo/api/domain/Topology"
import { Effect } from "effect"

/** Folders that hold dependencies, VCS data, caches or build output: never services, never read. */
export const IGNORED_DIRS: ReadonlySet<string> = new Set([
  "node_modules",
  "bower_components",
  "jspm_packages",
  ".git",
  ".hg",
  ".svn",
  ".venv",
  "venv",
  "virtualenv",
  ".virtualenv",
  "__pycache__",
  ".tox",
  ".nox",
  ".mypy_cache",
  ".pytest_cache",
  ".ruff_cache",
  "site-packages",
  "dist",
  "build",
  "out",
  "target",
  ".next",
  ".nuxt",
  ".svelte-kit",
  ".output",
  ".vercel",
  ".turbo",
  ".parcel-cache",
  ".cache",
  "coverage",
  ".nyc_output",
  "vendor",
  "_build",
  "deps",
  ".gradle",
  ".mvn",
  ".idea",
  ".vscode",
  ".terraform",
  ".serverless",
  ".bundle",
  ".yarn",
  ".pnpm-store",
  ".elixir_ls",
  ".dart_tool",
  ".angular",
  "tmp",
  ".tmp"
])

export interface ScanOptions {
  readonly maxDepth?: number
  readonly maxEntries?: number
  readonly maxFileBytes?: number
}

export interface FolderIndex {
  /** Absolute, resolved root. */
  readonly root: string
  /** Every kept file, relative to the root with "/" separators. */
  readonly files: ReadonlyArray<string>
  readonly fileSet: ReadonlySet<string>
  /** Every kept directory ("" for the root). */
  readonly dirs: ReadonlyArray<string>
  /** True when a cap cut the walk short. */
  readonly truncated: boolean
  /** Reads a file (relative path) as UTF-8, at most maxFileBytes; undefined if missing or unreadable. */
  readonly read: (rel: string) => Effect.Effect<string | undefined>
  readonly has: (rel: string) => boolean
}

export const joinRel = (dir: string, name: string): string =>
  dir === "" || dir === "." ? name : `${dir}/${name}`

export const scanFolder = (
  folder: string,
  options: ScanOptions = {}
): Effect.Effect<FolderIndex, DetectError> =>
  Effect.gen(function* () {
    const maxDepth = options.maxDepth ?? 8
    const maxEntries = options.maxEntries ?? 200_000
    const maxFileBytes = options.maxFileBytes ?? 512 * 1024
    const abs = path.resolve(folder)
    const stat = yield* Effect.tryPromise({
      try: () => fs.stat(abs),
      catch: (e) =>
        new DetectError({
          folder,
          reason: (e as NodeJS.ErrnoException)?.code === "ENOENT" ? "NotFound" : "Unreadable",
          message:
            (e as NodeJS.ErrnoException)?.code === "ENOENT"
              ? `folder not found: ${folder}`
              : `cannot read folder ${folder}: ${String((e as Error)?.message ?? e)}`
        })
    })
    if (!stat.isDirectory()) {
      return yield* new DetectError({
        folder,
        reason: "NotADirectory",
        message: `not a directory: ${folder}`
      })
    }
    const root = yield* Effect.tryPromise({
      try: () => fs.realpath(abs),
      catch: () => new DetectError({ folder, reason: "Unreadable", message: `cannot resolve ${folder}` })
    })

    const files: Array<string> = []
    const dirs: Array<string> = [""]
    let entries = 0
    let truncated = false

    // Plain async recursion inside one Effect: a fiber per folder costs more than the readdir itself.
    const walk = async (rel: string, depth: number): Promise<void> => {
      const list = await fs
        .readdir(rel === "" ? root : path.join(root, rel), { withFileTypes: true })
        .catch(() => [])
      // A folder holding pyvenv.cfg is a virtualenv whatever its name.
      if (rel !== "" && list.some((d) => d.name === "pyvenv.cfg" && d.isFile())) return
      const sub: Array<string> = []
      for (const d of list) {
        if (entries >= maxEntries) {
          truncated = true
          break
        }
        entries++
        const childRel = joinRel(rel, d.name)
        if (d.isDirectory()) {
          if (IGNORED_DIRS.has(d.name) || d.name.endsWith(".egg-info")) continue
          if (depth + 1 > maxDepth) {
            truncated = true
            continue
          }
          dirs.push(childRel)
          sub.push(childRel)
        } else if (d.isFile()) {
          files.push(childRel)
        }
        // Symlinks, sockets, devices: skipped, never followed.
      }
      await Promise.all(sub.map((s) => walk(s, depth + 1)))
    }
    yield* Effect.promise(() => walk("", 0))
    files.sort()
    dirs.sort()
    const fileSet = new Set(files)
    const cache = new Map<string, Promise<string | undefined>>()

    const readCapped = async (rel: string): Promise<string | undefined> => {
      if (!fileSet.has(rel)) return undefined
      const handle = await fs.open(path.join(root, rel), "r")
      try {
        const size = Math.min((await handle.stat()).size, maxFileBytes)
        const buf = Buffer.alloc(size)
        const { bytesRead } = size === 0 ? { bytesRead: 0 } : await handle.read(buf, 0, size, 0)
        const text = buf.subarray(0, bytesRead).toString("utf8")
        // Binary files are of no use to detection.
        return text.includes("\u0000") ? undefined : text
      } finally {
        await handle.close()
      }
    }

    const read = (rel: string): Effect.Effect<string | undefined> =>
      Effect.promise(() => {
        let p = cache.get(rel)
        if (!p) {
          p = readCapped(rel).catch(() => undefined)
          cache.set(rel, p)
        }
        return p
      })

    return { root, files, fileSet, dirs, truncated, read, has: (rel: string) => fileSet.has(rel) }
  })

/**
 * What every stack module shares: the view of one candidate folder, and the shape of a stack's answer.
 */
import type { Evidence, StackKind } from "@kyozo/api/domain/Topology"
import { Effect } from "effect"

import { BackingSet } from "./BackingServices.js"
import { type FolderIndex, joinRel } from "./FolderScan.js"
import { findPortInText, type PortFinding } from "./Ports.js"
import type { BuildHints } from "./Topology.js"

export interface StackContext {
  readonly index: FolderIndex
  /** The candidate folder, relative to the scanned root ("" for the root). */
  readonly dir: string
  /** A path relative to the candidate folder → relative to the scanned root (for evidence). */
  readonly rel: (name: string) => string
  readonly has: (name: string) => boolean
  readonly read: (name: string) => Effect.Effect<string | undefined>
  /** Files below the candidate folder (names relative to it), at most `maxDepth` folders down. */
  readonly filesBelow: (maxDepth: number, ext?: RegExp) => ReadonlyArray<string>
}

export const makeContext = (index: FolderIndex, dir: string): StackContext => {
  const prefix = dir === "" ? "" : `${dir}/`
  const rel = (name: string) => joinRel(dir, name)
  // index.files is sorted: the files under a folder are one contiguous range, found by binary search.
  let cached: Array<string> | undefined
  const under = (): Array<string> => {
    if (cached) return cached
    const files = index.files
    let lo = 0
    let hi = files.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (files[mid]! < prefix) lo = mid + 1
      else hi = mid
    }
    cached = []
    for (let i = lo; i < files.length && files[i]!.startsWith(prefix); i++)
      cached.push(files[i]!.slice(prefix.length))
    return cached
  }
  return {
    index,
    dir,
    rel,
    has: (name) => index.has(rel(name)),
    read: (name) => index.read(rel(name)),
    filesBelow: (maxDepth, ext) => {
      const out: Array<string> = []
      for (const name of under()) {
        let depth = 0
        for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) === 47) depth++
        if (depth > maxDepth) continue
        if (ext && !ext.test(name)) continue
        out.push(name)
      }
      return out
    }
  }
}

export interface StackMatch {
  readonly kind: StackKind
  readonly framework: string | null
  /** Package/project name from the manifest, if any. */
  readonly name?: string
  /** A port found in the folder (config, listen call, start command). */
  readonly port?: PortFinding
  readonly startCommand: string | null
  readonly requires: BackingSet
  readonly evidence: Array<Evidence>
  readonly confidence: number
  /** A library or a workspace root: code, but nothing that runs on its own. */
  readonly library: boolean
  /** Runs, but nothing in it serves a port (a bot, a worker): no usual port is assumed. */
  readonly worker?: boolean
  readonly libraryReason?: string
  readonly hints: BuildHints
  /** Workspace member globs when this folder is a monorepo root. */
  readonly workspaces?: ReadonlyArray<string>
}

export type StackDetector = (ctx: StackContext) => Effect.Effect<StackMatch | undefined>

/** Lines (1-based) where a needle first appears: evidence points at the line that decided. */
export const lineOf = (text: string, needle: string | RegExp): number | undefined => {
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    if (typeof needle === "string" ? lines[i]!.includes(needle) : needle.test(lines[i]!)) return i + 1
  }
  return undefined
}

export const ev = (file: string, detail: string, line?: number): Evidence =>
  line === undefined ? { file, detail } : { file, line, detail }

/** The first port named by any of the files, in order; files are names relative to the context. */
export const scanForPort = (
  ctx: StackContext,
  names: ReadonlyArray<string>,
  limit = 40
): Effect.Effect<PortFinding | undefined> =>
  Effect.gen(function* () {
    const seen = new Set<string>()
    for (const name of names) {
      if (seen.size >= limit) break
      if (seen.has(name) || !ctx.has(name)) continue
      seen.add(name)
      const text = yield* ctx.read(name)
      if (text === undefined) continue
      const found = findPortInText(text, ctx.rel(name))
      if (found) return found
    }
    return undefined
  })

/** Source files worth scanning for a port: entry candidates first, then shallow sources. */
export const sourceCandidates = (
  ctx: StackContext,
  entries: ReadonlyArray<string>,
  ext: RegExp,
  maxDepth = 3
): Array<string> => {
  const below = ctx
    .filesBelow(maxDepth, ext)
    .filter((f) => !/(^|\/)(test|tests|__tests__|spec|specs|e2e|fixtures?|examples?|migrations?)\//.test(f))
    .filter((f) => !/\.(test|spec)\.[a-z]+$/.test(f))
    .sort((a, b) => a.split("/").length - b.split("/").length || a.localeCompare(b))
  return [...entries.filter((e) => ctx.has(e)), ...below]
}

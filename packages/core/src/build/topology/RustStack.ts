/**
 * Rust: Cargo.toml (package, dependencies, bins, workspace members), src/main.rs.
 */
import type { Evidence } from "@kyozo/api/domain/Topology"
import { Effect } from "effect"

import { backingFromDependency, BackingSet } from "./BackingServices.js"
import { ev, scanForPort, sourceCandidates, type StackDetector } from "./Stack.js"

const FRAMEWORKS: ReadonlyArray<readonly [string, string]> = [
  ["axum", "axum"],
  ["actix-web", "actix"],
  ["rocket", "rocket"],
  ["warp", "warp"],
  ["poem", "poem"],
  ["tide", "tide"],
  ["salvo", "salvo"],
  ["hyper", "hyper"]
]

export const detectRust: StackDetector = (ctx) =>
  Effect.gen(function* () {
    if (!ctx.has("Cargo.toml")) return undefined
    const file = ctx.rel("Cargo.toml")
    const text = (yield* ctx.read("Cargo.toml")) ?? ""
    const evidence: Array<Evidence> = [ev(file, "Cargo.toml present")]
    let section = ""
    let name: string | undefined
    let binName: string | undefined
    const deps = new Map<string, { line: number; text: string }>()
    const members: Array<string> = []
    let inMembers = false
    text.split(/\r?\n/).forEach((l, i) => {
      const t = l.trim()
      const sec = /^\[\[?([^\]]+)\]\]?/.exec(t)
      if (sec) {
        section = sec[1]!.trim()
        inMembers = false
        return
      }
      if (section === "package" && !name) name = /^name\s*=\s*"([^"]+)"/.exec(t)?.[1]
      if (section === "bin" && !binName) binName = /^name\s*=\s*"([^"]+)"/.exec(t)?.[1]
      if (/^(dependencies|workspace\.dependencies)$/.test(section)) {
        const m = /^([A-Za-z0-9_-]+)\s*=/.exec(t)
        if (m) deps.set(m[1]!, { line: i + 1, text: t })
      }
      const dep = /^dependencies\.([A-Za-z0-9_-]+)$/.exec(section)
      if (dep && !deps.has(dep[1]!)) deps.set(dep[1]!, { line: i, text: t })
      if (section === "workspace") {
        if (/^members\s*=/.test(t)) inMembers = !t.includes("]")
        if (/^members\s*=/.test(t) || inMembers) {
          for (const m of t.matchAll(/"([^"]+)"/g)) members.push(m[1]!)
          if (t.includes("]")) inMembers = false
        }
      }
    })
    let framework: string | null = null
    for (const [dep, fw] of FRAMEWORKS) {
      const at = deps.get(dep)
      if (at) {
        framework = fw
        evidence.push(ev(file, `depends on ${dep}`, at.line))
        break
      }
    }
    const requires = new BackingSet()
    for (const [dep, at] of deps) {
      requires.add(backingFromDependency(dep), ev(file, `depends on ${dep}`, at.line))
      // sqlx, diesel, sea-orm: the database is a feature.
      if (/^(sqlx|diesel|sea-orm)$/.test(dep)) {
        if (/postgres/.test(at.text)) requires.add("postgres", ev(file, `${dep} with postgres`, at.line))
        if (/mysql/.test(at.text)) requires.add("mysql", ev(file, `${dep} with mysql`, at.line))
      }
    }
    const hasMain =
      ctx.has("src/main.rs") || binName !== undefined || ctx.filesBelow(2, /^src\/bin\/[^/]+\.rs$/).length > 0
    if (ctx.has("src/main.rs")) evidence.push(ev(ctx.rel("src/main.rs"), "binary crate (src/main.rs)"))
    const workspaceRoot = members.length > 0 && !name
    const bin = binName ?? name
    const port = yield* scanForPort(ctx, sourceCandidates(ctx, ["src/main.rs"], /\.rs$/, 3))
    const library = workspaceRoot || !hasMain
    return {
      kind: "rust",
      framework,
      ...(name ? { name } : {}),
      ...(port ? { port } : {}),
      startCommand: hasMain && bin ? `/app/${bin}` : null,
      requires,
      evidence,
      confidence: hasMain ? (framework ? 0.9 : 0.75) : 0.4,
      library,
      ...(library
        ? { libraryReason: workspaceRoot ? "workspace root" : "Rust library crate (no binary)" }
        : {}),
      ...(workspaceRoot ? { workspaces: members } : {}),
      hints: {
        stack: "rust",
        manifests: ["Cargo.toml", "Cargo.lock"].filter((f) => ctx.has(f)),
        ...(bin ? { target: bin } : {})
      }
    }
  })

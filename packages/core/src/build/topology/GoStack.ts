/**
 * Go: go.mod (module, requires), a `package main` at the root or under cmd/<name>.
 */
import type { Evidence } from "@kyozo/api/domain/Topology"
import { Effect } from "effect"

import { backingFromDependency, BackingSet } from "./BackingServices.js"
import { ev, lineOf, scanForPort, sourceCandidates, type StackDetector } from "./Stack.js"

const FRAMEWORKS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^github\.com\/gin-gonic\/gin$/, "gin"],
  [/^github\.com\/labstack\/echo(\/v\d+)?$/, "echo"],
  [/^github\.com\/gofiber\/fiber(\/v\d+)?$/, "fiber"],
  [/^github\.com\/go-chi\/chi(\/v\d+)?$/, "chi"],
  [/^github\.com\/gorilla\/mux$/, "gorilla"],
  [/^github\.com\/beego\/beego(\/v\d+)?$/, "beego"]
]

/** Import paths of a Go source file (single and grouped imports). */
const importsOf = (src: string): Array<string> => {
  const out: Array<string> = []
  for (const m of src.matchAll(/^\s*import\s+(?:\w+\s+)?"([^"]+)"/gm)) out.push(m[1]!)
  for (const block of src.matchAll(/^\s*import\s*\(([\s\S]*?)\)/gm))
    for (const m of block[1]!.matchAll(/"([^"]+)"/g)) out.push(m[1]!)
  return out
}

/**
 * GOPATH-era code: `package main` files without go.mod. The build makes a module for it
 * (`go mod init`, `go mod tidy`), so only a main package at the top counts.
 */
const moduleless: StackDetector = (ctx) =>
  Effect.gen(function* () {
    const top = ctx.filesBelow(0, /\.go$/).filter((f) => !f.endsWith("_test.go"))
    for (const f of top) {
      const src = (yield* ctx.read(f)) ?? ""
      if (!/^package\s+main\b/m.test(src)) continue
      const evidence: Array<Evidence> = [
        ev(
          ctx.rel(f),
          "package main without go.mod: the build makes a module for it",
          lineOf(src, /^package\s+main\b/)
        )
      ]
      const requires = new BackingSet()
      let framework: string | null = null
      for (const imp of importsOf(src)) {
        requires.add(backingFromDependency(imp), ev(ctx.rel(f), `imports ${imp}`, lineOf(src, `"${imp}"`)))
        const fw = FRAMEWORKS.find(([re]) => re.test(imp))
        if (fw && framework === null) {
          framework = fw[1]
          evidence.push(ev(ctx.rel(f), `imports ${imp}`, lineOf(src, `"${imp}"`)))
        }
      }
      const port = yield* scanForPort(ctx, sourceCandidates(ctx, [f], /\.go$/, 0))
      return {
        kind: "go",
        framework,
        ...(port ? { port } : {}),
        startCommand: "/app/server",
        requires,
        evidence,
        confidence: 0.7,
        library: false,
        hints: { stack: "go", manifests: [], target: "." }
      }
    }
    return undefined
  })

export const detectGo: StackDetector = (ctx) =>
  Effect.gen(function* () {
    if (!ctx.has("go.mod")) return yield* moduleless(ctx)
    const file = ctx.rel("go.mod")
    const text = (yield* ctx.read("go.mod")) ?? ""
    const evidence: Array<Evidence> = [ev(file, "go.mod present")]
    const module = /^\s*module\s+(\S+)/m.exec(text)?.[1]
    const requires = new BackingSet()
    let framework: string | null = null
    const lines = text.split(/\r?\n/)
    lines.forEach((l, i) => {
      const m = /^\s*(?:require\s+)?([a-z0-9.-]+\.[a-z]+\/[^\s]+)\s+v[\d.]/i.exec(l)
      if (!m) return
      const dep = m[1]!
      requires.add(backingFromDependency(dep), ev(file, `requires ${dep}`, i + 1))
      if (framework === null) {
        const fw = FRAMEWORKS.find(([re]) => re.test(dep))
        if (fw) {
          framework = fw[1]
          evidence.push(ev(file, `requires ${dep}`, i + 1))
        }
      }
    })
    // Find the main package: the root first, then cmd/<module basename>, then any cmd/*.
    const goFiles = ctx.filesBelow(2, /\.go$/).filter((f) => !f.endsWith("_test.go"))
    const mains: Array<{ dir: string; file: string; line: number | undefined }> = []
    for (const f of goFiles) {
      const dir = f.includes("/") ? f.slice(0, f.lastIndexOf("/")) : "."
      if (dir !== "." && !dir.startsWith("cmd/")) continue
      if (mains.some((m) => m.dir === dir)) continue
      const src = (yield* ctx.read(f)) ?? ""
      if (/^package\s+main\b/m.test(src)) mains.push({ dir, file: f, line: lineOf(src, /^package\s+main\b/) })
    }
    const base = module?.split("/").pop()
    const main = mains.find((m) => m.dir === ".") ?? mains.find((m) => m.dir === `cmd/${base}`) ?? mains[0]
    if (main) evidence.push(ev(ctx.rel(main.file), "package main", main.line))
    const target = main ? (main.dir === "." ? "." : `./${main.dir}`) : undefined
    const port = yield* scanForPort(ctx, sourceCandidates(ctx, main ? [main.file] : [], /\.go$/, 3))
    return {
      kind: "go",
      framework,
      ...(base ? { name: base } : {}),
      ...(port ? { port } : {}),
      startCommand: main ? "/app/server" : null,
      requires,
      evidence,
      confidence: main ? (framework ? 0.9 : 0.85) : 0.4,
      library: !main,
      ...(!main ? { libraryReason: "Go module without a main package (a library)" } : {}),
      hints: {
        stack: "go",
        manifests: ["go.mod", "go.sum"].filter((f) => ctx.has(f)),
        ...(target ? { target } : {})
      }
    }
  })

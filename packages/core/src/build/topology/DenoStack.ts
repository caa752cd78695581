/**
 * Deno: deno.json(c) tasks and imports, or an entry module calling Deno.serve / Deno.listen.
 */
import type { Evidence } from "@kyozo/api/domain/Topology"
import { Effect } from "effect"
import JSON5 from "json5"

import { BackingSet } from "./BackingServices.js"
import { ev, lineOf, scanForPort, sourceCandidates, type StackDetector } from "./Stack.js"

const ENTRIES = [
  "main.ts",
  "server.ts",
  "mod.ts",
  "app.ts",
  "index.ts",
  "src/main.ts",
  "main.js",
  "server.js"
]
const SERVES = /Deno\.serve\(|Deno\.listen\(|\.listen\(\{/
const DENO_MODULE = /\bDeno\.\w+|from\s+["'](?:jsr:|npm:|https:\/\/deno\.land\/)/

export const detectDeno: StackDetector = (ctx) =>
  Effect.gen(function* () {
    const config = ["deno.json", "deno.jsonc"].find((f) => ctx.has(f))
    const evidence: Array<Evidence> = []
    let entry: string | undefined
    let entryText = ""
    for (const e of ENTRIES) {
      if (!ctx.has(e)) continue
      const text = (yield* ctx.read(e)) ?? ""
      if (SERVES.test(text)) {
        entry = e
        entryText = text
        evidence.push(ev(ctx.rel(e), "Deno server entry", lineOf(text, SERVES)))
        break
      }
    }
    // Without deno.json, a module using Deno's APIs or its import specifiers (and no package.json)
    // marks Deno: a server, or a program platforms run with `deno run` (a bot, a worker).
    if (!config && !entry && !ctx.has("package.json")) {
      for (const e of ENTRIES) {
        if (!ctx.has(e)) continue
        const text = (yield* ctx.read(e)) ?? ""
        const uses = DENO_MODULE.exec(text)
        if (uses) {
          entry = e
          entryText = text
          evidence.push(
            ev(
              ctx.rel(e),
              `Deno module (${uses[0].trim()}) without deno.json: run with deno run`,
              lineOf(text, uses[0])
            )
          )
          break
        }
      }
    }
    if (!config && (!entry || !DENO_MODULE.test(entryText) || ctx.has("package.json"))) return undefined
    let tasks: Record<string, string> = {}
    let configText = ""
    if (config) {
      configText = (yield* ctx.read(config)) ?? ""
      evidence.push(ev(ctx.rel(config), `${config} present`))
      try {
        // deno.json(c) may hold comments and trailing commas: JSON5 reads them.
        const json = JSON5.parse(configText) as { tasks?: Record<string, string> }
        tasks = json.tasks ?? {}
      } catch {
        evidence.push(ev(ctx.rel(config), `${config} is not plain JSON`))
      }
    }
    const all = configText + "\n" + entryText
    let framework: string | null = null
    for (const [needle, fw] of [
      ["$fresh", "fresh"],
      ["oak", "oak"],
      ["hono", "hono"]
    ] as const) {
      if (all.includes(needle)) {
        framework = fw
        break
      }
    }
    const requires = new BackingSet()
    if (/npm:pg\b|deno\.land\/x\/postgres|@db\/postgres|npm:postgres/.test(all))
      requires.add("postgres", ev(ctx.rel(config ?? entry!), "imports a PostgreSQL client"))
    if (/npm:(io)?redis\b|deno\.land\/x\/redis|@db\/redis/.test(all))
      requires.add("redis", ev(ctx.rel(config ?? entry!), "imports a Redis client"))
    if (/npm:mongodb|deno\.land\/x\/mongo/.test(all))
      requires.add("mongodb", ev(ctx.rel(config ?? entry!), "imports a MongoDB client"))
    const startTask = tasks.start ?? tasks.serve
    const startCommand = tasks.start
      ? "deno task start"
      : tasks.serve
        ? "deno task serve"
        : entry
          ? `deno run --allow-net --allow-env --allow-read ${entry}`
          : null
    if (startTask) evidence.push(ev(ctx.rel(config!), `task: ${startTask}`, lineOf(configText, startTask)))
    const port = yield* scanForPort(ctx, sourceCandidates(ctx, entry ? [entry] : [], /\.(ts|js|tsx|jsx)$/, 2))
    return {
      kind: "deno",
      framework,
      ...(port ? { port } : {}),
      startCommand,
      requires,
      evidence,
      confidence: entry ? (SERVES.test(entryText) ? 0.85 : 0.65) : 0.6,
      library: startCommand === null,
      ...(entry && !SERVES.test(entryText) && !port && !startTask ? { worker: true } : {}),
      ...(startCommand === null ? { libraryReason: "Deno module without a server entry or start task" } : {}),
      hints: {
        stack: "deno",
        manifests: ["deno.json", "deno.jsonc", "deno.lock"].filter((f) => ctx.has(f)),
        ...(entry ? { target: entry } : {})
      }
    }
  })

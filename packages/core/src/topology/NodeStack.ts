/**
 * Node.js: package.json (dependencies, scripts.start, main, workspaces), lockfiles, listen calls.
 */
import { Effect } from "effect"
import { backingFromDependency, BackingSet } from "./BackingServices.js"
import { findPortInCommand, FRAMEWORK_DEFAULT_PORTS } from "./Ports.js"
import {
  ev,
  lineOf,
  scanForPort,
  sourceCandidates,
  type StackContext,
  type StackDetector,
  type StackMatch
} from "./Stack.js"
import type { Evidence } from "./Topology.js"

// Checked in order: meta-frameworks before the servers they embed.
const FRAMEWORKS: ReadonlyArray<readonly [string, string]> = [
  ["next", "nextjs"],
  ["@nestjs/core", "nest"],
  ["nuxt", "nuxt"],
  ["@remix-run/serve", "remix"],
  ["@remix-run/node", "remix"],
  ["@sveltejs/kit", "sveltekit"],
  ["fastify", "fastify"],
  ["koa", "koa"],
  ["express", "express"],
  ["@hapi/hapi", "hapi"],
  ["hapi", "hapi"],
  ["hono", "hono"],
  ["restify", "restify"],
  ["@adonisjs/core", "adonis"],
  ["sails", "sails"],
  ["polka", "polka"]
]

const SERVER_ENTRY_NAMES = [
  "server.js",
  "server.mjs",
  "server.cjs",
  "index.js",
  "index.mjs",
  "app.js",
  "app.mjs",
  "main.js",
  "src/server.js",
  "src/index.js",
  "src/app.js",
  "src/main.js",
  "server.ts",
  "index.ts",
  "app.ts",
  "main.ts",
  "src/server.ts",
  "src/index.ts",
  "src/main.ts",
  "src/app.ts"
]

const LISTENS = /\.listen\(|createServer\(|Bun\.serve\(|serve\(\{|\.serve\(/

type Json = Record<string, unknown>
const asRecord = (x: unknown): Record<string, string> =>
  x && typeof x === "object" && !Array.isArray(x) ? (x as Record<string, string>) : {}

/** The lockfile decides the package manager; in a monorepo it sits in an ancestor folder. */
const findPackageManager = (
  ctx: StackContext,
  pkg: Json
): { pm: "npm" | "pnpm" | "yarn" | "bun"; file?: string; lockfiles: Array<string> } => {
  const order: ReadonlyArray<readonly [string, "npm" | "pnpm" | "yarn" | "bun"]> = [
    ["pnpm-lock.yaml", "pnpm"],
    ["yarn.lock", "yarn"],
    ["bun.lockb", "bun"],
    ["bun.lock", "bun"],
    ["package-lock.json", "npm"],
    ["npm-shrinkwrap.json", "npm"]
  ]
  const local = order.filter(([f]) => ctx.has(f))
  if (local.length > 0)
    return { pm: local[0]![1], file: ctx.rel(local[0]![0]), lockfiles: local.map(([f]) => f) }
  let dir = ctx.dir
  while (dir !== "") {
    dir = dir.includes("/") ? dir.slice(0, dir.lastIndexOf("/")) : ""
    for (const [f, pm] of order) {
      const rel = dir === "" ? f : `${dir}/${f}`
      if (ctx.index.has(rel)) return { pm, file: rel, lockfiles: [] }
    }
  }
  const declared = typeof pkg.packageManager === "string" ? pkg.packageManager.split("@")[0] : undefined
  if (declared === "pnpm" || declared === "yarn" || declared === "bun" || declared === "npm") {
    return { pm: declared, lockfiles: [] }
  }
  return { pm: "npm", lockfiles: [] }
}

/** "node server.js" / "node --foo dist/main.js" → the script file it runs. */
const scriptFile = (command: string | undefined): string | undefined => {
  if (!command) return undefined
  const m =
    /(?:^|&&\s*|\s)(?:node|nodemon|ts-node|tsx|bun)\s+(?:--?[\w-]+(?:=\S+)?\s+)*([\w./-]+\.[cm]?[jt]sx?|[\w./-]+)/.exec(
      command
    )
  return m?.[1]?.replace(/^\.\//, "")
}

export const detectNode: StackDetector = (ctx) =>
  Effect.gen(function* () {
    if (!ctx.has("package.json")) return undefined
    // Deno projects may carry a package.json for npm compatibility; deno.json decides.
    if (ctx.has("deno.json") || ctx.has("deno.jsonc")) return undefined
    const text = (yield* ctx.read("package.json")) ?? ""
    const file = ctx.rel("package.json")
    const evidence: Array<Evidence> = []
    let pkg: Json = {}
    try {
      const parsed: unknown = JSON.parse(text)
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) pkg = parsed as Json
    } catch {
      evidence.push(ev(file, "package.json is not valid JSON"))
    }
    evidence.push(ev(file, "package.json present"))
    const deps = asRecord(pkg.dependencies)
    const devDeps = asRecord(pkg.devDependencies)
    const scripts = asRecord(pkg.scripts)
    const name = typeof pkg.name === "string" ? pkg.name : undefined
    const { pm, file: lockfile, lockfiles } = findPackageManager(ctx, pkg)
    if (lockfile) evidence.push(ev(lockfile, `${pm} lockfile`))

    const workspaces = Array.isArray(pkg.workspaces)
      ? (pkg.workspaces as Array<unknown>).filter((x): x is string => typeof x === "string")
      : Array.isArray(asRecord(pkg.workspaces).packages)
        ? (asRecord(pkg.workspaces).packages as unknown as Array<string>)
        : undefined
    let members: Array<string> | undefined = workspaces
    if (ctx.has("pnpm-workspace.yaml")) {
      const ws = (yield* ctx.read("pnpm-workspace.yaml")) ?? ""
      const globs = [...ws.matchAll(/^\s*-\s*["']?([^"'\n#]+?)["']?\s*$/gm)].map((m) => m[1]!.trim())
      members = [...(members ?? []), ...globs]
      evidence.push(ev(ctx.rel("pnpm-workspace.yaml"), "pnpm workspace root"))
    }

    let framework: string | null = null
    for (const [dep, fw] of FRAMEWORKS) {
      if (deps[dep] !== undefined || devDeps[dep] !== undefined) {
        framework = fw
        evidence.push(ev(file, `depends on ${dep}`, lineOf(text, `"${dep}"`)))
        break
      }
    }

    const requires = new BackingSet()
    for (const dep of Object.keys(deps)) {
      requires.add(backingFromDependency(dep), ev(file, `depends on ${dep}`, lineOf(text, `"${dep}"`)))
    }
    if (deps["@prisma/client"] !== undefined || devDeps["prisma"] !== undefined) {
      for (const schema of ["prisma/schema.prisma", "schema.prisma"]) {
        const s = yield* ctx.read(schema)
        const m = s && /provider\s*=\s*"(postgresql|mysql|mongodb|cockroachdb)"/.exec(s)
        if (m) {
          const b =
            m[1] === "postgresql" || m[1] === "cockroachdb"
              ? "postgres"
              : m[1] === "mysql"
                ? "mysql"
                : "mongodb"
          requires.add(b, ev(ctx.rel(schema), `prisma datasource ${m[1]}`, lineOf(s!, m[0])))
        }
      }
    }

    // Start command: scripts.start, else what the framework or `main` implies.
    const main = typeof pkg.main === "string" ? pkg.main.replace(/^\.\//, "") : undefined
    let startCommand: string | null = null
    if (scripts.start) {
      startCommand = scripts.start
      evidence.push(ev(file, `scripts.start: ${scripts.start}`, lineOf(text, /"start"\s*:/)))
    } else if (framework === "nextjs") startCommand = "next start"
    else if (framework === "nest") startCommand = "node dist/main.js"
    else if (framework === "nuxt") startCommand = "node .output/server/index.mjs"
    else if (framework === "remix" && deps["@remix-run/serve"] !== undefined)
      startCommand = "remix-serve ./build/index.js"

    const entryCandidates = [scriptFile(scripts.start), main, ...SERVER_ENTRY_NAMES].filter(
      (x): x is string => typeof x === "string"
    )
    let serverEntry: string | undefined
    for (const e of entryCandidates) {
      if (!ctx.has(e)) continue
      const src = (yield* ctx.read(e)) ?? ""
      if (LISTENS.test(src)) {
        serverEntry = e
        evidence.push(ev(ctx.rel(e), "starts a server", lineOf(src, LISTENS)))
        break
      }
    }
    if (startCommand === null) {
      const entry = serverEntry ?? (main && ctx.has(main) ? main : undefined)
      if (entry && (serverEntry || framework)) {
        startCommand = /\.ts$/.test(entry) ? `node --experimental-strip-types ${entry}` : `node ${entry}`
      }
    }

    // Port: start script flags, then literal listen calls / port constants in sources.
    let port: StackMatch["port"] = undefined
    const cmdPort = scripts.start ? findPortInCommand(scripts.start) : undefined
    if (cmdPort !== undefined) {
      port = {
        port: cmdPort,
        evidence: ev(file, `port in scripts.start: ${scripts.start}`, lineOf(text, /"start"\s*:/))
      }
    } else {
      port = yield* scanForPort(
        ctx,
        sourceCandidates(ctx, entryCandidates, /\.(m|c)?(j|t)sx?$/, 3).filter((f) => !/\.d\.ts$/.test(f))
      )
    }

    const isServer = framework !== null || scripts.start !== undefined || serverEntry !== undefined
    const isWorkspaceRoot = members !== undefined && members.length > 0
    const library = isWorkspaceRoot || !isServer
    const hasDependencies = Object.keys(deps).length > 0
    const manifests = ["package.json", ...lockfiles]
    if (ctx.has(".npmrc")) manifests.push(".npmrc")
    const confidence = framework !== null ? 0.9 : serverEntry || scripts.start ? 0.8 : 0.5
    return {
      kind: "node",
      framework,
      ...(name ? { name } : {}),
      ...(port ? { port } : {}),
      startCommand,
      requires,
      evidence,
      confidence,
      library,
      ...(library
        ? {
            libraryReason: isWorkspaceRoot
              ? "workspace root"
              : "package has no start script, server framework or server entry (a library)"
          }
        : {}),
      ...(isWorkspaceRoot ? { workspaces: members! } : {}),
      hints: {
        stack: "node",
        manifests,
        packageManager: pm,
        hasDependencies,
        buildScript: typeof scripts.build === "string"
      }
    } satisfies StackMatch
  })

export const nodeDefaultPort = (framework: string | null): number =>
  (framework && FRAMEWORK_DEFAULT_PORTS[framework]) || 3000

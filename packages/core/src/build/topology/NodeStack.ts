/**
 * Node.js: package.json (dependencies, scripts.start, main, workspaces), lockfiles, listen calls.
 */
import type { Evidence } from "@kyozo/api/domain/Topology"
import { Effect } from "effect"
import JSON5 from "json5"
import { parse as parseYaml } from "yaml"

import { backingFromDependency, BackingSet } from "./BackingServices.js"
import { findPortInCommand } from "./Ports.js"
import {
  ev,
  lineOf,
  scanForPort,
  sourceCandidates,
  type StackContext,
  type StackDetector,
  type StackMatch
} from "./Stack.js"

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

/**
 * Front ends: built, then their output is what ships. `ssr` names what makes one run its own
 * server instead (an adapter dependency, or a marker in its config file).
 */
interface FrontEnd {
  readonly dep: string
  readonly id: string
  /** Where its build writes the site, unless its config says otherwise. */
  readonly output: string
  readonly ssrDeps?: ReadonlyArray<string>
  readonly configs?: ReadonlyArray<string>
  readonly ssrConfig?: RegExp
  /** The SSR server's entry after the build. */
  readonly ssrStart?: string
  /** Commands that only start a dev server: a platform builds instead of running them. */
  readonly devCommand: RegExp
}
const FRONT_ENDS: ReadonlyArray<FrontEnd> = [
  {
    dep: "astro",
    id: "astro",
    output: "dist",
    ssrDeps: ["@astrojs/node"],
    configs: ["astro.config.mjs", "astro.config.ts", "astro.config.js", "astro.config.cjs"],
    ssrConfig: /output\s*:\s*["'](server|hybrid)["']/,
    ssrStart: "node ./dist/server/entry.mjs",
    devCommand: /^\s*astro\s+(dev|preview)\b|^\s*astro\s*$/
  },
  {
    dep: "@angular/core",
    id: "angular",
    output: "dist",
    ssrDeps: ["@angular/ssr", "@nguniversal/express-engine"],
    devCommand: /^\s*ng\s+serve\b/
  },
  { dep: "gatsby", id: "gatsby", output: "public", devCommand: /^\s*gatsby\s+(develop|serve)\b/ },
  {
    dep: "@docusaurus/core",
    id: "docusaurus",
    output: "build",
    devCommand: /^\s*docusaurus\s+(start|serve)\b/
  },
  {
    dep: "react-scripts",
    id: "create-react-app",
    output: "build",
    devCommand: /^\s*react-scripts\s+start\b/
  },
  {
    dep: "@vue/cli-service",
    id: "vue",
    output: "dist",
    devCommand: /^\s*vue-cli-service\s+serve\b/
  },
  {
    dep: "vite",
    id: "vite",
    output: "dist",
    configs: ["vite.config.ts", "vite.config.js", "vite.config.mjs", "vite.config.mts"],
    devCommand: /^\s*vite(\s+(dev|serve|preview)\b.*)?\s*$/
  },
  {
    dep: "parcel",
    id: "parcel",
    output: "dist",
    devCommand: /^\s*parcel(\s+(serve|watch)\b|\s+[\w./-]+\.html)/
  }
]

/** Frameworks that bundle the front end themselves and run their own server. */
const BUNDLING_FRAMEWORKS = new Set(["nextjs", "nuxt", "remix", "sveltekit"])

/** The manifest files a Node project may have; pnpm also reads package.json5 and package.yaml. */
const MANIFEST_NAMES = ["package.json", "package.json5", "package.yaml"] as const

/**
 * package.json is JSON, yet real ones carry comments or trailing commas (editors accept them, npm
 * does not): JSON first, then JSON5 with a note in the evidence.
 */
const parseManifest = (name: string, text: string): { value: unknown; note?: string } => {
  if (name === "package.yaml") {
    try {
      return { value: parseYaml(text) }
    } catch (e) {
      return { value: undefined, note: `${name} is not valid YAML (${(e as Error).message.split("\n")[0]})` }
    }
  }
  try {
    return { value: JSON.parse(text) }
  } catch {
    try {
      return {
        value: JSON5.parse(text),
        ...(name === "package.json"
          ? { note: "package.json has comments or trailing commas (read as JSON5)" }
          : {})
      }
    } catch {
      return { value: undefined, note: `${name} is not valid JSON` }
    }
  }
}

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
    const manifestName = MANIFEST_NAMES.find((n) => ctx.has(n))
    if (!manifestName) return undefined
    // Deno projects may carry a package.json for npm compatibility; deno.json decides.
    if (ctx.has("deno.json") || ctx.has("deno.jsonc")) return undefined
    const text = (yield* ctx.read(manifestName)) ?? ""
    const file = ctx.rel(manifestName)
    const evidence: Array<Evidence> = []
    let pkg: Json = {}
    const parsed = parseManifest(manifestName, text)
    if (parsed.value && typeof parsed.value === "object" && !Array.isArray(parsed.value))
      pkg = parsed.value as Json
    if (parsed.note) evidence.push(ev(file, parsed.note))
    evidence.push(ev(file, `${manifestName} present`))
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

    // A front end competes with a server reading: a server framework or a start script that runs
    // a server wins (a platform runs it); otherwise it is built and its output served.
    let frontEnd: FrontEnd | undefined = FRONT_ENDS.find(
      (f) => deps[f.dep] !== undefined || devDeps[f.dep] !== undefined
    )
    let ssr = false
    let output: string | undefined
    if (frontEnd) {
      const startRunsServer = scripts.start !== undefined && !frontEnd.devCommand.test(scripts.start)
      const serverFramework = framework !== null && !BUNDLING_FRAMEWORKS.has(framework)
      if (framework !== null && BUNDLING_FRAMEWORKS.has(framework)) {
        // Next/Nest/Nuxt/Remix/SvelteKit embed a bundler: they are the app.
        evidence.push(ev(file, `${frontEnd.id} is part of ${framework}: run as ${framework}`))
        frontEnd = undefined
      } else if (serverFramework || startRunsServer) {
        evidence.push(
          ev(
            file,
            `reads as a ${frontEnd.id} front end and as a server (${serverFramework ? framework : `scripts.start: ${scripts.start}`}): the server is what runs`,
            lineOf(text, `"${frontEnd.dep}"`)
          )
        )
        frontEnd = undefined
      }
    }
    if (frontEnd) {
      const f = frontEnd
      let configText = ""
      for (const c of f.configs ?? []) {
        const t = yield* ctx.read(c)
        if (t !== undefined) {
          configText = t
          break
        }
      }
      ssr =
        (f.ssrDeps ?? []).some((d) => deps[d] !== undefined || devDeps[d] !== undefined) ||
        (f.ssrConfig !== undefined && f.ssrConfig.test(configText))
      framework = f.id
      evidence.push(ev(file, `depends on ${f.dep}: a ${f.id} front end`, lineOf(text, `"${f.dep}"`)))
      if (!ssr) {
        output = f.output
        const outDir = /outDir\s*:\s*["']([\w./-]+)["']/.exec(configText)?.[1]
        if (outDir) output = outDir.replace(/^\.\//, "")
        if (f.id === "angular") output = yield* angularOutput(ctx)
        evidence.push(
          ev(
            file,
            `built with scripts.build, ${output}/ served as a static site`,
            lineOf(text, /"build"\s*:/)
          )
        )
      } else evidence.push(ev(file, `${f.id} with a server adapter: its server runs after the build`))
    }

    // Bundling frameworks set to export a static site: built, and the export is what ships.
    let svelteNode = false
    if (output === undefined && framework === "nextjs") {
      for (const c of ["next.config.js", "next.config.mjs", "next.config.ts", "next.config.cjs"]) {
        const t = yield* ctx.read(c)
        if (t === undefined) continue
        if (/output\s*:\s*["']export["']/.test(t)) {
          output = /distDir\s*:\s*["']([\w./-]+)["']/.exec(t)?.[1] ?? "out"
          evidence.push(
            ev(ctx.rel(c), `output: "export": ${output}/ served as a static site`, lineOf(t, /output\s*:/))
          )
        }
        break
      }
    }
    if (output === undefined && framework === "sveltekit") {
      const has = (d: string) => deps[d] !== undefined || devDeps[d] !== undefined
      if (has("@sveltejs/adapter-static")) {
        output = "build"
        evidence.push(
          ev(
            file,
            "SvelteKit with adapter-static: build/ served as a static site",
            lineOf(text, "adapter-static")
          )
        )
      } else if (has("@sveltejs/adapter-node")) svelteNode = true
    }

    // Start command: scripts.start, else what the framework or `main` implies.
    const mainField =
      typeof pkg.main === "string" ? pkg.main : typeof pkg.module === "string" ? pkg.module : undefined
    const main = mainField?.replace(/^\.\//, "")
    let startCommand: string | null = null
    if (output !== undefined) startCommand = null
    else if (ssr && frontEnd?.ssrStart) startCommand = frontEnd.ssrStart
    else if (ssr && frontEnd?.id === "angular")
      startCommand = `node ${(yield* angularOutput(ctx)).replace(/\/browser$/, "")}/server/server.mjs`
    else if (scripts.start) {
      startCommand = scripts.start
      evidence.push(ev(file, `scripts.start: ${scripts.start}`, lineOf(text, /"start"\s*:/)))
    } else if (framework === "nextjs") startCommand = "next start"
    else if (framework === "nest") startCommand = "node dist/main.js"
    else if (framework === "nuxt") startCommand = "node .output/server/index.mjs"
    else if (framework === "remix" && deps["@remix-run/serve"] !== undefined)
      startCommand = "remix-serve ./build/index.js"
    else if (svelteNode) startCommand = "node build"

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
    // `main`/`module` naming a file in an app that is not published as a package: platforms run
    // `node <main>` (a bot, a worker, a server whose listen call is elsewhere).
    const publishedLibrary =
      pkg.exports !== undefined ||
      pkg.types !== undefined ||
      pkg.typings !== undefined ||
      pkg.files !== undefined ||
      pkg.peerDependencies !== undefined ||
      pkg.bin !== undefined
    // A file that exports is a module others import; one that exports nothing is a program.
    const mainText = main !== undefined && ctx.has(main) ? ((yield* ctx.read(main)) ?? "") : undefined
    const exportsSomething =
      mainText !== undefined && /\bmodule\.exports\b|\bexports\.\w+\s*=|^\s*export\s/m.test(mainText)
    const runnableMain =
      mainText !== undefined && !publishedLibrary && !exportsSomething && output === undefined
    if (startCommand === null && output === undefined) {
      const entry = serverEntry ?? (main && ctx.has(main) ? main : undefined)
      if (entry && (serverEntry || framework || runnableMain)) {
        startCommand = /\.ts$/.test(entry) ? `node --experimental-strip-types ${entry}` : `node ${entry}`
        if (!serverEntry && !framework)
          evidence.push(
            ev(
              file,
              `no start script: ${pkg.main !== undefined ? "main" : "module"} ${entry} is the entry a platform runs`,
              lineOf(text, /"(main|module)"\s*:/)
            )
          )
      }
    } else if (mainText !== undefined && !runnableMain && !scripts.start && !serverEntry && !framework)
      evidence.push(
        ev(
          file,
          `main ${main} ${exportsSomething ? "exports an API" : "is published (exports/types/files/bin)"}: read as a package others import, not run`
        )
      )

    // Port: start script flags, then literal listen calls / port constants in sources.
    let port: StackMatch["port"] = undefined
    const cmdPort = scripts.start && output === undefined ? findPortInCommand(scripts.start) : undefined
    if (output !== undefined) {
      port = undefined
    } else if (ssr && frontEnd?.id === "angular") {
      port = { port: 4000, evidence: ev(file, "Angular SSR server listens on 4000 unless PORT is set") }
    } else if (cmdPort !== undefined) {
      port = {
        port: cmdPort,
        evidence: ev(file, `port in scripts.start: ${scripts.start}`, lineOf(text, /"start"\s*:/))
      }
    } else {
      port = yield* scanForPort(
        ctx,
        sourceCandidates(ctx, entryCandidates, /\.(m|c)?(j|t)sx?$/, 3).filter(
          (f) => !/\.d\.ts$/.test(f) && (frontEnd === undefined || !/^src\//.test(f))
        )
      )
    }

    const isServer =
      framework !== null || scripts.start !== undefined || serverEntry !== undefined || runnableMain
    const isWorkspaceRoot = members !== undefined && members.length > 0
    // A workspace root with its own start script or server entry is what a platform runs.
    const rootRuns = isWorkspaceRoot && (scripts.start !== undefined || serverEntry !== undefined)
    if (rootRuns)
      evidence.push(
        ev(
          file,
          `workspace root with its own ${scripts.start ? "start script" : "server entry"}: it runs, members are its parts`
        )
      )
    const library = (isWorkspaceRoot && !rootRuns) || !isServer
    // A root that runs installs for its members too (they link through node_modules).
    const hasDependencies =
      Object.keys(deps).length > 0 || rootRuns || (output !== undefined && Object.keys(devDeps).length > 0)
    // Manifests not npm can read are written into the build context as plain package.json.
    const rewritten = manifestName !== "package.json" || parsed.note !== undefined
    const manifests = ["package.json", ...lockfiles]
    if (ctx.has(".npmrc")) manifests.push(".npmrc")
    if (rootRuns || (isWorkspaceRoot && output !== undefined))
      manifests.push(...(yield* memberManifests(ctx, members!)))
    const confidence =
      framework !== null ? 0.9 : serverEntry || scripts.start ? 0.8 : runnableMain ? 0.6 : 0.5
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
      ...(runnableMain && !serverEntry && framework === null && !scripts.start && port === undefined
        ? { worker: true }
        : {}),
      ...(library
        ? {
            libraryReason: isWorkspaceRoot
              ? "workspace root"
              : "package has no start script, server framework or server entry (a library)"
          }
        : {}),
      ...(isWorkspaceRoot && !rootRuns ? { workspaces: members! } : {}),
      hints: {
        stack: "node",
        manifests,
        packageManager: pm,
        hasDependencies,
        buildScript: typeof scripts.build === "string",
        ...(output !== undefined ? { output } : {}),
        ...(rewritten && parsed.value !== undefined
          ? { contextFiles: { "package.json": JSON.stringify(pkg, null, 2) + "\n" } }
          : {})
      }
    } satisfies StackMatch
  })

/** Angular's build output: angular.json's outputPath (17+: `<outputPath>/browser`). */
const angularOutput = (ctx: StackContext): Effect.Effect<string> =>
  Effect.gen(function* () {
    const text = yield* ctx.read("angular.json")
    // angular.json as written by hand: every field is checked before use.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let json: any
    try {
      json = text ? JSON5.parse(text) : undefined
    } catch {
      json = undefined
    }
    const projects = json && typeof json.projects === "object" ? Object.entries(json.projects) : []
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const [name, project] = (projects[0] ?? []) as [string | undefined, any]
    const build = project?.architect?.build ?? project?.targets?.build
    const out = build?.options?.outputPath
    const builder = String(build?.builder ?? "")
    const applicationBuilder = /:application$|@angular\/build/.test(builder)
    if (typeof out === "string") return applicationBuilder ? `${out.replace(/\/$/, "")}/browser` : out
    if (out && typeof out === "object" && typeof out.base === "string")
      return `${out.base}/${typeof out.browser === "string" && out.browser !== "" ? out.browser : "browser"}`
    return name ? `dist/${name}${applicationBuilder ? "/browser" : ""}` : "dist"
  })

/** package.json files of workspace members: copied before the install so it links them. */
const memberManifests = (ctx: StackContext, globs: ReadonlyArray<string>): Effect.Effect<Array<string>> =>
  Effect.sync(() => {
    const patterns = globs
      .filter((g) => !g.startsWith("!"))
      .map(
        (g) =>
          new RegExp(
            `^${g
              .replace(/^\.\/|\/+$/g, "")
              .replace(/[.+^${}()|[\]\\]/g, "\\$&")
              .replace(/\*\*/g, "\u0000")
              .replace(/\*/g, "[^/]+")
              .replace(/\u0000/g, ".*")}/package\\.json$`
          )
      )
    return ctx
      .filesBelow(4, /(^|\/)package\.json$/)
      .filter((f) => f !== "package.json" && !f.includes("node_modules/") && patterns.some((p) => p.test(f)))
  })

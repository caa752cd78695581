/**
 * Topology detection: given a folder, say what runs there, with evidence and a confidence.
 * Order of authority: a compose file defines the services of its folder; in a folder without one,
 * a Dockerfile wins over everything else in that folder; otherwise the stacks are asked, and
 * folders that are not services themselves (libraries, workspace roots, plain folders) are searched
 * for apps in their subfolders. Nothing from the folder is executed.
 */
import * as path from "node:path"

import {
  type DetectedService,
  type DetectError,
  type Evidence,
  type TopologyResult
} from "@kyozo/api/domain/Topology"
import { Effect } from "effect"

import {
  backingFromImage,
  backingFromUrl,
  BackingSet,
  backingsFromEnvFile,
  ENV_EXAMPLE_FILES
} from "./BackingServices.js"
import { COMPOSE_FILES, parseCompose, parseDotEnv } from "./Compose.js"
import { detectDeno } from "./DenoStack.js"
import { DOCKERFILE_NAMES, type ParsedDockerfile, parseDockerfile } from "./Dockerfile.js"
import { detectElixir } from "./ElixirStack.js"
import { type FolderIndex, joinRel, scanFolder, type ScanOptions } from "./FolderScan.js"
import { detectGo } from "./GoStack.js"
import { detectJava } from "./JavaStack.js"
import * as KyozoJson from "./KyozoJson.js"
import { detectNode } from "./NodeStack.js"
import { detectPhp } from "./PhpStack.js"
import {
  findPortInCommand,
  FRAMEWORK_DEFAULT_PORTS,
  STACK_DEFAULT_PORTS,
  wellKnownImagePort
} from "./Ports.js"
import { ONE_OFF_PROCESS_TYPES, parseProcfile } from "./Procfile.js"
import { detectPython } from "./PythonStack.js"
import { detectRuby } from "./RubyStack.js"
import { detectRust } from "./RustStack.js"
import { ev, lineOf, makeContext, type StackContext, type StackMatch } from "./Stack.js"
import { detectStatic } from "./StaticStack.js"
import { type PlannedService, type TopologyPlan, toResult } from "./Topology.js"

/** Stacks in order of precedence when one folder matches several (a Rails app with a package.json is Rails). */
const STACKS = [
  detectRuby,
  detectPython,
  detectPhp,
  detectElixir,
  detectJava,
  detectGo,
  detectRust,
  detectDeno,
  detectNode,
  detectStatic
]

const KIND_WORDS: Record<string, string> = {
  node: "(node|npm|yarn|pnpm|bun)",
  python: "(python|gunicorn|uvicorn|pip)",
  go: "(golang|go)",
  ruby: "(ruby|bundle|rails|puma)",
  rust: "(rust|cargo)",
  java: "(java|maven|gradle|temurin|openjdk)",
  php: "(php|composer)",
  deno: "deno",
  elixir: "(elixir|mix)",
  static: "(nginx|httpd|caddy|busybox)"
}

/** Subfolders searched for apps (below folders that are not services themselves), at most this deep. */
const MAX_APP_DEPTH = 4

/**
 * Folders that hold samples or docs: searched only when the rest of the folder has no app (a
 * library's repository whose runnable part is its example; a site under docs/).
 */
const SAMPLE_DIRS = new Set(["examples", "example", "samples", "sample", "docs", "doc", "demo", "demos"])

/** Folders that hold tests, samples or docs: not searched for apps (samples: see SAMPLE_DIRS). */
const NON_APP_DIRS = new Set([
  "test",
  "tests",
  "__tests__",
  "spec",
  "specs",
  "e2e",
  "cypress",
  "fixtures",
  "__fixtures__",
  "testdata",
  "examples",
  "example",
  "samples",
  "sample",
  "docs",
  "doc",
  "bench",
  "benchmarks",
  ".github",
  ".circleci",
  ".devcontainer",
  "scripts",
  "node_modules"
])

/** Lower case, docker-name-safe: [a-z0-9][a-z0-9_.-]*, at most 63 characters. */
export const sanitizeName = (raw: string): string => {
  const base = raw.startsWith("@") && raw.includes("/") ? raw.slice(raw.indexOf("/") + 1) : raw
  const s = base
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .replace(/[^a-z0-9]+$/, "")
    .slice(0, 63)
  return s === "" ? "app" : s
}

const chooseMatch = (matches: ReadonlyArray<StackMatch>): StackMatch | undefined => {
  const services = matches.filter((m) => !m.library)
  if (services.length > 0) {
    // Highest confidence wins; ties keep stack precedence (the array order).
    const best = services.reduce((best, m) => (m.confidence > best.confidence ? m : best))
    const others = services.filter((m) => m !== best)
    if (others.length === 0) return best
    // Two readings compete: say so, and why this one runs.
    const file = best.evidence[0]?.file ?? "."
    const tie = others.some((o) => o.confidence === best.confidence)
    return {
      ...best,
      evidence: [
        ...best.evidence,
        ev(
          file,
          `also reads as ${others.map((o) => `${o.kind}${o.framework ? ` (${o.framework})` : ""} at ${o.confidence}`).join(", ")}: ${best.kind} runs (${tie ? "stack precedence on a tie" : `higher confidence ${best.confidence}`})`
        )
      ]
    }
  }
  return matches[0]
}

const stackMatches = (ctx: StackContext): Effect.Effect<Array<StackMatch>> =>
  Effect.map(
    Effect.forEach(STACKS, (d) => d(ctx)),
    (ms) => ms.filter((m): m is StackMatch => m !== undefined)
  )

interface EnvFacts {
  readonly requires: BackingSet
  readonly port?: { readonly port: number; readonly evidence: Evidence }
}

const envFacts = (index: FolderIndex, dir: string): Effect.Effect<EnvFacts> =>
  Effect.gen(function* () {
    const requires = new BackingSet()
    let port: EnvFacts["port"]
    for (const f of ENV_EXAMPLE_FILES) {
      const rel = joinRel(dir, f)
      if (!index.has(rel)) continue
      const text = (yield* index.read(rel)) ?? ""
      for (const b of backingsFromEnvFile(text, rel)) requires.add(b.backing, b.evidence)
      const m = /^\s*(?:export\s+)?PORT\s*=\s*["']?(\d{2,5})\b/m.exec(text)
      if (m && !port)
        port = { port: Number(m[1]), evidence: ev(rel, `PORT=${m[1]}`, lineOf(text, m[0].trim())) }
    }
    return port ? { requires, port } : { requires }
  })

const findDockerfile = (index: FolderIndex, dir: string): string | undefined =>
  DOCKERFILE_NAMES.map((n) => joinRel(dir, n)).find((f) => index.has(f))

const readDockerfile = (index: FolderIndex, file: string): Effect.Effect<ParsedDockerfile> =>
  Effect.map(index.read(file), (t) => parseDockerfile(t ?? ""))

const mergeRequires = (
  ...sets: ReadonlyArray<BackingSet>
): { names: Array<string>; evidence: Array<Evidence> } => {
  const all = new BackingSet()
  for (const s of sets) all.addAll(s)
  return { names: all.names(), evidence: all.evidence() }
}

interface Builder {
  readonly index: FolderIndex
  readonly rootName: string
  readonly services: Array<PlannedService>
  readonly notes: Array<string>
  /** Second pass: sample and docs folders are searched too. */
  samples?: boolean
}

const relPath = (dir: string): string => (dir === "" ? "." : dir)

/** One service for a folder that is not part of a compose file. */
const serviceForDir = (
  b: Builder,
  dir: string,
  match: StackMatch | undefined,
  dockerfile: string | undefined,
  /** Backing services named beside the app (a compose file of backing images only). */
  beside?: BackingSet
): Effect.Effect<Array<PlannedService>> =>
  Effect.gen(function* () {
    const evidence: Array<Evidence> = []
    const parsed = dockerfile ? yield* readDockerfile(b.index, dockerfile) : undefined
    if (dockerfile) evidence.push(ev(dockerfile, "Dockerfile present: it defines the build"))
    if (match) evidence.push(...match.evidence)
    const env = yield* envFacts(b.index, dir)

    // Procfile: `web` is the start command; other long-running types become services of their own.
    const procRel = joinRel(dir, "Procfile")
    const procText = b.index.has(procRel) ? ((yield* b.index.read(procRel)) ?? "") : ""
    const proc = parseProcfile(procText)
    const web = proc.find((p) => p.type === "web")
    if (web) evidence.push(ev(procRel, `web: ${web.command}`, web.line))

    const framework = match?.framework ?? null
    const stack = match?.kind
    let port: number | null = null
    const exposed = parsed?.exposed[0]
    if (exposed) {
      port = exposed.port
      evidence.push(ev(dockerfile!, `EXPOSE ${exposed.port}`, exposed.line))
    } else if (web && findPortInCommand(web.command) !== undefined) {
      port = findPortInCommand(web.command)!
    } else if (match?.port) {
      port = match.port.port
      evidence.push(match.port.evidence)
    } else if (env.port) {
      port = env.port.port
      evidence.push(env.port.evidence)
    } else if (framework && FRAMEWORK_DEFAULT_PORTS[framework] !== undefined) {
      port = FRAMEWORK_DEFAULT_PORTS[framework]!
      evidence.push({
        file: match!.evidence[0]?.file ?? relPath(dir),
        detail: `default port of ${framework}`
      })
    } else if (stack && (!match!.library || dockerfile) && !(match!.worker && !dockerfile && !web)) {
      port = STACK_DEFAULT_PORTS[stack] ?? null
      if (port !== null)
        evidence.push({ file: match!.evidence[0]?.file ?? relPath(dir), detail: `usual port for ${stack}` })
    }

    let startCommand: string | null = match?.startCommand ?? null
    if (web) startCommand = web.command
    if (parsed?.cmd) {
      startCommand = parsed.cmd.command
      evidence.push(ev(dockerfile!, `CMD ${parsed.cmd.command}`, parsed.cmd.line))
    }
    const { names: requires, evidence: reqEvidence } = mergeRequires(
      match?.requires ?? new BackingSet(),
      env.requires,
      beside ?? new BackingSet()
    )
    evidence.push(
      ...reqEvidence.filter(
        (e) => !evidence.some((x) => x.file === e.file && x.line === e.line && x.detail === e.detail)
      )
    )

    const baseName = sanitizeName(match?.name ?? (dir === "" ? b.rootName : path.posix.basename(dir)))
    const name = uniqueName(b, baseName, dir)
    const service: DetectedService = {
      name,
      path: relPath(dir),
      kind: dockerfile ? "dockerfile" : match!.kind,
      framework,
      port,
      startCommand,
      image: null,
      dependsOn: [],
      requires,
      evidence,
      confidence: dockerfile
        ? 0.95
        : Math.round(Math.min(1, (match?.confidence ?? 0.5) + (web ? 0.05 : 0)) * 100) / 100
    }
    const planned: Array<PlannedService> = [
      dockerfile || !match ? { service } : { service, hints: match.hints }
    ]
    for (const p of proc) {
      if (p.type === "web" || ONE_OFF_PROCESS_TYPES.has(p.type)) continue
      const extra: DetectedService = {
        ...service,
        name: uniqueName(b, sanitizeName(`${name}-${p.type}`), dir),
        port: null,
        startCommand: p.command,
        evidence: [ev(procRel, `${p.type}: ${p.command}`, p.line)],
        confidence: 0.8
      }
      planned.push(dockerfile || !match ? { service: extra } : { service: extra, hints: match.hints })
    }
    return planned
  })

const uniqueName = (b: Builder, base: string, dir: string): string => {
  const taken = new Set(b.services.map((s) => s.service.name))
  if (!taken.has(base)) return base
  const alt = sanitizeName(`${base}-${dir.replace(/\//g, "-")}`)
  if (!taken.has(alt)) return alt
  let i = 2
  while (taken.has(`${base}-${i}`)) i++
  return `${base}-${i}`
}

/** Services of a compose file in `dir`: named by their keys. */
const composeServices = (b: Builder, dir: string, file: string): Effect.Effect<boolean> =>
  Effect.gen(function* () {
    const text = (yield* b.index.read(file)) ?? ""
    // Only the folder's own `.env` feeds interpolation (never the server's environment).
    const dotEnv = parseDotEnv((yield* b.index.read(joinRel(dir, ".env"))) ?? "")
    const parsed = parseCompose(text, dotEnv)
    if (parsed.error) b.notes.push(`${file}: ${parsed.error}`)
    if (parsed.services.length === 0) return false
    const keys = new Set(parsed.services.map((s) => s.key))
    // Backing services the compose file itself provides (by image, or by a key named like one).
    const provided = new Set<string>()
    for (const s of parsed.services) {
      const bk = (s.image ? backingFromImage(s.image) : undefined) ?? backingFromImage(s.key)
      if (bk && (!s.build || s.image)) provided.add(bk)
    }
    for (const s of parsed.services) {
      const evidence: Array<Evidence> = [ev(file, `compose service ${s.key}`, s.line)]
      for (const name of parsed.unset)
        evidence.push(
          ev(file, `warning: variable ${name} is not set (no .env entry, no default): empty string used`)
        )
      let kind: DetectedService["kind"] = "image"
      let framework: string | null = null
      let port: number | null = null
      let startCommand: string | null = s.command ?? null
      let hints: PlannedService["hints"]
      let servicePath = relPath(dir)
      const requires = new BackingSet()
      if (s.build) {
        const ctxDir = path.posix
          .normalize(joinRel(dir, s.build.context.replace(/\\/g, "/")))
          .replace(/^\.\/?|\/$/g, "")
        const inside = !ctxDir.startsWith("..") && !path.posix.isAbsolute(ctxDir)
        servicePath = inside ? relPath(ctxDir === "." ? "" : ctxDir) : s.build.context
        const cdir = servicePath === "." ? "" : servicePath
        evidence.push(ev(file, `builds ${s.build.context}`, s.line))
        if (inside) {
          const dfName = s.build.dockerfile
            ? joinRel(cdir, s.build.dockerfile)
            : findDockerfile(b.index, cdir)
          const match = chooseMatch(yield* stackMatches(makeContext(b.index, cdir)))
          const env = yield* envFacts(b.index, cdir)
          if (match) {
            framework = match.framework
            evidence.push(...match.evidence)
            requires.addAll(match.requires)
          }
          requires.addAll(env.requires)
          const df = dfName && b.index.has(dfName) ? yield* readDockerfile(b.index, dfName) : undefined
          if (df) {
            kind = "dockerfile"
            evidence.push(ev(dfName!, "Dockerfile present: it defines the build"))
          } else if (match) {
            kind = match.kind
            hints = match.hints
          } else kind = "dockerfile"
          if (s.ports[0] !== undefined) {
            port = s.ports[0]
            evidence.push(ev(file, `ports of ${s.key}: ${port}`, s.line))
          } else if (df?.exposed[0]) {
            port = df.exposed[0].port
            evidence.push(ev(dfName!, `EXPOSE ${port}`, df.exposed[0].line))
          } else if (match?.port) {
            port = match.port.port
            evidence.push(match.port.evidence)
          } else if (env.port) port = env.port.port
          else if (match?.framework && FRAMEWORK_DEFAULT_PORTS[match.framework] !== undefined)
            port = FRAMEWORK_DEFAULT_PORTS[match.framework]!
          // A compose service with no ports and no framework is likely a worker: no port.
          if (startCommand === null) startCommand = df?.cmd?.command ?? match?.startCommand ?? null
        } else kind = "dockerfile"
      } else if (s.image) {
        evidence.push(ev(file, `image ${s.image}`, s.line))
        port = s.ports[0] ?? wellKnownImagePort(s.image) ?? null
        if (port !== null) {
          evidence.push(
            ev(
              file,
              s.ports[0] !== undefined ? `ports of ${s.key}: ${port}` : `usual port of ${s.image}`,
              s.line
            )
          )
        }
      }
      for (const [k, v] of Object.entries(s.environment)) {
        const bk = backingFromUrl(v)
        if (bk) requires.add(bk, ev(file, `${s.key} environment ${k} names ${bk}`, s.line))
      }
      const dependsOn = s.dependsOn.filter((d) => keys.has(d))
      if (dependsOn.length > 0) evidence.push(ev(file, `${s.key} depends_on ${dependsOn.join(", ")}`, s.line))
      // Image services are themselves the backing services; the rest need only what is not defined here.
      const needed = s.build ? requires.names().filter((n) => !provided.has(n)) : []
      const service: DetectedService = {
        name: s.key,
        path: servicePath,
        kind,
        framework,
        port,
        startCommand,
        image: s.image ?? null,
        dependsOn,
        requires: needed,
        evidence,
        confidence: 0.95
      }
      for (const skipped of s.skippedMounts)
        evidence.push(ev(file, `warning: volume ${skipped}: not mounted`, s.line))
      if (s.volumes.length > 0)
        evidence.push(
          ev(file, `volumes of ${s.key}: ${s.volumes.map((v) => `${v.name}:${v.target}`).join(", ")}`, s.line)
        )
      b.services.push({
        service,
        ...(hints ? { hints } : {}),
        ...(s.volumes.length > 0 ? { volumes: s.volumes } : {})
      })
    }
    return true
  })

/**
 * A compose file whose services are all backing images (postgres, redis…) is the app's local
 * environment, not the app: their backings, or undefined when the file defines anything else.
 */
const composeBackings = (b: Builder, file: string): Effect.Effect<BackingSet | undefined> =>
  Effect.gen(function* () {
    const parsed = parseCompose((yield* b.index.read(file)) ?? "")
    if (parsed.services.length === 0) return undefined
    const set = new BackingSet()
    for (const s of parsed.services) {
      const bk = s.image && !s.build ? backingFromImage(s.image) : undefined
      if (!bk) return undefined
      set.add(
        bk,
        ev(
          file,
          `compose service ${s.key} (image ${s.image}) is a backing service of the app beside it`,
          s.line
        )
      )
    }
    return set
  })

/** A Procfile with a long-running process type: a platform runs the folder whatever its manifest says. */
const procfileRuns = (b: Builder, dir: string): Effect.Effect<Evidence | undefined> =>
  Effect.gen(function* () {
    const rel = joinRel(dir, "Procfile")
    if (!b.index.has(rel)) return undefined
    const entries = parseProcfile((yield* b.index.read(rel)) ?? "").filter(
      (p) => !ONE_OFF_PROCESS_TYPES.has(p.type)
    )
    const first = entries.find((p) => p.type === "web") ?? entries[0]
    return first ? ev(rel, `Procfile ${first.type}: a platform runs this folder`, first.line) : undefined
  })

/** Walks folders that are not services, looking for apps in their subfolders. */
const visit = (
  b: Builder,
  dir: string,
  depth: number,
  /** Backing services of a compose file in an ancestor folder that defines nothing else. */
  inherited?: BackingSet
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const compose = COMPOSE_FILES.map((f) => joinRel(dir, f)).find((f) => b.index.has(f))
    const own = compose ? yield* composeBackings(b, compose) : undefined
    const beside = own || inherited ? new BackingSet() : undefined
    if (inherited) beside!.addAll(inherited)
    if (own) beside!.addAll(own)
    const dockerfile = findDockerfile(b.index, dir)
    const matches = yield* stackMatches(makeContext(b.index, dir))
    let match = chooseMatch(matches)
    const proc = match?.library ? yield* procfileRuns(b, dir) : undefined
    if (match && proc)
      match = {
        ...match,
        library: false,
        confidence: Math.max(match.confidence, 0.7),
        evidence: [...match.evidence, proc]
      }
    const appBeside =
      own !== undefined && (dockerfile !== undefined || (match !== undefined && !match.library))
    // Backing images only, and no app here: the apps are in the subfolders, and they need them.
    const before = b.services.length
    const searchBelow = own !== undefined && !appBeside && depth < MAX_APP_DEPTH
    if (compose && !appBeside && !searchBelow && (yield* composeServices(b, dir, compose))) return
    if (dockerfile) {
      // The Dockerfile's base image or command names the stack better than a tie between manifests.
      const df = yield* readDockerfile(b.index, dockerfile)
      const hint = `${df.from ?? ""} ${df.cmd?.command ?? ""}`.toLowerCase()
      const named = matches.find((m) => !m.library && new RegExp(`\\b${KIND_WORDS[m.kind]}`).test(hint))
      b.services.push(...(yield* serviceForDir(b, dir, named ?? match, dockerfile, beside)))
      return
    }
    if (match && !match.library && (match.kind !== "static" || dir === "" || depth <= 2)) {
      // A static site talks to no database: backing services are for the apps.
      b.services.push(
        ...(yield* serviceForDir(b, dir, match, undefined, match.kind === "static" ? undefined : beside))
      )
      return
    }
    if (match?.library) b.notes.push(`${relPath(dir)}: ${match.libraryReason ?? "a library"}`)
    if (depth >= MAX_APP_DEPTH) return
    const prefix = dir === "" ? "" : `${dir}/`
    const children = b.index.dirs.filter(
      (d) => d.startsWith(prefix) && d !== dir && !d.slice(prefix.length).includes("/")
    )
    for (const child of children) {
      const name = child.slice(prefix.length)
      if ((NON_APP_DIRS.has(name) && !(b.samples && SAMPLE_DIRS.has(name))) || name.startsWith(".")) continue
      yield* visit(b, child, depth + 1, beside)
    }
    // No app below either: the compose file is what there is to deploy.
    if (searchBelow && b.services.length === before) yield* composeServices(b, dir, compose!)
  })

/** How detection reads a folder; `rootName` names an app at the root that names itself nowhere. */
export interface DetectOptions extends ScanOptions {
  /**
   * The folder's name as its owner knows it (default: the basename of `folder`). An upload lives
   * in `uploads/<team>/<uploadId>`, a basename that changes on every upload: the name the client
   * gave stands in for it, so a manifest-less folder detects the same service every time.
   */
  readonly rootName?: string
}

export const detectPlan = (
  folder: string,
  options?: DetectOptions
): Effect.Effect<TopologyPlan, DetectError> =>
  Effect.gen(function* () {
    const index = yield* scanFolder(folder, options)
    const b: Builder = {
      index,
      rootName: options?.rootName ?? path.basename(index.root),
      services: [],
      notes: []
    }
    yield* visit(b, "", 0)
    if (b.services.length === 0 && index.dirs.some((d) => SAMPLE_DIRS.has(path.posix.basename(d)))) {
      // Nothing outside them: the app a platform would run is in a sample or docs folder.
      const notes = b.notes.length
      b.samples = true
      yield* visit(b, "", 0)
      if (b.services.length === 0) b.notes.splice(notes)
    }
    if (b.services.length > 0)
      return { root: index.root, services: yield* KyozoJson.apply(index.root, b.services) }
    const reason =
      index.files.length === 0
        ? "the folder is empty: nothing to deploy"
        : b.notes.length > 0
          ? `nothing deployable: ${b.notes.join("; ")}`
          : `nothing deployable: no Dockerfile, compose file, Procfile, app manifest or index.html among ${index.files.length} file(s)`
    return { root: index.root, services: [], reason }
  })

/** The JSON contract: services and, when there are none, the reason. */
export const detect = (folder: string, options?: DetectOptions): Effect.Effect<TopologyResult, DetectError> =>
  Effect.map(detectPlan(folder, options), toResult)

export class TopologyDetector extends Effect.Service<TopologyDetector>()("@kyozo/core/TopologyDetector", {
  succeed: { detect, detectPlan } as const
}) {}

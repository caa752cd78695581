/**
 * `kyozo init [folder] [--force] [--json]`: writes `kyozo.json` beside the folder's code with what
 * detection found (name, port, startCommand, healthCheck, replicas, env keys; one entry per
 * service). Later detections and deploys read it back (core/topology/KyozoJson.ts), so a user
 * corrects detection once and keeps it in version control. An existing file is validated and
 * kept unless --force.
 */
import * as fs from "node:fs"
import * as path from "node:path"

import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type { DetectedService } from "@kyozo/api/domain/Topology"
import { Effect, Schema } from "effect"

import { resolveFolder } from "./Folder.js"
import { json, printJson } from "./Output.js"

export class NothingToInit extends Schema.TaggedError<NothingToInit>()("NothingToInit", {
  folder: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `nothing to describe in ${this.folder}: ${this.reason}`
  }
}

const folder = Args.text({ name: "folder" }).pipe(Args.withDescription("the folder"), Args.withDefault("."))
const force = Options.boolean("force").pipe(Options.withDescription("replace an existing kyozo.json"))

/**
 * Names of environment variables the service reads: `process.env.X`, `os.environ["X"]`,
 * `ENV["X"]`, `os.Getenv("X")` in its sources, and the keys of a shipped `.env.example`.
 */
const envKeys = (dir: string): Array<string> => {
  const found = new Set<string>()
  const patterns = [
    /process\.env\.([A-Z_][A-Z0-9_]*)/g,
    /process\.env\[["']([A-Z_][A-Z0-9_]*)["']\]/g,
    /os\.environ(?:\.get)?[[(]["']([A-Z_][A-Z0-9_]*)["']/g,
    /os\.getenv\(["']([A-Z_][A-Z0-9_]*)["']/g,
    /ENV\[["']([A-Z_][A-Z0-9_]*)["']\]/g,
    /os\.Getenv\("([A-Z_][A-Z0-9_]*)"\)/g
  ]
  const walk = (d: string, depth: number) => {
    if (depth > 4) return
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith(".") || e.name === "node_modules" || e.name === "vendor" || e.name === "target")
        continue
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p, depth + 1)
      else if (/\.(m?[jt]sx?|cjs|py|rb|go|ex|exs|php)$/.test(e.name) && fs.statSync(p).size < 512 * 1024) {
        const text = fs.readFileSync(p, "utf8")
        for (const re of patterns) for (const m of text.matchAll(re)) found.add(m[1]!)
      }
    }
  }
  walk(dir, 0)
  // Keys (never values) of an example env file the project ships.
  for (const example of [".env.example", ".env.sample", ".env.template", ".env.dist"]) {
    const file = path.join(dir, example)
    if (!fs.existsSync(file)) continue
    for (const line of fs.readFileSync(file, "utf8").split(/\r?\n/)) {
      const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/.exec(line)
      if (m) found.add(m[1]!)
    }
  }
  // The port is Kyozo's to set.
  found.delete("PORT")
  return [...found].sort()
}

export const describeService = (root: string, s: DetectedService) => ({
  name: s.name,
  path: s.path === "" ? "." : s.path,
  port: s.port,
  startCommand: s.startCommand,
  healthCheck: s.port === null ? { type: "none" as const } : { type: "http" as const, path: "/" },
  replicas: 1,
  env: envKeys(path.join(root, s.path))
})

export const initCommand = Command.make("init", { folder, force, json }, (args) =>
  Effect.gen(function* () {
    const root = resolveFolder(args.folder)
    const KyozoJson = yield* Effect.promise(() => import("@kyozo/core/build/topology/KyozoJson"))
    const { detectPlan } = yield* Effect.promise(() => import("@kyozo/core/build/topology/TopologyDetector"))
    const file = path.join(root, KyozoJson.fileName)
    if (fs.existsSync(file) && !args.force) {
      // Validates the file, and shows what detection makes of the folder with it.
      const plan = yield* detectPlan(root)
      const out = { file, kept: true, services: plan.services.map((p) => p.service.name) }
      if (args.json) return yield* printJson(out)
      process.stdout.write(
        `${file} exists and is valid (services: ${out.services.join(", ")}); --force rewrites it\n`
      )
      return
    }
    if (args.force && fs.existsSync(file)) fs.rmSync(file)
    const plan = yield* detectPlan(root)
    if (plan.services.length === 0)
      return yield* new NothingToInit({ folder: root, reason: plan.reason ?? "no service detected" })
    const content = { services: plan.services.map((p) => describeService(root, p.service)) }
    // Round-trip through the schema: what init writes, deploy accepts.
    const text = JSON.stringify(content, null, 2) + "\n"
    yield* KyozoJson.parse(file, text)
    fs.writeFileSync(file, text)
    if (args.json) return yield* printJson({ file, kept: false, ...content })
    process.stdout.write(
      `wrote ${file}: ${content.services.map((s) => `${s.name} (port ${s.port ?? "-"})`).join(", ")}\nEdit it to correct detection; deploys read it.\n`
    )
  })
).pipe(Command.withDescription("Write kyozo.json with what detection found, for you to correct and keep"))

/**
 * Ruby: Gemfile gems (rails, sinatra, hanami, puma), config.ru (rack), config/puma.rb ports.
 */
import type { Evidence } from "@kyozo/api/domain/Topology"
import { Effect } from "effect"

import { backingFromDependency, BackingSet } from "./BackingServices.js"
import { FRAMEWORK_DEFAULT_PORTS } from "./Ports.js"
import { ev, lineOf, scanForPort, sourceCandidates, type StackDetector } from "./Stack.js"

export const detectRuby: StackDetector = (ctx) =>
  Effect.gen(function* () {
    const hasGemfile = ctx.has("Gemfile")
    const hasRackup = ctx.has("config.ru")
    if (!hasGemfile && !hasRackup) return undefined
    const evidence: Array<Evidence> = []
    const gems = new Map<string, number>()
    const requires = new BackingSet()
    if (hasGemfile) {
      const text = (yield* ctx.read("Gemfile")) ?? ""
      evidence.push(ev(ctx.rel("Gemfile"), "Gemfile present"))
      let group = 0
      text.split(/\r?\n/).forEach((l, i) => {
        const t = l.trim()
        if (/^group\b.*\b(development|test)\b/.test(t)) group++
        else if (group > 0 && /^end\b/.test(t)) group--
        const m = /^gem\s+["']([\w.-]+)["']/.exec(t)
        if (m && group === 0 && !gems.has(m[1]!)) gems.set(m[1]!, i + 1)
      })
      for (const [g, line] of gems)
        requires.add(backingFromDependency(g), ev(ctx.rel("Gemfile"), `gem ${g}`, line))
    }
    let framework: string | null = null
    for (const [gem, fw] of [
      ["rails", "rails"],
      ["railties", "rails"],
      ["hanami", "hanami"],
      ["sinatra", "sinatra"],
      ["roda", "roda"],
      ["grape", "grape"]
    ] as const) {
      if (gems.has(gem)) {
        framework = fw
        evidence.push(ev(ctx.rel("Gemfile"), `gem ${gem}`, gems.get(gem)))
        break
      }
    }
    if (framework === null && ctx.has("config/application.rb")) framework = "rails"
    if (framework === null && hasRackup) framework = "rack"
    if (hasRackup) evidence.push(ev(ctx.rel("config.ru"), "rack config.ru"))

    if (framework === "rails") {
      const db = yield* ctx.read("config/database.yml")
      const m = db && /adapter:\s*(postgresql|mysql2|trilogy|sqlite3)/.exec(db)
      if (m && m[1] !== "sqlite3") {
        requires.add(
          m[1] === "postgresql" ? "postgres" : "mysql",
          ev(ctx.rel("config/database.yml"), `adapter ${m[1]}`, lineOf(db!, m[0]))
        )
      }
    }
    const port = yield* scanForPort(ctx, [
      "config/puma.rb",
      "config.ru",
      "app.rb",
      "server.rb",
      "main.rb",
      ...sourceCandidates(ctx, [], /\.rb$/, 1)
    ])
    const p = port?.port ?? (framework ? FRAMEWORK_DEFAULT_PORTS[framework] : undefined) ?? 3000
    const appFile = ["app.rb", "server.rb", "main.rb"].find((f) => ctx.has(f))
    let startCommand: string | null = null
    if (framework === "rails") startCommand = `bundle exec rails server -b 0.0.0.0 -p ${p}`
    else if (gems.has("puma") && ctx.has("config/puma.rb"))
      startCommand = "bundle exec puma -C config/puma.rb"
    else if (hasRackup) startCommand = `bundle exec rackup -o 0.0.0.0 -p ${p}`
    else if (appFile && framework) startCommand = `bundle exec ruby ${appFile} -o 0.0.0.0 -p ${p}`
    else if (appFile) startCommand = `ruby ${appFile}`
    const library = startCommand === null
    const gemspec = ctx.filesBelow(0, /\.gemspec$/)[0]
    return {
      kind: "ruby",
      framework,
      ...(gemspec ? { name: gemspec.replace(/\.gemspec$/, "") } : {}),
      ...(port ? { port } : {}),
      startCommand,
      requires,
      evidence,
      confidence: framework ? 0.9 : 0.6,
      library,
      ...(library
        ? { libraryReason: "Ruby project without a web framework, config.ru or app file (a gem)" }
        : {}),
      hints: { stack: "ruby", manifests: ["Gemfile", "Gemfile.lock"].filter((f) => ctx.has(f)) }
    }
  })

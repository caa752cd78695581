/**
 * Elixir: mix.exs (app name, deps, umbrella apps_path), Phoenix / Plug, ports from config/*.exs.
 */
import type { Evidence } from "@kyozo/api/domain/Topology"
import { Effect } from "effect"

import { backingFromDependency, BackingSet } from "./BackingServices.js"
import { ev, lineOf, scanForPort, sourceCandidates, type StackDetector } from "./Stack.js"

export const detectElixir: StackDetector = (ctx) =>
  Effect.gen(function* () {
    if (!ctx.has("mix.exs")) return undefined
    const file = ctx.rel("mix.exs")
    const text = (yield* ctx.read("mix.exs")) ?? ""
    const evidence: Array<Evidence> = [ev(file, "mix.exs present")]
    const app = /\bapp:\s*:(\w+)/.exec(text)?.[1]
    const umbrella = /apps_path:\s*"([^"]+)"/.exec(text)?.[1]
    const deps = [...text.matchAll(/\{\s*:(\w+)\s*,/g)].map((m) => m[1]!)
    const requires = new BackingSet()
    for (const d of deps)
      requires.add(backingFromDependency(d), ev(file, `depends on ${d}`, lineOf(text, `:${d},`)))
    let framework: string | null = null
    if (deps.includes("phoenix")) framework = "phoenix"
    else if (deps.includes("plug_cowboy") || deps.includes("bandit")) framework = "plug"
    if (framework)
      evidence.push(
        ev(
          file,
          `depends on ${framework === "phoenix" ? "phoenix" : "plug"}`,
          lineOf(text, framework === "phoenix" ? ":phoenix," : /:plug_cowboy,|:bandit,/)
        )
      )
    const port = yield* scanForPort(ctx, [
      "config/runtime.exs",
      "config/prod.exs",
      "config/config.exs",
      "config/dev.exs",
      ...sourceCandidates(ctx, [], /\.exs?$/, 3)
    ])
    const runs = framework !== null || /\bmod:\s*\{/.test(text)
    const library = umbrella !== undefined || !runs
    return {
      kind: "elixir",
      framework,
      ...(app ? { name: app.replace(/_/g, "-") } : {}),
      ...(port ? { port } : {}),
      startCommand: library ? null : `/app/bin/${app ?? "app"} start`,
      requires,
      evidence,
      confidence: framework ? 0.9 : 0.6,
      library,
      ...(library
        ? {
            libraryReason: umbrella
              ? "umbrella project root"
              : "Mix project without an application module (a library)"
          }
        : {}),
      ...(umbrella ? { workspaces: [`${umbrella}/*`] } : {}),
      hints: {
        stack: "elixir",
        manifests: ["mix.exs", "mix.lock"].filter((f) => ctx.has(f)),
        ...(app ? { target: app } : {})
      }
    }
  })

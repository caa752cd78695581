/**
 * PHP: composer.json (laravel, symfony, slim), index.php / public/index.php document roots.
 */
import type { Evidence } from "@kyozo/api/domain/Topology"
import { Effect } from "effect"

import { backingFromDependency, BackingSet } from "./BackingServices.js"
import { FRAMEWORK_DEFAULT_PORTS } from "./Ports.js"
import { ev, lineOf, scanForPort, type StackDetector } from "./Stack.js"

export const detectPhp: StackDetector = (ctx) =>
  Effect.gen(function* () {
    const hasComposer = ctx.has("composer.json")
    const docroot = ["public/index.php", "web/index.php", "index.php"].find((f) => ctx.has(f))
    if (!hasComposer && !docroot) return undefined
    const evidence: Array<Evidence> = []
    const requires = new BackingSet()
    let framework: string | null = null
    let name: string | undefined
    let type: string | undefined
    let hasDeps = false
    if (hasComposer) {
      const text = (yield* ctx.read("composer.json")) ?? ""
      const file = ctx.rel("composer.json")
      evidence.push(ev(file, "composer.json present"))
      try {
        const json = JSON.parse(text) as { name?: string; type?: string; require?: Record<string, string> }
        name = json.name?.split("/").pop()
        type = json.type
        const req = json.require ?? {}
        hasDeps = Object.keys(req).some((k) => k !== "php" && !k.startsWith("ext-"))
        for (const dep of Object.keys(req))
          requires.add(backingFromDependency(dep), ev(file, `requires ${dep}`, lineOf(text, `"${dep}"`)))
        for (const [dep, fw] of [
          ["laravel/framework", "laravel"],
          ["laravel/lumen-framework", "lumen"],
          ["symfony/framework-bundle", "symfony"],
          ["slim/slim", "slim"],
          ["cakephp/cakephp", "cakephp"],
          ["yiisoft/yii2", "yii"]
        ] as const) {
          if (req[dep] !== undefined) {
            framework = fw
            evidence.push(ev(file, `requires ${dep}`, lineOf(text, `"${dep}"`)))
            break
          }
        }
      } catch {
        evidence.push(ev(file, "composer.json is not valid JSON"))
      }
    }
    if (docroot) evidence.push(ev(ctx.rel(docroot), "PHP entry point"))
    const env = (yield* ctx.read(".env.example")) ?? ""
    const conn = /^DB_CONNECTION=(pgsql|mysql)/m.exec(env)
    if (conn)
      requires.add(
        conn[1] === "pgsql" ? "postgres" : "mysql",
        ev(ctx.rel(".env.example"), `DB_CONNECTION=${conn[1]}`, lineOf(env, conn[0]))
      )
    const port = yield* scanForPort(ctx, ["composer.json", ...(docroot ? [docroot] : [])])
    const p = port?.port ?? (framework ? FRAMEWORK_DEFAULT_PORTS[framework] : undefined) ?? 8000
    const root = docroot ? (docroot.includes("/") ? docroot.slice(0, docroot.indexOf("/")) : ".") : "public"
    const library = !docroot && framework === null && (type === "library" || !ctx.has("artisan"))
    const startCommand = library
      ? null
      : framework === "laravel" && ctx.has("artisan")
        ? `php artisan serve --host=0.0.0.0 --port=${p}`
        : `php -S 0.0.0.0:${p} -t ${root}`
    return {
      kind: "php",
      framework,
      ...(name ? { name } : {}),
      ...(port ? { port } : {}),
      startCommand,
      requires,
      evidence,
      confidence: framework ? 0.9 : docroot ? 0.75 : 0.4,
      library,
      ...(library ? { libraryReason: "PHP package without an entry point (a library)" } : {}),
      hints: {
        stack: "php",
        manifests: ["composer.json", "composer.lock"].filter((f) => ctx.has(f)),
        hasDependencies: hasDeps,
        siteDir: root
      }
    }
  })

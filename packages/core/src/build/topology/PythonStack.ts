/**
 * Python: requirements*.txt, pyproject.toml (PEP 621 and Poetry), Pipfile, setup.py, manage.py;
 * frameworks from dependencies and from the app object in the entry module.
 */
import type { Evidence } from "@kyozo/api/domain/Topology"
import { Effect } from "effect"

import { backingFromDependency, BackingSet } from "./BackingServices.js"
import { FRAMEWORK_DEFAULT_PORTS, STACK_DEFAULT_PORTS } from "./Ports.js"
import { ev, lineOf, scanForPort, sourceCandidates, type StackDetector } from "./Stack.js"

const MANIFESTS = [
  "requirements.txt",
  "pyproject.toml",
  "Pipfile",
  "Pipfile.lock",
  "poetry.lock",
  "uv.lock",
  "setup.py",
  "setup.cfg"
]

const normalize = (name: string): string => name.toLowerCase().replace(/_/g, "-").trim()

/** Dependency names with the line they are on, from any Python manifest. */
export const pythonDependencies = (file: string, text: string): Array<{ name: string; line: number }> => {
  const out: Array<{ name: string; line: number }> = []
  const lines = text.split(/\r?\n/)
  if (file.endsWith(".txt") || file.endsWith(".in")) {
    lines.forEach((l, i) => {
      const m = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?)/.exec(l)
      if (m && !l.trim().startsWith("-"))
        out.push({ name: normalize(m[1]!.replace(/\[.*\]/, "")), line: i + 1 })
    })
    return out
  }
  // TOML-ish: PEP 621 arrays, Poetry/Pipfile tables. A full TOML parser is not needed for names.
  let section = ""
  let inArray = false
  lines.forEach((l, i) => {
    const t = l.trim()
    const sec = /^\[([^\]]+)\]/.exec(t)
    if (sec) {
      section = sec[1]!.trim()
      inArray = false
      return
    }
    const depTable =
      /^(packages|dev-packages|tool\.poetry\.dependencies|tool\.poetry\.group\.[\w-]+\.dependencies)$/.test(
        section
      )
    if (depTable) {
      const m = /^["']?([A-Za-z0-9][A-Za-z0-9._-]*)["']?\s*=/.exec(t)
      if (m && m[1] !== "python") out.push({ name: normalize(m[1]!), line: i + 1 })
      return
    }
    if (
      /^(dependencies|requires|optional-dependencies\.\w+|[\w-]+)\s*=\s*\[/.test(t) &&
      /project|build-system|dependency-groups/.test(section)
    ) {
      inArray = !t.includes("]") || (t.match(/\[/g)?.length ?? 0) > (t.match(/\]/g)?.length ?? 0)
      for (const m of t.matchAll(/["']([A-Za-z0-9][A-Za-z0-9._-]*)/g))
        out.push({ name: normalize(m[1]!), line: i + 1 })
      return
    }
    if (inArray) {
      if (t.startsWith("]")) {
        inArray = false
        return
      }
      const m = /^["']([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(t)
      if (m) out.push({ name: normalize(m[1]!), line: i + 1 })
    }
  })
  return out
}

const FRAMEWORKS: ReadonlyArray<readonly [string, string]> = [
  ["django", "django"],
  ["fastapi", "fastapi"],
  ["flask", "flask"],
  ["starlette", "starlette"],
  ["aiohttp", "aiohttp"],
  ["tornado", "tornado"],
  ["sanic", "sanic"],
  ["falcon", "falcon"],
  ["bottle", "bottle"],
  ["pyramid", "pyramid"],
  ["streamlit", "streamlit"]
]

const ENTRY_FILES = [
  "app.py",
  "main.py",
  "server.py",
  "wsgi.py",
  "asgi.py",
  "run.py",
  "application.py",
  "api.py",
  "app/main.py",
  "app/__init__.py",
  "app/app.py",
  "src/main.py",
  "src/app.py",
  "__main__.py"
]

/** Entry names platforms run as `python <file>` even without a manifest or a __main__ guard. */
const NAMED_ENTRIES = ["main.py", "app.py", "bot.py", "server.py", "run.py", "worker.py"]

/** Folders of wheels shipped with the app (air-gapped installs). */
const WHEEL_DIRS = ["wheels", "vendor", "wheelhouse"]

const APP_OBJECT =
  /^\s*(\w+)\s*(?::\s*\w+\s*)?=\s*(FastAPI|Flask|Starlette|Sanic|Quart|web\.Application|falcon\.(?:App|API)|Bottle)\(/m

const moduleOf = (file: string): string =>
  file
    .replace(/\.py$/, "")
    .replace(/\/__init__$/, "")
    .replace(/\//g, ".")

export const detectPython: StackDetector = (ctx) =>
  Effect.gen(function* () {
    const manifests = MANIFESTS.filter((m) => ctx.has(m))
    const reqFiles = ctx.filesBelow(1, /^requirements[\w.-]*\.(txt|in)$|^requirements\/[\w.-]+\.txt$/)
    const hasManage = ctx.has("manage.py")
    const topPy = ctx.filesBelow(0, /\.py$/)
    const named = NAMED_ENTRIES.find((f) => ctx.has(f))
    if (
      manifests.length === 0 &&
      reqFiles.length === 0 &&
      !hasManage &&
      (topPy.length === 0 || (ctx.dir !== "" && named === undefined))
    ) {
      // Loose scripts in a subfolder (tools, scripts/) are not services; at the root, or under an
      // entry name platforms run (main.py, app.py, bot.py…), they may be.
      return undefined
    }
    // Loose .py files only make a Python service when one of them looks like an entry point.
    const evidence: Array<Evidence> = []
    const deps = new Map<string, { file: string; line: number }>()
    for (const f of [...new Set([...manifests.filter((m) => !m.endsWith(".lock")), ...reqFiles])]) {
      const text = yield* ctx.read(f)
      if (text === undefined) continue
      evidence.push(ev(ctx.rel(f), "Python dependency manifest"))
      // Production requirements only: dev/test files do not decide the framework or backing services.
      const dev = /(dev|test|lint|doc)/i.test(f) && f !== "requirements.txt"
      for (const d of pythonDependencies(f, text)) {
        if (!deps.has(d.name) && !dev) deps.set(d.name, { file: ctx.rel(f), line: d.line })
      }
    }
    let framework: string | null = null
    for (const [dep, fw] of FRAMEWORKS) {
      const at = deps.get(dep)
      if (at) {
        framework = fw
        evidence.push(ev(at.file, `depends on ${dep}`, at.line))
        break
      }
    }
    if (hasManage) {
      if (framework === null) framework = "django"
      evidence.push(ev(ctx.rel("manage.py"), "Django manage.py"))
    }

    // The entry module and its app object decide how to start it.
    let entry: string | undefined
    let appVar = "app"
    let entryText = ""
    const candidates = [...ENTRY_FILES, ...topPy.filter((f) => !ENTRY_FILES.includes(f))]
    for (const f of candidates) {
      if (!ctx.has(f)) continue
      const text = (yield* ctx.read(f)) ?? ""
      const m = APP_OBJECT.exec(text)
      if (m) {
        entry = f
        entryText = text
        appVar = m[1]!
        if (framework === null)
          framework = m[2]!.toLowerCase().startsWith("fastapi")
            ? "fastapi"
            : m[2]!.toLowerCase() === "flask"
              ? "flask"
              : null
        evidence.push(ev(ctx.rel(f), `creates ${m[2]} app \`${m[1]}\``, lineOf(text, m[0].trim())))
        break
      }
      if (
        !entry &&
        (/if __name__ == ["']__main__["']/.test(text) || /serve_forever\(|HTTPServer\(/.test(text))
      ) {
        entry = f
        entryText = text
      }
    }
    let byName = false
    if (!entry && named !== undefined) {
      byName = true
      // No app object, no __main__ guard: a script that runs top to bottom (a bot, a worker).
      entry = named
      entryText = (yield* ctx.read(named)) ?? ""
      evidence.push(ev(ctx.rel(named), `${named}: the entry a platform runs (python ${named})`))
    }
    if (manifests.length === 0 && reqFiles.length === 0 && !hasManage && !entry) return undefined
    if (manifests.length === 0 && reqFiles.length === 0 && entry)
      evidence.push(ev(ctx.rel(entry), "no dependency manifest: only the standard library is available"))
    if (entry && !evidence.some((e) => e.file === ctx.rel(entry!))) {
      evidence.push(
        ev(ctx.rel(entry), "entry module", lineOf(entryText, /__main__|serve_forever|HTTPServer/))
      )
    }

    const requires = new BackingSet()
    for (const [dep, at] of deps)
      requires.add(backingFromDependency(dep), ev(at.file, `depends on ${dep}`, at.line))

    // Django: the settings module names the database engine and the WSGI module.
    let wsgiModule: string | undefined
    if (framework === "django") {
      const wsgi = ctx.filesBelow(2, /(^|\/)wsgi\.py$/)[0]
      if (wsgi) wsgiModule = moduleOf(wsgi)
      for (const s of ctx.filesBelow(3, /settings(\/\w+)?\.py$|settings\.py$/)) {
        const text = (yield* ctx.read(s)) ?? ""
        const m = /django\.db\.backends\.(postgresql|postgresql_psycopg2|mysql)/.exec(text)
        if (m)
          requires.add(
            m[1] === "mysql" ? "mysql" : "postgres",
            ev(ctx.rel(s), `database ENGINE ${m[0]}`, lineOf(text, m[0]))
          )
      }
    }

    const port = yield* scanForPort(ctx, [
      ...(entry ? [entry] : []),
      ...["gunicorn.conf.py", "gunicorn_config.py"],
      ...sourceCandidates(ctx, ENTRY_FILES, /\.py$/, 2)
    ])
    const effectivePort =
      port?.port ??
      (framework ? FRAMEWORK_DEFAULT_PORTS[framework] : undefined) ??
      STACK_DEFAULT_PORTS.python!
    const hasGunicorn = deps.has("gunicorn")
    const hasUvicorn = deps.has("uvicorn")
    const mod = entry ? moduleOf(entry) : "app"
    let startCommand: string | null = null
    if (framework === "django") {
      startCommand =
        hasGunicorn && wsgiModule
          ? `gunicorn ${wsgiModule}:application --bind 0.0.0.0:${effectivePort}`
          : `python manage.py runserver 0.0.0.0:${effectivePort}`
    } else if (framework === "fastapi" || framework === "starlette") {
      startCommand =
        /uvicorn\.run\(/.test(entryText) && entry
          ? `python ${entry}`
          : `uvicorn ${mod}:${appVar} --host 0.0.0.0 --port ${effectivePort}`
    } else if (framework === "flask") {
      startCommand = hasGunicorn
        ? `gunicorn --bind 0.0.0.0:${effectivePort} ${mod}:${appVar}`
        : /\.run\(/.test(entryText) && entry
          ? `python ${entry}`
          : `flask --app ${mod} run --host 0.0.0.0 --port ${effectivePort}`
    } else if (framework === "streamlit" && entry) {
      startCommand = `streamlit run ${entry} --server.port ${effectivePort} --server.address 0.0.0.0`
    } else if (entry) {
      startCommand =
        hasUvicorn && framework
          ? `uvicorn ${mod}:${appVar} --host 0.0.0.0 --port ${effectivePort}`
          : `python ${entry}`
    }
    const library = startCommand === null && framework === null
    const wheelDir = WHEEL_DIRS.find((d) => ctx.filesBelow(1, /\.whl$/).some((f) => f.startsWith(`${d}/`)))
    if (wheelDir)
      evidence.push(ev(ctx.rel(wheelDir), `ships its wheels in ${wheelDir}/: installs offline from them`))
    const name = yield* Effect.map(ctx.read("pyproject.toml"), (t) =>
      t ? /^\s*name\s*=\s*["']([^"']+)["']/m.exec(t)?.[1] : undefined
    )
    return {
      kind: "python",
      framework: framework ?? null,
      ...(name ? { name } : {}),
      ...(port ? { port } : {}),
      startCommand,
      requires,
      evidence,
      confidence: framework ? 0.9 : entry ? (byName ? 0.55 : 0.75) : 0.4,
      library,
      ...(byName &&
      framework === null &&
      !port &&
      !/serve_forever\(|HTTPServer\(|\.listen\(|\.bind\(/.test(entryText)
        ? { worker: true }
        : {}),
      ...(library
        ? { libraryReason: "Python package without a framework or an entry module (a library)" }
        : {}),
      hints: {
        stack: "python",
        manifests: [...new Set([...manifests, ...reqFiles])],
        hasDependencies: deps.size > 0,
        ...(wheelDir ? { wheelDir } : {})
      }
    }
  })

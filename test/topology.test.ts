import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { describe, expect, it } from "@effect/vitest"
import type { DetectedService, TopologyResult } from "@kyozo/api/domain/Topology"
import { parseCompose } from "@kyozo/core/build/topology/Compose"
import { parseDockerfile } from "@kyozo/core/build/topology/Dockerfile"
import { findPortInText, wellKnownImagePort } from "@kyozo/core/build/topology/Ports"
import { detect, sanitizeName } from "@kyozo/core/build/topology/TopologyDetector"
import { Effect, Exit } from "effect"
import * as fc from "fast-check"

const FIX = path.resolve(__dirname, "fixtures/detect")
const run = (name: string): Effect.Effect<TopologyResult, unknown> => detect(path.join(FIX, name))
const only = (r: TopologyResult): DetectedService => {
  expect(r.services).toHaveLength(1)
  return r.services[0]!
}
const byName = (r: TopologyResult, name: string): DetectedService => {
  const s = r.services.find((x) => x.name === name)
  if (!s) throw new Error(`no service ${name} in ${r.services.map((x) => x.name).join(",")}`)
  return s
}

interface Expect {
  readonly kind: DetectedService["kind"]
  readonly framework: string | null
  readonly port: number | null
  readonly start?: string | RegExp
  readonly requires?: ReadonlyArray<string>
  readonly name?: string
}

const single: Record<string, Expect> = {
  "node-express": {
    kind: "node",
    framework: "express",
    port: 8080,
    start: "node server.js",
    requires: ["postgres"],
    name: "shop-api"
  },
  "node-fastify": {
    kind: "node",
    framework: "fastify",
    port: 4000,
    start: "node index.js",
    requires: ["redis"]
  },
  "node-nextjs": { kind: "node", framework: "nextjs", port: 3001, start: "next start -p 3001", requires: [] },
  "node-nest": { kind: "node", framework: "nest", port: 3002, requires: ["mongodb"] },
  "node-koa": { kind: "node", framework: "koa", port: 3005, start: "node app.js", requires: ["rabbitmq"] },
  "node-http": { kind: "node", framework: null, port: 8090, start: "node server.js", requires: [] },
  "node-env-backing": { kind: "node", framework: "express", port: 3000, requires: ["mysql", "redis"] },
  "python-flask": {
    kind: "python",
    framework: "flask",
    port: 5050,
    start: "python app.py",
    requires: ["redis"],
    name: "python-flask"
  },
  "python-django": {
    kind: "python",
    framework: "django",
    port: 8000,
    start: /^gunicorn mysite\.wsgi:application/,
    requires: ["postgres"]
  },
  "python-fastapi": {
    kind: "python",
    framework: "fastapi",
    port: 8000,
    start: /^uvicorn main:app/,
    requires: ["postgres"],
    name: "inventory"
  },
  "python-plain": {
    kind: "python",
    framework: null,
    port: 8765,
    start: "python main.py",
    requires: ["mongodb"]
  },
  "go-plain": { kind: "go", framework: null, port: 8081, requires: ["postgres"], name: "hello" },
  "go-gin": { kind: "go", framework: "gin", port: 8080, requires: ["redis"] },
  "ruby-sinatra": { kind: "ruby", framework: "sinatra", port: 4570, requires: ["redis"] },
  "ruby-rack": { kind: "ruby", framework: "rack", port: 9292, start: /rackup/ },
  "rust-axum": { kind: "rust", framework: "axum", port: 3000, requires: ["postgres"], name: "todo-api" },
  "rust-actix": { kind: "rust", framework: "actix", port: 8088, requires: ["redis"] },
  "java-spring-maven": {
    kind: "java",
    framework: "spring",
    port: 8081,
    requires: ["postgres"],
    name: "billing"
  },
  "java-spring-gradle": {
    kind: "java",
    framework: "spring",
    port: 9090,
    requires: ["redis"],
    name: "catalog"
  },
  "php-plain": { kind: "php", framework: null, port: 8000, start: /^php -S 0\.0\.0\.0:8000/ },
  "php-laravel": { kind: "php", framework: "laravel", port: 8000, requires: ["postgres", "redis"] },
  "deno-app": { kind: "deno", framework: null, port: 8100, start: "deno task start" },
  "elixir-phoenix": {
    kind: "elixir",
    framework: "phoenix",
    port: 4000,
    requires: ["postgres"],
    name: "chat"
  },
  "static-site": { kind: "static", framework: null, port: 8080, name: "static-site" }
}

describe("topology: one service per stack", () => {
  for (const [fixture, e] of Object.entries(single)) {
    it.effect(fixture, () =>
      Effect.gen(function* () {
        const s = only(yield* run(fixture))
        expect(s.kind).toBe(e.kind)
        expect(s.framework).toBe(e.framework)
        expect(s.port).toBe(e.port)
        expect(s.path).toBe(".")
        if (typeof e.start === "string") expect(s.startCommand).toBe(e.start)
        else if (e.start) expect(s.startCommand).toMatch(e.start)
        if (e.requires) expect(s.requires).toEqual(e.requires)
        if (e.name) expect(s.name).toBe(e.name)
        expect(s.name).toMatch(/^[a-z0-9][a-z0-9_.-]*$/)
        expect(s.evidence.length).toBeGreaterThan(0)
        expect(s.confidence).toBeGreaterThan(0)
        expect(s.confidence).toBeLessThanOrEqual(1)
        expect(s.dependsOn).toEqual([])
      })
    )
  }

  it.effect("lockfiles and evidence point at files and lines", () =>
    Effect.gen(function* () {
      const express = only(yield* run("node-express"))
      expect(express.evidence).toContainEqual(expect.objectContaining({ file: "package-lock.json" }))
      expect(express.evidence).toContainEqual(expect.objectContaining({ file: "server.js", line: 4 }))
      expect(only(yield* run("node-fastify")).evidence).toContainEqual(
        expect.objectContaining({ file: "pnpm-lock.yaml" })
      )
      expect(only(yield* run("node-nextjs")).evidence).toContainEqual(
        expect.objectContaining({ file: "yarn.lock" })
      )
      expect(only(yield* run("node-nest")).evidence).toContainEqual(
        expect.objectContaining({ file: "bun.lock" })
      )
      const spring = only(yield* run("java-spring-maven"))
      expect(spring.evidence).toContainEqual(
        expect.objectContaining({ file: "src/main/resources/application.properties", line: 2 })
      )
    })
  )
})

describe("topology: Procfile, Dockerfile, compose", () => {
  it.effect("Procfile web is the start command, workers are services, release is not", () =>
    Effect.gen(function* () {
      const r = yield* run("python-procfile")
      expect(r.services.map((s) => s.name).sort()).toEqual(["python-procfile", "python-procfile-worker"])
      const web = byName(r, "python-procfile")
      expect(web.startCommand).toBe("gunicorn app:app --bind 0.0.0.0:7000")
      expect(web.port).toBe(7000)
      expect(byName(r, "python-procfile-worker").port).toBeNull()
      const rails = yield* run("ruby-rails")
      const app = byName(rails, "ruby-rails")
      expect(app.kind).toBe("ruby") // a Rails app with a package.json is still Rails
      expect(app.framework).toBe("rails")
      expect(app.port).toBe(3000)
      expect(app.startCommand).toBe("bundle exec puma -C config/puma.rb")
      expect(app.requires).toEqual(["postgres", "redis"])
      expect(byName(rails, "ruby-rails-worker").startCommand).toBe("bundle exec sidekiq")
    })
  )

  it.effect("a Dockerfile wins over everything else in its folder", () =>
    Effect.gen(function* () {
      const s = only(yield* run("dockerfile-app"))
      expect(s.kind).toBe("dockerfile")
      expect(s.port).toBe(9999) // EXPOSE ${APP_PORT} with ARG APP_PORT=9999, not the listen(3000)
      expect(s.startCommand).toBe("node app.js")
      expect(s.framework).toBe("express")
      expect(s.evidence).toContainEqual(expect.objectContaining({ file: "Dockerfile", line: 6 }))
    })
  )

  it.effect("compose: keys, build contexts, both depends_on forms, image ports", () =>
    Effect.gen(function* () {
      const r = yield* run("compose-stack")
      expect(r.services.map((s) => s.name)).toEqual(["web", "worker", "db", "cache", "proxy"])
      const web = byName(r, "web")
      expect(web).toMatchObject({
        kind: "dockerfile",
        path: "web",
        port: 3000,
        framework: "express",
        dependsOn: ["db", "cache"]
      })
      // postgres and redis are defined by the compose file: not required from outside.
      expect(web.requires).toEqual([])
      const worker = byName(r, "worker")
      expect(worker).toMatchObject({ kind: "python", path: "worker", port: null, dependsOn: ["db", "cache"] })
      expect(worker.requires).toEqual(["rabbitmq"])
      expect(byName(r, "db")).toMatchObject({ kind: "image", image: "postgres:16", port: 5432 })
      expect(byName(r, "cache")).toMatchObject({ kind: "image", image: "redis:7-alpine", port: 6379 })
      expect(byName(r, "proxy")).toMatchObject({ kind: "image", port: 80, dependsOn: ["web"] })
      const legacy = yield* run("compose-legacy")
      expect(byName(legacy, "api")).toMatchObject({
        kind: "dockerfile",
        port: 5000,
        dependsOn: ["mongo"],
        requires: []
      })
      expect(byName(legacy, "mongo").port).toBe(27017)
      expect(byName(legacy, "queue").port).toBe(5672)
    })
  )
})

describe("topology: monorepos and nothing deployable", () => {
  it.effect("npm workspaces: apps are services, the library is not", () =>
    Effect.gen(function* () {
      const r = yield* run("monorepo-npm")
      expect(r.services.map((s) => s.name).sort()).toEqual(["api", "web"])
      expect(byName(r, "api")).toMatchObject({ path: "apps/api", framework: "express", port: 4001 })
      expect(byName(r, "web")).toMatchObject({ path: "apps/web", framework: "nextjs", port: 3000 })
      // The lockfile lives at the workspace root.
      expect(byName(r, "api").evidence).toContainEqual(expect.objectContaining({ file: "package-lock.json" }))
    })
  )

  it.effect("pnpm workspace with a Go service and a library", () =>
    Effect.gen(function* () {
      const r = yield* run("monorepo-pnpm")
      expect(r.services.map((s) => [s.name, s.kind, s.port]).sort()).toEqual([
        ["billing", "go", 7002],
        ["users", "node", 7001]
      ])
      expect(byName(r, "users").requires).toEqual(["postgres"])
    })
  )

  it.effect("ignored folders never produce services", () =>
    Effect.gen(function* () {
      const r = yield* run("ignored-only")
      expect(r.services).toEqual([])
      expect(r.reason).toMatch(/nothing deployable/)
    })
  )

  it.effect("a library or plain notes: no services, with a reason", () =>
    Effect.gen(function* () {
      const lib = yield* run("library-only")
      expect(lib.services).toEqual([])
      expect(lib.reason).toMatch(/library/)
      const nothing = yield* run("nothing")
      expect(nothing.services).toEqual([])
      expect(nothing.reason).toMatch(/2 file/)
    })
  )

  it.effect("an empty folder is an answer; a missing one is a typed error", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-empty-"))
      const r = yield* detect(dir)
      fs.rmSync(dir, { recursive: true })
      expect(r.services).toEqual([])
      expect(r.reason).toMatch(/empty/)
      const exit = yield* Effect.exit(detect(path.join(dir, "missing")))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toMatch(/NotFound/)
    })
  )

  it.effect("a root app without a name of its own takes rootName (an upload's folder is its upload id)", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "upl_"))
      fs.writeFileSync(path.join(dir, "index.html"), "<h1>hi</h1>")
      expect(only(yield* detect(dir)).name).toBe(sanitizeName(path.basename(dir)))
      expect(only(yield* detect(dir, { rootName: "My Site" })).name).toBe(sanitizeName("My Site"))
      // A name the folder gives itself still wins.
      fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "own-name", main: "index.js" }))
      fs.writeFileSync(path.join(dir, "index.js"), "require('http').createServer().listen(3000)")
      expect(only(yield* detect(dir, { rootName: "my-site" })).name).toBe("own-name")
      fs.rmSync(dir, { recursive: true, force: true })
    })
  )

  it.effect("symlinks are not followed", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-link-"))
      fs.symlinkSync(path.join(FIX, "node-express"), path.join(dir, "linked"))
      const r = yield* detect(dir)
      fs.rmSync(dir, { recursive: true })
      expect(r.services).toEqual([])
    })
  )
})

describe("topology: parsers", () => {
  it("ports from literal listen calls and settings", () => {
    const cases: ReadonlyArray<readonly [string, number]> = [
      ["app.listen(process.env.PORT || 8080)", 8080],
      ['http.ListenAndServe(":8081", nil)', 8081],
      ['.bind("0.0.0.0:8088")?', 8088],
      ["app.run(host='0.0.0.0', port=5000)", 5000],
      ['port ENV.fetch("PORT", 3000)', 3000],
      ["server.port=8081", 8081],
      ["Deno.serve({ port: 8000 }, h)", 8000],
      ['"start": "next start -p 3001"', 3001]
    ]
    for (const [line, port] of cases) expect(findPortInText(line, "f")?.port, line).toBe(port)
    // A database port in app code is a client setting, not where the app listens.
    expect(findPortInText("const db = { port: 5432 }", "f")).toBeUndefined()
  })

  it("well-known image ports", () => {
    expect(wellKnownImagePort("postgres:16")).toBe(5432)
    expect(wellKnownImagePort("docker.io/library/redis:7")).toBe(6379)
    expect(wellKnownImagePort("mysql")).toBe(3306)
    expect(wellKnownImagePort("mongo:7")).toBe(27017)
    expect(wellKnownImagePort("nginx:alpine")).toBe(80)
    expect(wellKnownImagePort("rabbitmq:3-management")).toBe(5672)
    expect(wellKnownImagePort("acme/unknown:1")).toBeUndefined()
  })

  it("compose port forms and a broken file", () => {
    const c = parseCompose(
      'services:\n  a:\n    image: x\n    ports: ["127.0.0.1:9000:90/tcp", 91, {target: 92}]\n    expose: ["93"]\n'
    )
    expect(c.services[0]!.ports).toEqual([90, 91, 92, 93])
    expect(parseCompose("services: [oops").error).toMatch(/invalid YAML/)
  })

  it("Dockerfile: last stage, continuations, ENTRYPOINT + CMD", () => {
    const d = parseDockerfile(
      'FROM golang AS b\nEXPOSE 1\nFROM alpine\nENV P=7070\nEXPOSE $P/tcp \\\n  7071\nENTRYPOINT ["/app"]\nCMD ["serve"]\n'
    )
    expect(d.from).toBe("alpine")
    expect(d.exposed.map((e) => e.port)).toEqual([7070, 7071])
    expect(d.cmd?.command).toBe("/app serve")
  })

  it("names are docker-safe", () => {
    expect(sanitizeName("@acme/My App!")).toBe("my-app")
    expect(sanitizeName("__")).toBe("app")
  })
})

describe("topology: robustness", () => {
  const names = fc.constantFrom(
    "package.json",
    "requirements.txt",
    "pyproject.toml",
    "go.mod",
    "Cargo.toml",
    "Gemfile",
    "Procfile",
    "Dockerfile",
    "compose.yaml",
    "mix.exs",
    "deno.json",
    "composer.json",
    "pom.xml",
    "index.html",
    "main.py",
    "server.js",
    ".env.example",
    "x.txt"
  )
  const dirs = fc.constantFrom("", "a", "a/b", "node_modules", "apps/x", ".git", "src")
  const contents = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.constantFrom(
      "{",
      "services:\n  a: [",
      '{"workspaces": 3, "scripts": null}',
      "\u0000\u0001",
      "FROM\nEXPOSE x"
    )
  )
  it("detection never throws on random file trees", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(dirs, names, contents), { maxLength: 12 }), async (files) => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-prop-"))
        try {
          for (const [d, n, c] of files) {
            fs.mkdirSync(path.join(dir, d), { recursive: true })
            fs.writeFileSync(path.join(dir, d, n), c)
          }
          const r = await Effect.runPromise(detect(dir))
          expect(Array.isArray(r.services)).toBe(true)
          if (r.services.length === 0) expect(typeof r.reason).toBe("string")
          for (const s of r.services) {
            expect(s.confidence).toBeGreaterThanOrEqual(0)
            expect(s.confidence).toBeLessThanOrEqual(1)
          }
        } finally {
          fs.rmSync(dir, { recursive: true, force: true })
        }
      }),
      { numRuns: 60 }
    )
  })
})

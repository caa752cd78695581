import * as path from "node:path"

import { describe, expect, it } from "@effect/vitest"
import {
  BASE_IMAGE_KEYS,
  type BaseImageKey,
  BaseImages,
  DEFAULT_BASE_IMAGES,
  parseBaseImages,
  resolveBaseImages
} from "@kyozo/core/build/dockerfile/BaseImages"
import { execForm, generateDockerfile } from "@kyozo/core/build/dockerfile/DockerfileGenerator"
import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
import { ConfigProvider, Effect, Layer } from "effect"

const FIX = path.resolve(__dirname, "fixtures/detect")

// Every key pointed at a local name, as tests on this machine do (nothing can be pulled).
const LOCAL = resolveBaseImages(
  Object.fromEntries(BASE_IMAGE_KEYS.map((k) => [k, `kyozo-local/${k}:test`])) as Record<BaseImageKey, string>
)

const STACK_FIXTURES: Record<string, string> = {
  node: "node-express",
  "node (no dependencies)": "node-http",
  "node (build script)": "node-nest",
  python: "python-flask",
  "python (pyproject)": "python-fastapi",
  "python (Pipfile)": "python-plain",
  go: "go-gin",
  ruby: "ruby-sinatra",
  rust: "rust-axum",
  java: "java-spring-maven",
  "java (gradle)": "java-spring-gradle",
  php: "php-laravel",
  deno: "deno-app",
  elixir: "elixir-phoenix",
  static: "static-site"
}

const generate = (fixture: string) =>
  Effect.map(detectPlan(path.join(FIX, fixture)), (plan) => {
    const p = plan.services[0]!
    const d = generateDockerfile(p, LOCAL)
    if (!d) throw new Error(`no Dockerfile generated for ${fixture}`)
    return { service: p.service, hints: p.hints!, text: d.content, lines: d.content.split("\n") }
  })

const indexOf = (lines: ReadonlyArray<string>, re: RegExp): number => lines.findIndex((l) => re.test(l))

describe("generated Dockerfiles", () => {
  it.effect("do not depend on the service's name (an upload's folder name changes every upload)", () =>
    Effect.gen(function* () {
      const plan = yield* detectPlan(path.join(FIX, "static-site"))
      const p = plan.services[0]!
      const renamed = { ...p, service: { ...p.service, name: "upl_0123456789abcdef" } }
      expect(generateDockerfile(renamed, LOCAL)?.content).toBe(generateDockerfile(p, LOCAL)?.content)
    })
  )

  for (const [stack, fixture] of Object.entries(STACK_FIXTURES)) {
    it.effect(`${stack}: local FROM, manifests before sources, non-root, EXPOSE, exec CMD`, () =>
      Effect.gen(function* () {
        const { hints, lines, service, text } = yield* generate(fixture)
        const froms = lines.filter((l) => l.startsWith("FROM "))
        expect(froms.length).toBeGreaterThan(0)
        for (const f of froms) expect(f).toMatch(/^FROM kyozo-local\/[\w-]+:test( AS \w+)?$/)
        // Manifests are copied before the first copy of the sources, so the install layer caches.
        const firstSources = indexOf(lines, /^COPY (--chown=\S+ )?\. /)
        for (const m of hints.manifests) {
          const at = indexOf(lines, new RegExp(`^COPY (--chown=\\S+ )?.*\\b${m.replace(/\./g, "\\.")}\\b`))
          expect(at, `${m} copied`).toBeGreaterThanOrEqual(0)
          if (firstSources >= 0) expect(at, `${m} before sources`).toBeLessThan(firstSources)
        }
        if (hints.stack !== "static") expect(hints.manifests.length).toBeGreaterThan(0)
        const users = lines.filter((l) => l.startsWith("USER "))
        expect(users.length).toBe(1)
        expect(users[0]).not.toMatch(/^USER (root|0)(:|$)/)
        // USER comes after the last RUN of the final stage: nothing runs as root at start.
        expect(indexOf(lines, /^USER /)).toBeGreaterThan(lines.map((l) => /^RUN /.test(l)).lastIndexOf(true))
        expect(lines).toContain(`EXPOSE ${service.port}`)
        const cmd = lines.find((l) => l.startsWith("CMD "))!
        const parsed: unknown = JSON.parse(cmd.slice(4))
        expect(Array.isArray(parsed)).toBe(true)
        expect(text).not.toMatch(/^# syntax/m)
      })
    )
  }

  it.effect("node without dependencies has no install stage (base images without npm still build)", () =>
    Effect.gen(function* () {
      const { lines } = yield* generate("node-http")
      expect(lines.filter((l) => l.startsWith("FROM "))).toHaveLength(1)
      expect(lines.some((l) => /npm|corepack/.test(l))).toBe(false)
      expect(lines.find((l) => l.startsWith("CMD "))).toBe('CMD ["node","server.js"]')
    })
  )

  it.effect("node with dependencies installs production-only with npm ci", () =>
    Effect.gen(function* () {
      const { lines } = yield* generate("node-express")
      expect(lines).toContain("RUN npm ci --omit=dev --no-audit --no-fund")
      expect(lines.filter((l) => l.startsWith("FROM ")).length).toBe(2)
      const pnpm = yield* generate("node-fastify")
      expect(pnpm.text).toMatch(/pnpm install --prod --frozen-lockfile/)
    })
  )

  it.effect("go builds a static binary into a runtime image; static serves with busybox httpd", () =>
    Effect.gen(function* () {
      const go = yield* generate("go-gin")
      expect(go.text).toMatch(/go build .* \.\/cmd\/orders/)
      expect(go.lines).toContain("FROM kyozo-local/go-runtime:test AS runtime")
      const site = yield* generate("static-site")
      expect(site.lines.find((l) => l.startsWith("CMD "))).toBe('CMD ["httpd","-f","-p","8080","-h","/site"]')
    })
  )

  it.effect("services with their own Dockerfile or an image get nothing generated", () =>
    Effect.gen(function* () {
      const plan = yield* detectPlan(path.join(FIX, "compose-stack"))
      const generated = plan.services.map((p) => [p.service.name, generateDockerfile(p, LOCAL) !== undefined])
      expect(generated).toEqual([
        ["web", false],
        ["worker", true],
        ["db", false],
        ["cache", false],
        ["proxy", false]
      ])
    })
  )

  it("exec form: plain words split, shell syntax goes through sh -c", () => {
    expect(execForm("node server.js")).toBe('["node","server.js"]')
    expect(execForm("npm run migrate && node app.js")).toBe('["sh","-c","npm run migrate && node app.js"]')
    expect(execForm("PORT=3 node a.js")).toBe('["sh","-c","PORT=3 node a.js"]')
  })
})

describe("base images", () => {
  it("parses JSON and key=value overrides, rejects unknown keys", () => {
    expect(parseBaseImages('{"node":"kyozo-local/node:20"}')).toEqual({ node: "kyozo-local/node:20" })
    expect(parseBaseImages("node=kyozo-local/node:20, static=kyozo-local/static:latest")).toEqual({
      node: "kyozo-local/node:20",
      static: "kyozo-local/static:latest"
    })
    expect(() => parseBaseImages("nodee=x")).toThrow(/unknown key/)
    expect(() => parseBaseImages("node")).toThrow(/key=value/)
    expect(resolveBaseImages({ node: "n" }).python).toBe(DEFAULT_BASE_IMAGES.python)
  })

  it.effect("KYOZO_BASE_IMAGES configures the service", () =>
    Effect.gen(function* () {
      const { images } = yield* BaseImages
      expect(images.node).toBe("kyozo-local/node:20")
      expect(images.static).toBe("kyozo-local/static:latest")
      expect(images.go).toBe(DEFAULT_BASE_IMAGES.go)
    }).pipe(
      Effect.provide(
        BaseImages.Default.pipe(
          Layer.provide(
            Layer.setConfigProvider(
              ConfigProvider.fromMap(
                new Map([["KYOZO_BASE_IMAGES", "node=kyozo-local/node:20,static=kyozo-local/static:latest"]])
              )
            )
          )
        )
      )
    )
  )
})

/**
 * Detection of the folder shapes real repositories have beyond the usual manifest-and-start-script
 * app (one fixture per class under test/fixtures/detect-classes), and the Dockerfiles generated for
 * the new classes: front ends built and served, SSR servers, Python without a manifest or with
 * shipped wheels, Go without go.mod, and the build CA kept out of every final stage.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { describe, expect, it } from "@effect/vitest"
import type { DetectedService } from "@kyozo/api/domain/Topology"
import {
  BASE_IMAGE_KEYS,
  type BaseImageKey,
  resolveBaseImages
} from "@kyozo/core/build/dockerfile/BaseImages"
import { BUILD_CA_CONTEXT_FILE, BUILD_CA_PATH } from "@kyozo/core/build/dockerfile/BuildSettings"
import { generateDockerfile } from "@kyozo/core/build/dockerfile/DockerfileGenerator"
import { fromImages, pullFailureImage } from "@kyozo/core/build/ImageBuilder"
import type { PlannedService } from "@kyozo/core/build/topology/Topology"
import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
import { Effect } from "effect"

const FIX = path.resolve(__dirname, "fixtures/detect-classes")
const LOCAL = resolveBaseImages(
  Object.fromEntries(BASE_IMAGE_KEYS.map((k) => [k, `kyozo-local/${k}:test`])) as Record<BaseImageKey, string>
)

const plan = (fixture: string) => detectPlan(path.join(FIX, fixture))
const one = (fixture: string) =>
  Effect.map(plan(fixture), (p) => {
    expect(p.services.map((s) => s.service.path)).toHaveLength(1)
    return p.services[0]!
  })
const details = (s: DetectedService) => s.evidence.map((e) => e.detail).join("\n")

interface Case {
  readonly path?: string
  readonly kind: DetectedService["kind"]
  readonly framework: string | null
  readonly port: number | null
  readonly start: string | null
  readonly requires?: ReadonlyArray<string>
  readonly evidence?: RegExp
}

const CASES: Record<string, Case> = {
  // A runnable entry without a start script.
  "node-main-bot": {
    kind: "node",
    framework: null,
    port: null,
    start: "node bot.js",
    evidence: /main bot\.js/
  },
  "node-module-worker": {
    kind: "node",
    framework: null,
    port: null,
    start: "node src/main.mjs",
    requires: ["redis"]
  },
  "python-bot": { path: "bot", kind: "python", framework: null, port: null, start: "python bot.py" },
  "python-app-noreq": { kind: "python", framework: null, port: 8300, start: "python app.py" },
  "deno-nojson": {
    kind: "deno",
    framework: null,
    port: null,
    start: "deno run --allow-net --allow-env --allow-read main.ts",
    evidence: /without deno\.json/
  },
  // Workspace root with its own start.
  "workspace-root-start": {
    kind: "node",
    framework: null,
    port: 7070,
    start: "node packages/server/index.js",
    evidence: /workspace root with its own start script/
  },
  // Apps in sample and docs folders, when nothing else runs.
  "examples-only": {
    path: "examples/express-app",
    kind: "node",
    framework: "express",
    port: 3300,
    start: "node server.js"
  },
  "docs-site": { path: "docs", kind: "node", framework: "docusaurus", port: 3000, start: null },
  // Front ends: built then served, or their SSR server run.
  "vite-app": { kind: "node", framework: "vite", port: 4173, start: null, evidence: /dist\/ served/ },
  "vite-outdir": {
    kind: "node",
    framework: "vite",
    port: 4173,
    start: null,
    evidence: /build\/web\/ served/
  },
  "angular-app": { kind: "node", framework: "angular", port: 4200, start: null },
  "astro-static": { kind: "node", framework: "astro", port: 4321, start: null },
  "astro-ssr": { kind: "node", framework: "astro", port: 4321, start: "node ./dist/server/entry.mjs" },
  "next-export": { kind: "node", framework: "nextjs", port: 3000, start: null, evidence: /out\/ served/ },
  "sveltekit-node": { kind: "node", framework: "sveltekit", port: 3000, start: "node build" },
  "deno-jsonc": { kind: "deno", framework: null, port: 8400, start: "deno task start" },
  "cra-app": { kind: "node", framework: "create-react-app", port: 3000, start: null },
  "vite-express": {
    kind: "node",
    framework: "express",
    port: 3400,
    start: "node server.js",
    evidence: /reads as a vite front end and as a server/
  },
  // A compose file of backing images beside the app.
  "compose-backing": {
    kind: "node",
    framework: "express",
    port: 3500,
    start: "node server.js",
    requires: ["postgres", "redis"],
    evidence: /backing service of the app beside it/
  },
  // No usual manifest.
  "go-nomod": { kind: "go", framework: null, port: 8085, start: "/app/server", evidence: /without go\.mod/ },
  "package-json5": { kind: "node", framework: "express", port: 3600, start: "node server.js" },
  "package-jsonc": {
    kind: "node",
    framework: "fastify",
    port: 3700,
    start: "node server.js",
    evidence: /comments or trailing commas/
  },
  "procfile-node": {
    kind: "node",
    framework: null,
    port: 3000,
    start: "node web/listen.js",
    evidence: /Procfile web/
  },
  "gradle-comment-include": {
    kind: "java",
    framework: "spring",
    port: 8080,
    start: "java -jar /app/app.jar"
  },
  "gradle-settings-only": {
    path: "service",
    kind: "java",
    framework: "spring",
    port: 8080,
    start: "java -jar /app/app.jar"
  },
  "python-wheels": {
    kind: "python",
    framework: "flask",
    port: 5055,
    start: "python app.py",
    evidence: /installs offline/
  }
}

describe("detection classes", () => {
  for (const [fixture, c] of Object.entries(CASES)) {
    it.effect(fixture, () =>
      Effect.gen(function* () {
        const { service: s } = yield* one(fixture)
        expect(s.path).toBe(c.path ?? ".")
        expect(s.kind).toBe(c.kind)
        expect(s.framework).toBe(c.framework)
        expect(s.port).toBe(c.port)
        expect(s.startCommand).toBe(c.start)
        expect(s.requires).toEqual(c.requires ?? [])
        if (c.evidence) expect(details(s)).toMatch(c.evidence)
      })
    )
  }

  it.effect("a package whose main only exports an API stays a library, and says why", () =>
    Effect.gen(function* () {
      const p = yield* plan("node-library-exports")
      expect(p.services).toHaveLength(0)
      expect(p.reason).toMatch(/a library/)
    })
  )

  it.effect("a compose file of backing images hides no app: they become its requires, not services", () =>
    Effect.gen(function* () {
      const p = yield* plan("compose-backing")
      expect(p.services.map((s) => s.service.name)).toEqual(["orders"])
    })
  )

  it.effect("backing images in a compose file at the root reach the apps in the subfolders", () =>
    Effect.gen(function* () {
      const p = yield* plan("compose-backing-subdirs")
      const services = p.services.map((s) => s.service)
      expect(services.map((s) => [s.name, s.path, s.kind]).sort()).toEqual([
        ["api", "api", "node"],
        ["web", "web", "static"]
      ])
      expect(services.find((s) => s.name === "api")!.requires).toEqual(["postgres", "redis"])
      expect(services.find((s) => s.name === "web")!.requires).toEqual([])
    })
  )

  it.effect("a compose file of backing images with no app anywhere still deploys those images", () =>
    Effect.gen(function* () {
      const dir = path.join(os.tmpdir(), `kyozo-compose-only-${process.pid}`)
      fs.mkdirSync(path.join(dir, "notes"), { recursive: true })
      fs.writeFileSync(path.join(dir, "docker-compose.yml"), "services:\n  db:\n    image: postgres:16\n")
      fs.writeFileSync(path.join(dir, "notes", "README.md"), "# notes\n")
      const p = yield* detectPlan(dir)
      fs.rmSync(dir, { recursive: true, force: true })
      expect(p.services.map((s) => [s.service.name, s.service.kind, s.service.image])).toEqual([
        ["db", "image", "postgres:16"]
      ])
    })
  )

  it.effect("two readings of one folder: the evidence names the other one", () =>
    Effect.gen(function* () {
      // index.html (a static site) and a Vite project (a front end to build): Vite runs.
      const { service } = yield* one("vite-app")
      expect(details(service)).toMatch(/also reads as static at 0\.7: node runs \(higher confidence 0\.9\)/)
    })
  )

  it.effect("manifests npm cannot read are written into the context as plain package.json", () =>
    Effect.gen(function* () {
      for (const fixture of ["package-json5", "package-jsonc"]) {
        const { hints } = yield* one(fixture)
        const written = hints?.contextFiles?.["package.json"]
        expect(written).toBeDefined()
        const pkg = JSON.parse(written!) as {
          dependencies: Record<string, string>
          scripts: { start: string }
        }
        expect(pkg.scripts.start).toBe("node server.js")
        expect(Object.keys(pkg.dependencies)).toHaveLength(1)
      }
    })
  )

  it.effect("a workspace root that runs installs with its members' manifests in place", () =>
    Effect.gen(function* () {
      const planned = yield* one("workspace-root-start")
      expect(planned.hints?.manifests).toEqual([
        "package.json",
        "package-lock.json",
        "packages/server/package.json",
        "packages/ui/package.json"
      ])
      const text = generateDockerfile(planned, LOCAL)!.content
      const lines = text.split("\n")
      const install = lines.findIndex((l) => /^RUN npm ci/.test(l))
      expect(lines.indexOf("COPY packages/server/package.json packages/server/")).toBeGreaterThan(0)
      expect(lines.indexOf("COPY packages/ui/package.json packages/ui/")).toBeLessThan(install)
    })
  )
})

const dockerfileOf = (planned: PlannedService, ca = false) => generateDockerfile(planned, LOCAL, { ca })!

/** The instructions of the last stage (what the final image is made of). */
const finalStage = (text: string): Array<string> => {
  const lines = text.split("\n")
  const last = lines
    .map((l, i) => (l.startsWith("FROM ") ? i : -1))
    .filter((i) => i >= 0)
    .pop()!
  return lines.slice(last)
}

describe("generated Dockerfiles for the new classes", () => {
  it.effect("a front end is built on node, and only its output is served by the static image", () =>
    Effect.gen(function* () {
      const planned = yield* one("vite-outdir")
      const text = dockerfileOf(planned).content
      expect(text).toMatch(/^FROM kyozo-local\/node:test AS build$/m)
      expect(text).toMatch(/^RUN npm install --include=dev --no-audit --no-fund$/m)
      expect(text).toMatch(/^RUN npm run build$/m)
      const final = finalStage(text)
      expect(final[0]).toBe("FROM kyozo-local/static:test AS runtime")
      expect(final).toContain("COPY --from=build --chown=65534:65534 /app/build/web/ /site/")
      expect(final).toContain("EXPOSE 4173")
      expect(final.some((l) => /^CMD \["httpd","-f","-p","4173"/.test(l))).toBe(true)
      expect(final.some((l) => /^USER /.test(l) && !/^USER 0/.test(l))).toBe(true)
    })
  )

  it.effect("an SSR front end builds, prunes and runs its server", () =>
    Effect.gen(function* () {
      const text = dockerfileOf(yield* one("astro-ssr")).content
      expect(text).toMatch(/^RUN npm run build && npm prune --omit=dev$/m)
      const final = finalStage(text)
      expect(final[0]).toBe("FROM kyozo-local/node:test AS runtime")
      expect(final).toContain('CMD ["node","./dist/server/entry.mjs"]')
    })
  )

  it.effect("Python with shipped wheels installs offline; without a manifest it installs nothing", () =>
    Effect.gen(function* () {
      const wheels = dockerfileOf(yield* one("python-wheels")).content
      const lines = wheels.split("\n")
      const copyWheels = lines.indexOf("COPY wheels ./wheels")
      const install = lines.indexOf("RUN pip install --no-index --find-links=/app/wheels -r requirements.txt")
      expect(copyWheels).toBeGreaterThan(lines.indexOf("COPY requirements.txt ./"))
      expect(install).toBeGreaterThan(copyWheels)
      const bare = dockerfileOf(yield* one("python-bot")).content
      expect(bare).not.toMatch(/pip install/)
      expect(finalStage(bare)).toContain('CMD ["python","bot.py"]')
    })
  )

  it.effect("Go without go.mod gets a module made in the build stage", () =>
    Effect.gen(function* () {
      const text = dockerfileOf(yield* one("go-nomod")).content
      expect(text).toMatch(/^RUN go mod init app && go mod tidy$/m)
      expect(text).not.toMatch(/go mod download/)
      expect(finalStage(text)).toContain("COPY --from=build /out/server /app/server")
    })
  )

  it.effect("with a build CA, build stages trust it and no final stage can contain it", () =>
    Effect.gen(function* () {
      for (const fixture of [
        "compose-backing",
        "vite-app",
        "python-app-noreq",
        "python-wheels",
        "workspace-root-start"
      ]) {
        const planned = yield* one(fixture)
        const d = dockerfileOf(planned, true)
        const final = finalStage(d.content)
        // Once a CA is in the context, no stage after the source stage copies the context itself.
        if (d.usesBuildCa) expect(final.filter((l) => /^COPY (--chown=\S+ )?\. /.test(l))).toEqual([])
        expect(final.join("\n")).not.toContain(BUILD_CA_PATH)
        expect(final.join("\n")).not.toContain(BUILD_CA_CONTEXT_FILE)
        if (d.usesBuildCa) {
          expect(d.content).toContain(`COPY ${BUILD_CA_CONTEXT_FILE} ${BUILD_CA_PATH}`)
          expect(d.content).toMatch(
            new RegExp(`NODE_EXTRA_CA_CERTS=${BUILD_CA_PATH}.*PIP_CERT=${BUILD_CA_PATH}`)
          )
          expect(d.content).toContain(`RUN rm -f /src/${BUILD_CA_CONTEXT_FILE}`)
        }
      }
      // Installs that download use it; an offline wheel install and a manifest-less app do not.
      expect(dockerfileOf(yield* one("compose-backing"), true).usesBuildCa).toBe(true)
      expect(dockerfileOf(yield* one("python-wheels"), true).usesBuildCa).toBeUndefined()
      expect(dockerfileOf(yield* one("python-app-noreq"), true).usesBuildCa).toBeUndefined()
    })
  )

  it.effect("package mirrors reach the install stage", () =>
    Effect.gen(function* () {
      const node = generateDockerfile(yield* one("compose-backing"), LOCAL, {
        npmRegistry: "https://npm.example.internal/"
      })!.content
      expect(node).toContain("npm_config_registry=https://npm.example.internal/")
      expect(finalStage(node).join("\n")).not.toContain("npm.example.internal")
    })
  )
})

describe("base images that cannot be pulled", () => {
  it("FROM images exclude stage names", () => {
    expect(
      fromImages("FROM node:20 AS build\nRUN x\nFROM build AS again\nFROM --platform=linux/amd64 busybox:1\n")
    ).toEqual(["node:20", "busybox:1"])
  })

  it("a FROM step's pull failure names the image; other failures do not", () => {
    const tail = ["Step 1/4 : FROM python:3.12-slim"]
    expect(
      pullFailureImage(
        'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host',
        tail
      )
    ).toBe("python:3.12-slim")
    expect(
      pullFailureImage("The command '/bin/sh -c false' returned a non-zero code: 1", ["Step 2/4 : RUN false"])
    ).toBe(undefined)
  })
})

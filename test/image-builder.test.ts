/**
 * ImageBuilder against the real engine: generated and own Dockerfiles build FROM the local base
 * images, the images run, and an unchanged folder is never built twice.
 * Needs the local base images: `bash scripts/base-images.sh`.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { describe, expect, layer } from "@effect/vitest"
import { BaseImages, resolveBaseImages } from "@kyozo/core/build/dockerfile/BaseImages"
import { generateDockerfile } from "@kyozo/core/build/dockerfile/DockerfileGenerator"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import { layerWith } from "@kyozo/core/engine/DockerRuntime"
import { Managed, Service, Team } from "@kyozo/core/engine/Labels"
import { Duration, Effect, Layer, Schedule, TestServices } from "effect"
import { afterAll } from "vitest"

import { dockerSuite, NodeImage, requireBaseImages, StaticImage, uniqueName } from "./support/docker.js"

const docker = await dockerSuite("image-builder")
if (docker.available) await requireBaseImages(docker.client)

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-build-"))
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }))

// Nothing can be pulled here: generated Dockerfiles start FROM the local images.
const LOCAL = resolveBaseImages({ node: NodeImage, static: StaticImage })

const Builder = ImageBuilder.DefaultWithoutDependencies.pipe(
  Layer.provideMerge(Layer.succeed(BaseImages, BaseImages.make({ images: LOCAL }))),
  Layer.provideMerge(layerWith({ timeout: Duration.seconds(60) }))
)

const folder = (files: Record<string, string>): string => {
  const dir = fs.mkdtempSync(path.join(tmpRoot, "app-"))
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    fs.writeFileSync(path.join(dir, name), content)
  }
  return dir
}

const NODE_APP = {
  "package.json": JSON.stringify({ name: "hello", version: "1.0.0", main: "server.js" }),
  "server.js": [
    "const http = require('node:http')",
    "const fs = require('node:fs')",
    "http.createServer((req, res) => res.end(fs.readFileSync(__dirname + '/message.txt')))",
    "  .listen(process.env.PORT || 3000)",
    ""
  ].join("\n"),
  "message.txt": "hello from node"
}

/** Detects the folder's single service and ensures its image, counting build log lines. */
const ensure = (dir: string, serviceId: string) =>
  Effect.gen(function* () {
    const builder = yield* ImageBuilder
    const plan = yield* detectPlan(dir)
    expect(plan.services).toHaveLength(1)
    const logs: Array<string> = []
    const started = Date.now()
    const result = yield* builder.ensureImage({
      serviceId,
      teamId: "team_test",
      root: plan.root,
      planned: plan.services[0]!,
      labels: docker.labels,
      onLog: (line) => Effect.sync(() => void logs.push(line))
    })
    return { ...result, logs, ms: Date.now() - started, planned: plan.services[0]! }
  })

// The retry sleeps on the real clock: it.effect's TestClock would never wake it.
const httpGet = (url: string) =>
  TestServices.provideLive(
    Effect.tryPromise(() => fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.text())).pipe(
      Effect.retry(Schedule.spaced("150 millis").pipe(Schedule.intersect(Schedule.recurs(60))))
    )
  )

/** Runs the image with its port published on 127.0.0.1 and answers GET /. */
const serve = (image: string, containerPort: number) =>
  Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const ref = yield* runtime.createContainer({
      name: uniqueName(),
      image,
      labels: docker.labels,
      ports: [{ containerPort }]
    })
    yield* runtime.startContainer(ref.id)
    const info = yield* runtime.inspectContainer(ref.id)
    const port = info.ports.find((p) => p.containerPort === containerPort)
    expect(port?.hostIp).toBe("127.0.0.1")
    const body = yield* httpGet(`http://127.0.0.1:${port!.hostPort}/`)
    yield* runtime.removeContainer(ref.id, { force: true })
    return body
  })

describe.skipIf(!docker.available)("ImageBuilder on the real engine", () => {
  layer(Builder, { timeout: 120_000 })((it) => {
    it.effect(
      "a static folder builds FROM the local image, is labelled and content-addressed, and serves",
      () =>
        Effect.gen(function* () {
          const serviceId = `svc_${uniqueName("st")}`
          const dir = folder({ "index.html": "<h1>static kyozo</h1>" })
          const first = yield* ensure(dir, serviceId)
          expect(first.built).toBe(true)
          expect(first.image).toBe(`kyozo/${serviceId}:${first.hash.slice(0, 16)}`)
          expect(first.logs.some((l) => l.includes(`FROM ${StaticImage}`))).toBe(true)
          expect(first.logTail.length).toBeGreaterThan(0)
          // The context is the folder plus the generated Dockerfile.kyozo (with its one LABEL line).
          const generatedBytes =
            Buffer.byteLength("<h1>static kyozo</h1>") +
            Buffer.byteLength(generateDockerfile(first.planned, LOCAL)!.content.trimEnd())
          expect(first.contextBytes).toBeGreaterThan(generatedBytes + "\nLABEL ".length)
          expect(first.contextBytes).toBeLessThan(generatedBytes + 400)
          // Only our own LABEL line: no build-time labels (the classic builder makes each a step;
          // BuildKit runs metadata-only instructions without a step of their own).
          expect(first.logs.filter((l) => /^Step \d+\/\d+ : LABEL/.test(l)).length).toBeLessThanOrEqual(1)
          expect(first.logs.some((l) => /^Step \d+\/\d+ : COPY/.test(l))).toBe(true)

          const runtime = yield* ContainerRuntime
          const info = yield* runtime.inspectImage(first.image)
          expect(info.labels).toMatchObject({
            [Managed]: "true",
            [Service]: serviceId,
            [Team]: "team_test"
          })
          expect(yield* serve(first.image, first.planned.service.port!)).toContain("<h1>static kyozo</h1>")

          // Unchanged: no build at all, well under a second.
          const second = yield* ensure(dir, serviceId)
          expect(second.built).toBe(false)
          expect(second.image).toBe(first.image)
          expect(second.logs).toEqual([])
          expect(second.ms).toBeLessThan(1000)
        })
    )

    it.effect("a Node folder without dependencies builds on the npm-less image and answers HTTP", () =>
      Effect.gen(function* () {
        const serviceId = `svc_${uniqueName("nd")}`
        const dir = folder(NODE_APP)
        const first = yield* ensure(dir, serviceId)
        expect(first.planned.service.kind).toBe("node")
        expect(first.built).toBe(true)
        expect(first.logs.some((l) => l.includes(`FROM ${NodeImage}`))).toBe(true)
        expect(yield* serve(first.image, first.planned.service.port ?? 3000)).toBe("hello from node")
        // The generated Dockerfile lives in the context only, never in the user's folder.
        expect(fs.existsSync(path.join(dir, "Dockerfile.kyozo"))).toBe(false)

        // A changed file is a new tag; the old one stays until pruned.
        fs.writeFileSync(path.join(dir, "message.txt"), "hello again")
        const changed = yield* ensure(dir, serviceId)
        expect(changed.built).toBe(true)
        expect(changed.image).not.toBe(first.image)
        expect(yield* serve(changed.image, first.planned.service.port ?? 3000)).toBe("hello again")

        const builder = yield* ImageBuilder
        const retained = yield* builder.retained(serviceId)
        expect(retained.map((i) => i.tags[0])).toEqual([changed.image, first.image])

        // The protected image survives a prune to zero; then keep=1 removes the older one.
        const protectedRun = yield* builder.pruneRetained(serviceId, 0, [changed.image, first.image])
        expect(protectedRun.removed).toEqual([])
        const pruned = yield* builder.pruneRetained(serviceId, 1, [])
        expect(pruned.removed).toEqual([first.image])
        expect(pruned.kept).toEqual([changed.image])
        const runtime = yield* ContainerRuntime
        const gone = yield* Effect.flip(runtime.inspectImage(first.image))
        expect(gone._tag).toBe("ImageNotFound")
        expect((yield* builder.retained(serviceId)).map((i) => i.tags[0])).toEqual([changed.image])
      })
    )

    it.effect("a folder with its own Dockerfile builds it as is", () =>
      Effect.gen(function* () {
        const serviceId = `svc_${uniqueName("df")}`
        const dir = folder({
          Dockerfile: [
            `FROM ${StaticImage}`,
            "COPY site /www",
            "EXPOSE 8081",
            'CMD ["httpd", "-f", "-p", "8081", "-h", "/www"]',
            ""
          ].join("\n"),
          "site/index.html": "own dockerfile"
        })
        const result = yield* ensure(dir, serviceId)
        expect(result.planned.service.kind).toBe("dockerfile")
        expect(result.built).toBe(true)
        expect(result.logs.some((l) => l.includes("COPY site /www"))).toBe(true)
        expect(yield* serve(result.image, 8081)).toBe("own dockerfile")
      })
    )

    it.effect("a failing build is a BuildFailed with the log tail", () =>
      Effect.gen(function* () {
        const dir = folder({ Dockerfile: `FROM ${StaticImage}\nRUN echo about-to-fail && exit 3\n` })
        const error = yield* Effect.flip(ensure(dir, `svc_${uniqueName("bf")}`))
        expect(error._tag).toBe("BuildFailed")
        if (error._tag !== "BuildFailed") return
        expect(error.logTail.join("\n")).toContain("about-to-fail")
      })
    )

    it.effect("two concurrent ensureImage calls for the same folder build once", () =>
      Effect.gen(function* () {
        const serviceId = `svc_${uniqueName("cc")}`
        const dir = folder({ "index.html": `<p>${uniqueName()}</p>` })
        const [a, b] = yield* Effect.all([ensure(dir, serviceId), ensure(dir, serviceId)], {
          concurrency: "unbounded"
        })
        expect(a.image).toBe(b.image)
        expect([a.built, b.built].filter(Boolean)).toHaveLength(1)
        expect(Math.min(a.logs.length, b.logs.length)).toBe(0)
      })
    )

    it.effect("image-only services: used as is when present, ImageNotFound when nothing can pull them", () =>
      Effect.gen(function* () {
        const builder = yield* ImageBuilder
        const base = (yield* detectPlan(folder({ "index.html": "x" }))).services[0]!
        const planned = (image: string) => ({ service: { ...base.service, kind: "image" as const, image } })
        const present = yield* builder.ensureImage({
          serviceId: "svc_img",
          teamId: "team_test",
          root: tmpRoot,
          planned: planned(StaticImage)
        })
        expect(present).toMatchObject({ image: StaticImage, built: false })
        const missing = yield* Effect.flip(
          builder.ensureImage({
            serviceId: "svc_img",
            teamId: "team_test",
            root: tmpRoot,
            planned: planned(`kyozo-missing/${uniqueName()}:1`)
          })
        )
        expect(missing._tag).toBe("ImageNotFound")

        // A build context outside the deployed folder (compose `build: ../elsewhere`) is never sent.
        const outside = yield* Effect.flip(
          builder.ensureImage({
            serviceId: "svc_out",
            teamId: "team_test",
            root: path.join(tmpRoot, "deployed"),
            planned: { ...base, service: { ...base.service, path: "../elsewhere" } }
          })
        )
        expect(outside).toMatchObject({ _tag: "BuildContextUnreadable" })
        expect(outside.message).toMatch(/outside the deployed folder/)
        expect(missing.message).toMatch(/KYOZO_BASE_IMAGES|pull/)
      })
    )
  })
})

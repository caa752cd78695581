import { ImageBuilder } from "@kyozo/core/ImageBuilder"
import * as DockerRuntime from "@kyozo/core/DockerRuntime"
import { ContainerRuntime } from "@kyozo/core/ContainerRuntime"
import { fromFolder } from "@kyozo/core/BuildContext"
import { detectPlan } from "@kyozo/core/topology/TopologyDetector"
import { BaseImages } from "@kyozo/core/dockerfile/BaseImages"
import { Effect, Layer, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { randomBytes } from "node:crypto"
import { execFileSync } from "node:child_process"
process.env.KYOZO_BASE_IMAGES = JSON.stringify({ node: "kyozo-local/node:20", static: "kyozo-local/static:latest" })
const root = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-n-probe-"))
const mk = (n: number) => {
  const d = path.join(root, `a${n}`); fs.mkdirSync(d)
  fs.writeFileSync(path.join(d, "package.json"), JSON.stringify({ name: "a", version: "1.0.0", main: "server.js", scripts: { start: "node server.js" } }))
  fs.writeFileSync(path.join(d, "server.js"), `// ${randomBytes(8).toString("hex")}\nrequire('node:http').createServer((q,r)=>r.end('hello')).listen(3000)\n`)
  return d
}
const L = ImageBuilder.Default.pipe(Layer.provideMerge(BaseImages.Default), Layer.provideMerge(DockerRuntime.layer))
const tags: string[] = []
Effect.runPromise(Effect.gen(function* () {
  const b = yield* ImageBuilder
  const rt = yield* ContainerRuntime
  for (let i = 0; i < 3; i++) {
    const d = mk(i)
    const plan = yield* detectPlan(d)
    let t = Date.now()
    const ctx = yield* fromFolder(d, { extraFiles: { "Dockerfile.kyozo": "FROM x\n" }, replaceExisting: true, dockerfile: "Dockerfile.kyozo" })
    const ctxMs = Date.now() - t
    t = Date.now()
    const r = yield* b.ensureImage({ serviceId: `svc_nprobe${i}`, teamId: "team_nprobe", root: d, planned: plan.services[0]!, labels: { "kyozo.bench": "nprobe" } })
    const ensureMs = Date.now() - t
    tags.push(r.image)
    const d2 = mk(100 + i)
    fs.writeFileSync(path.join(d2, "Dockerfile"), fs.readFileSync(path.join(d2, "package.json")) && "")
    // CLI with the same generated Dockerfile
    const { generateDockerfile } = yield* Effect.promise(() => import("@kyozo/core/dockerfile/DockerfileGenerator"))
    const { images } = yield* BaseImages
    fs.writeFileSync(path.join(d2, "Dockerfile"), generateDockerfile(plan.services[0]!, images)!.content)
    t = Date.now()
    execFileSync("docker", ["build", "-q", "--label", "kyozo.bench=nprobe", "-t", `kyozo-bench/nprobe:${i}`, d2])
    const cliMs = Date.now() - t
    tags.push(`kyozo-bench/nprobe:${i}`)
    console.log({ ctxMs, ensureMs, cliMs, built: r.built })
  }
}).pipe(Effect.provide(L))).then(() => {
  execFileSync("docker", ["rmi", "-f", ...tags]); fs.rmSync(root, { recursive: true, force: true })
}, (e) => { console.error(e); execFileSync("docker", ["rmi", "-f", ...tags]) })

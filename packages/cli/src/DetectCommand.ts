/**
 * `kyozo detect <folder> [--json] [--dockerfile]`: what runs in a folder, and what would be built.
 * The `--json` output is a contract: one object `{ services, reason? }` (plus `dockerfiles` with --dockerfile).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type { DetectedService } from "@kyozo/api/domain/Topology"
import type { GeneratedDockerfile } from "@kyozo/core/build/dockerfile/DockerfileGenerator"
import { Console, Effect } from "effect"

import { resolveFolder } from "./Folder.js"

const folder = Args.text({ name: "folder" }).pipe(
  Args.withDescription("the folder to inspect"),
  Args.withDefault(".")
)
const json = Options.boolean("json").pipe(Options.withDescription("print one JSON object"))
const dockerfile = Options.boolean("dockerfile").pipe(
  Options.withDescription("also show the Dockerfiles Kyozo would generate")
)

export { resolveFolder }

// Detection and the Dockerfile generator load on use: other commands must not pay for them.
const load = Effect.promise(async () => ({
  ...(await import("@kyozo/core/build/dockerfile/BaseImages")),
  ...(await import("@kyozo/core/build/dockerfile/DockerfileGenerator")),
  ...(await import("@kyozo/core/build/topology/TopologyDetector")),
  ...(await import("@kyozo/core/build/topology/Topology"))
}))

const describe = (s: DetectedService): string => {
  const parts = [
    `${s.name}  (${s.path})`,
    `  kind: ${s.kind}${s.framework ? `  framework: ${s.framework}` : ""}${s.image ? `  image: ${s.image}` : ""}`,
    `  port: ${s.port ?? "-"}  start: ${s.startCommand ?? "-"}`,
    ...(s.dependsOn.length > 0 ? [`  depends on: ${s.dependsOn.join(", ")}`] : []),
    ...(s.requires.length > 0 ? [`  requires: ${s.requires.join(", ")}`] : []),
    `  confidence: ${s.confidence.toFixed(2)}`,
    ...s.evidence.map((e) => `    - ${e.file}${e.line !== undefined ? `:${e.line}` : ""}  ${e.detail}`)
  ]
  return parts.join("\n")
}

export const detectCommand = Command.make("detect", { folder, json, dockerfile }, (args) =>
  Effect.gen(function* () {
    const { BaseImages, detectPlan, generateDockerfile, toResult } = yield* load
    const plan = yield* detectPlan(resolveFolder(args.folder))
    const result = toResult(plan)
    let dockerfiles: Array<GeneratedDockerfile> = []
    if (args.dockerfile) {
      const { images } = yield* Effect.provide(BaseImages, BaseImages.Default)
      dockerfiles = plan.services
        .map((p) => generateDockerfile(p, images))
        .filter((d): d is GeneratedDockerfile => d !== undefined)
    }
    if (args.json) {
      const out = args.dockerfile
        ? { ...result, dockerfiles: Object.fromEntries(dockerfiles.map((d) => [d.service, d.content])) }
        : result
      yield* Console.log(JSON.stringify(out, null, 2))
      return
    }
    if (result.services.length === 0) {
      yield* Console.log(`No services found: ${result.reason ?? "nothing deployable"}`)
    } else {
      yield* Console.log(result.services.map(describe).join("\n\n"))
    }
    for (const d of dockerfiles) {
      yield* Console.log(`\n# ---- ${d.service}: Dockerfile for ${d.path} ----\n${d.content}`)
    }
    const own = plan.services.filter((p) => !p.hints && p.service.kind === "dockerfile")
    for (const p of own)
      yield* Console.log(`\n# ---- ${p.service.name}: uses its own Dockerfile in ${p.service.path}`)
  })
).pipe(Command.withDescription("Detect what runs in a folder, with evidence"))

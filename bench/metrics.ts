/**
 * bench/metrics: one metrics pass over 50 running containers (the MetricsWorker's stats path:
 * list kyozo's running containers, `runtime.stats` one-shot for each with bounded concurrency)
 * against `docker stats --no-stream` over the same 50, side by side, with the ratio.
 *
 *   pnpm bench:metrics        (KYOZO_BENCH_CONTAINERS=20 for a quicker run)
 *
 * Needs the real engine and kyozo-local/static:latest (scripts/base-images.sh). Every object it
 * creates carries `kyozo.bench=<run id>` and is removed at the end, whatever happens.
 */
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"

import { ContainerRuntime, cpuPercent } from "@kyozo/core/engine/ContainerRuntime"
import * as DockerRuntime from "@kyozo/core/engine/DockerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { WorkerSettings } from "@kyozo/workers/WorkerSettings"
import { Effect, Either } from "effect"

const COUNT = Number(process.env.KYOZO_BENCH_CONTAINERS ?? 50)
const ROUNDS = 3
const IMAGE = "kyozo-local/static:latest"
const runId = `bench-${randomBytes(4).toString("hex")}`
const benchLabel = { "kyozo.bench": runId }

const cli = (args: ReadonlyArray<string>) =>
  Effect.async<string, Error>((resume) => {
    execFile("docker", args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resume(error ? Effect.fail(new Error(`${error.message}\n${stderr}`)) : Effect.succeed(stdout))
    )
  })

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const program = Effect.gen(function* () {
  const runtime = yield* ContainerRuntime
  yield* runtime
    .inspectImage(IMAGE)
    .pipe(Effect.mapError(() => new Error(`${IMAGE} is missing: run scripts/base-images.sh`)))
  const { statsConcurrency: concurrency } = yield* WorkerSettings

  // 50 idle web servers. No published ports: nothing talks to them, stats only.
  const created = performance.now()
  const ids = yield* Effect.forEach(
    Array.from({ length: COUNT }, (_, i) => i),
    (i) =>
      Effect.gen(function* () {
        const ref = yield* runtime.createContainer({
          name: `kyozo-${runId}-${i}`,
          image: IMAGE,
          cmd: ["httpd", "-f", "-p", "8080"],
          labels: Labels.labelsFor({ teamId: "team_bench", serviceId: `svc_bench_${i}` }, benchLabel),
          memoryBytes: 32 * 1024 * 1024
        })
        yield* runtime.startContainer(ref.id)
        return ref.id
      }),
    { concurrency: 4 }
  )
  console.log(`started ${ids.length} containers in ${((performance.now() - created) / 1000).toFixed(1)} s`)

  // The metrics pass's stats path, exactly as MetricsWorker does it (previous sample → CPU %).
  const previous = new Map<string, Parameters<typeof cpuPercent>[1]>()
  const kyozoPass = (concurrency: number) =>
    Effect.gen(function* () {
      const t = performance.now()
      const listed = yield* runtime.listContainers({ labels: { ...benchLabel, [Labels.Managed]: "true" } })
      const running = listed.filter((c) => c.state === "running")
      const outcomes = yield* Effect.forEach(
        running,
        (c) =>
          runtime.stats(c.id).pipe(
            Effect.map((s) => {
              const cpu = cpuPercent(previous.get(c.id), s)
              previous.set(c.id, s)
              return cpu
            }),
            Effect.either
          ),
        { concurrency }
      )
      const ms = performance.now() - t
      return {
        ms,
        sampled: outcomes.filter(Either.isRight).length,
        failed: outcomes.filter(Either.isLeft).length
      }
    })

  const cliPass = Effect.gen(function* () {
    const t = performance.now()
    const out = yield* cli(["stats", "--no-stream", "--format", "{{.ID}} {{.CPUPerc}} {{.MemUsage}}", ...ids])
    return { ms: performance.now() - t, sampled: out.trim().split("\n").filter(Boolean).length }
  })

  // The worker's default concurrency, and all at once: a one-shot call returns at the engine's
  // next collection tick (about 1 s), so the bound, not the engine, sets the pass time.
  const kyozo: Array<number> = []
  const wide: Array<number> = []
  const docker: Array<number> = []
  for (let round = 1; round <= ROUNDS; round++) {
    const k = yield* kyozoPass(concurrency)
    const w = yield* kyozoPass(COUNT)
    const d = yield* cliPass
    if (k.sampled !== COUNT || w.sampled !== COUNT || d.sampled !== COUNT) {
      console.log(
        `round ${round}: kyozo sampled ${k.sampled} (${k.failed} failed), ${w.sampled} (${w.failed} failed); docker stats ${d.sampled}`
      )
    }
    kyozo.push(k.ms)
    wide.push(w.ms)
    docker.push(d.ms)
    console.log(
      `round ${round}: kyozo pass ×${concurrency} ${k.ms.toFixed(0)} ms | ×${COUNT} ${w.ms.toFixed(0)} ms | docker stats --no-stream ${d.ms.toFixed(0)} ms`
    )
  }
  const dm = median(docker)
  const row = (label: string, xs: ReadonlyArray<number>) =>
    console.log(
      `${label.padEnd(34)} median ${median(xs).toFixed(0).padStart(5)} ms  [${xs.map((x) => x.toFixed(0)).join(", ")}]`
    )
  console.log("")
  console.log(`${COUNT} containers (${IMAGE}, httpd -f -p 8080), ${ROUNDS} rounds`)
  row(`kyozo pass, one-shot ×${concurrency} (default)`, kyozo)
  row(`kyozo pass, one-shot ×${COUNT}`, wide)
  row("docker stats --no-stream", docker)
  console.log(`ratio docker stats / kyozo ×${concurrency}: ${(dm / median(kyozo)).toFixed(2)}×`)
  console.log(`ratio docker stats / kyozo ×${COUNT}: ${(dm / median(wide)).toFixed(2)}×`)
})

const cleanup = Effect.gen(function* () {
  const runtime = yield* ContainerRuntime
  const left = yield* runtime.listContainers({ all: true, labels: benchLabel })
  yield* Effect.forEach(left, (c) => Effect.ignore(runtime.removeContainer(c.id, { force: true })), {
    concurrency: 8,
    discard: true
  })
  console.log(`removed ${left.length} bench containers`)
})

Effect.runPromise(
  program.pipe(
    Effect.ensuring(Effect.orDie(cleanup)),
    Effect.provide(DockerRuntime.layerWith({ dockerHost: process.env.DOCKER_HOST, timeout: "30 seconds" }))
  )
).catch((e) => {
  console.error(e)
  process.exitCode = 1
})

/**
 * The mock engine's builds: reads the Dockerfile out of the build context (a tar stream, read with
 * tar-stream), walks its instructions (FROM, LABEL, EXPOSE, HEALTHCHECK; `RUN false` fails as a
 * real engine would) and stores a content-addressed image with its build-cache entry.
 */
import { Readable } from "node:stream"

import { BuildFailed, type RuntimeError } from "@kyozo/api/domain/RuntimeErrors"
import { Clock, Effect, Stream } from "effect"
import * as tar from "tar-stream"

import type { BuildEvent, BuildOptions, ImageHealthcheck } from "../ContainerRuntime.js"
import { labelsFor } from "../Labels.js"
import { type MockEngine, normalizeImageRef, parseDurationMs } from "./MockEngine.js"
import { Hasher, hex64 } from "./MockIds.js"

/** The text of one regular file in a tar, or undefined when it is missing or the bytes are not a tar. */
const readTarFile = (buf: Uint8Array, wanted: string): Effect.Effect<string | undefined> =>
  Effect.promise(async () => {
    const want = wanted.replace(/^\.\//, "")
    const extract = tar.extract()
    Readable.from([Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)]).pipe(extract)
    try {
      for await (const entry of extract) {
        if (entry.header.type === "file" && entry.header.name.replace(/^\.\//, "") === want) {
          const parts: Array<Buffer> = []
          for await (const chunk of entry) parts.push(chunk as Buffer)
          extract.destroy()
          return Buffer.concat(parts).toString("utf8")
        }
        entry.resume()
      }
      return undefined
    } catch {
      return undefined
    }
  })

/** Dockerfile instructions with continuation lines joined and comments dropped. */
const dockerfileInstructions = (text: string): Array<string> => {
  const out: Array<string> = []
  let current = ""
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (current === "" && (line === "" || line.startsWith("#"))) continue
    if (line.endsWith("\\")) {
      current += line.slice(0, -1) + " "
      continue
    }
    current += line
    if (current.trim() !== "") out.push(current.trim())
    current = ""
  }
  if (current.trim() !== "") out.push(current.trim())
  return out
}

export const mockBuild =
  (engine: MockEngine) =>
  (options: BuildOptions): Stream.Stream<BuildEvent, RuntimeError> => {
    const { buildCache, failBuilds, findImage, images, setTag } = engine

    const tag = normalizeImageRef(options.tag)
    const collect = Effect.gen(function* () {
      const chunks: Array<Uint8Array> = []
      let size = 0
      yield* options.context.pipe(
        Stream.runForEach((chunk) =>
          Effect.sync(() => {
            chunks.push(chunk)
            size += chunk.length
          })
        ),
        Effect.mapError(
          (e) =>
            new BuildFailed({
              image: tag,
              reason: `reading the build context failed: ${String(e)}`,
              logTail: []
            })
        )
      )
      const all = new Uint8Array(size)
      let off = 0
      for (const chunk of chunks) {
        all.set(chunk, off)
        off += chunk.length
      }
      return all
    })

    const run = Effect.gen(function* () {
      const context = yield* collect
      const now = yield* Clock.currentTimeMillis
      const dockerfile = yield* readTarFile(context, options.dockerfile ?? "Dockerfile")
      // Without a tar (or a Dockerfile in it) the whole context stands in for the Dockerfile.
      const instructions = dockerfileInstructions(dockerfile ?? new TextDecoder().decode(context))
      const events: Array<BuildEvent> = []
      const tail: Array<string> = []
      const step = (line: string) => {
        events.push({ _tag: "Step", line })
        tail.push(line)
      }
      const steps = instructions.filter((i) => /^[A-Z]+\s/i.test(i))
      let exposed: Array<number> = []
      const dockerfileLabels: Record<string, string> = {}
      let healthcheck: ImageHealthcheck | null = null
      let volumes: Array<string> = []
      let baseSize = 0
      for (const [i, instruction] of steps.entries()) {
        step(`Step ${i + 1}/${steps.length} : ${instruction}`)
        const [keyword = "", ...rest] = instruction.split(/\s+/)
        const args = rest.join(" ")
        if (failBuilds.test(instruction)) {
          const command = args.replace(/^\s+/, "")
          const reason = `The command '/bin/sh -c ${command}' returned a non-zero code: 1`
          return { events, failure: new BuildFailed({ image: tag, reason, logTail: tail.slice(-10) }) }
        }
        switch (keyword.toUpperCase()) {
          case "FROM": {
            const base = findImage(rest[0] ?? "")
            if (base) {
              exposed = [...base.exposedPorts]
              healthcheck = base.healthcheck
              volumes = [...base.volumes]
              baseSize = base.sizeBytes
            }
            break
          }
          case "LABEL":
            // `LABEL k=v "k 2"="v 2"`, as Docker reads it (JSON-style quoting).
            for (const m of args.matchAll(/("(?:[^"\\]|\\.)*"|[^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
              const unquote = (t: string) => (t.startsWith('"') ? (JSON.parse(t) as string) : t)
              dockerfileLabels[unquote(m[1]!)] = unquote(m[2]!)
            }
            break
          case "EXPOSE":
            for (const p of rest) {
              const n = parseInt(p, 10)
              if (Number.isFinite(n) && !exposed.includes(n)) exposed.push(n)
            }
            break
          case "VOLUME": {
            // `VOLUME /a /b` or the JSON form `VOLUME ["/a", "/b"]`.
            const paths = args.trim().startsWith("[") ? (JSON.parse(args) as Array<string>) : rest
            for (const p of paths) if (!volumes.includes(p)) volumes.push(p)
            break
          }
          case "HEALTHCHECK": {
            if (/^NONE$/i.test(args.trim())) healthcheck = null
            else {
              const cmdAt = args.search(/\bCMD\b/)
              const flags = cmdAt === -1 ? args : args.slice(0, cmdAt)
              const flag = (name: string) => {
                const m = new RegExp(`--${name}=(\\S+)`).exec(flags)
                return m ? parseDurationMs(m[1]!) : undefined
              }
              const retries = /--retries=(\d+)/.exec(flags)
              healthcheck = {
                test: ["CMD-SHELL", cmdAt === -1 ? "" : args.slice(cmdAt + 3).trim()],
                ...(flag("interval") !== undefined ? { intervalMs: flag("interval")! } : {}),
                ...(flag("timeout") !== undefined ? { timeoutMs: flag("timeout")! } : {}),
                ...(flag("start-period") !== undefined ? { startPeriodMs: flag("start-period")! } : {}),
                ...(retries ? { retries: Number(retries[1]) } : {})
              }
            }
            break
          }
        }
        events.push({ _tag: "Step", line: ` ---> ${hex64(`${tag}:${i}:${instruction}`).slice(0, 12)}` })
      }
      const hasher = new Hasher().bytes(context).string(JSON.stringify(options.labels ?? {}))
      const id = `sha256:${hasher.string(JSON.stringify(options.buildArgs ?? {})).hex()}`
      const labels = labelsFor({}, { ...dockerfileLabels, ...options.labels })
      let image = images.get(id)
      if (!image) {
        image = {
          id,
          tags: [],
          labels,
          sizeBytes: baseSize + context.length,
          createdAt: now,
          exposedPorts: exposed,
          healthcheck,
          volumes
        }
        images.set(id, image)
      }
      setTag(tag, image, now)
      buildCache.push({ id: hex64(`cache:${id}:${buildCache.length}`), labels, sizeBytes: context.length })
      step(`Successfully built ${id.slice(7, 19)}`)
      step(`Successfully tagged ${tag}`)
      events.push({ _tag: "Built", imageId: id, tag })
      return { events, failure: undefined }
    })

    const first: Stream.Stream<BuildEvent, RuntimeError> = Stream.succeed({
      _tag: "Step",
      line: "Sending build context to Docker daemon"
    })
    const rest: Stream.Stream<BuildEvent, RuntimeError> = Stream.fromEffect(run).pipe(
      Stream.flatMap(({ events, failure }) => {
        const steps = Stream.fromIterable(events)
        return failure ? Stream.concat(steps, Stream.fail(failure)) : steps
      })
    )
    return Stream.concat(first, rest)
  }

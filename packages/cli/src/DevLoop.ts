/**
 * `kyozo dev <folder>` (and `kyozo deploy --watch`): deploys, then watches the folder (chokidar;
 * `.dockerignore` or Kyozo's default ignores), debounces a burst of saves into one pass, and
 * redeploys when the content hash of a service's folder changed (the same hash that names its
 * image, so a save that changes nothing the build sees redeploys nothing). Streams the logs of
 * the deployed services, prints their URLs, and stops cleanly on Ctrl-C.
 *
 * A multi-service folder is redeployed as a whole when any of its services changed; the server
 * reuses the image of every service whose hash did not change.
 */
import * as fs from "node:fs"
import * as path from "node:path"

import dockerignore from "@balena/dockerignore"
import type { DeploymentSummary } from "@kyozo/api/domain/Deploy"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Deferred, Effect, Fiber, Queue, Stream } from "effect"

import { deployFolder } from "./DeployCommand.js"
import { logLine } from "./Output.js"

export interface DevOptions {
  readonly name?: string
  readonly json: boolean
  /** Quiet period after the last change before a pass runs. */
  readonly debounceMs?: number
}

const say = (json: boolean, line: string, value: Record<string, unknown>) =>
  Effect.sync(() => process.stdout.write(json ? JSON.stringify(value) + "\n" : line + "\n"))

/** The watcher's ignore rule: what the build context would leave out, plus .git and node_modules. */
const ignoreRule = async (root: string): Promise<(abs: string) => boolean> => {
  const { DEFAULT_DOCKERIGNORE } = await import("@kyozo/core/build/dockerfile/DockerfileGenerator")
  const text = await fs.promises.readFile(path.join(root, ".dockerignore"), "utf8").catch(() => undefined)
  const patterns = (text ?? DEFAULT_DOCKERIGNORE)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
  const ig = dockerignore.default().add(patterns)
  return (abs) => {
    const rel = path.relative(root, abs).split(path.sep).join("/")
    if (rel === "" || rel.startsWith("..")) return false
    if (rel === ".git" || rel.startsWith(".git/") || rel.split("/").includes("node_modules")) return true
    return ig.ignores(rel)
  }
}

/** The content hash of each deployed service's folder (the service's path inside `root`). */
const hashes = (root: string, services: ReadonlyArray<{ name: string; path: string }>) =>
  Effect.gen(function* () {
    const { fromFolder } = yield* Effect.promise(() => import("@kyozo/core/build/BuildContext"))
    const out = new Map<string, string>()
    for (const s of services) {
      const ctx = yield* fromFolder(path.join(root, s.path), { requireDockerfile: false }).pipe(Effect.option)
      out.set(s.name, ctx._tag === "Some" ? ctx.value.hash : "unreadable")
    }
    return out
  })

export const devLoop = (root: string, options: DevOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      const client = yield* KyozoClient
      const debounceMs = options.debounceMs ?? Number(process.env.KYOZO_DEV_DEBOUNCE_MS ?? 300)
      const stop = yield* Deferred.make<void>()
      const onSignal = () => Deferred.unsafeDone(stop, Effect.void)
      process.once("SIGINT", onSignal)
      process.once("SIGTERM", onSignal)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          process.off("SIGINT", onSignal)
          process.off("SIGTERM", onSignal)
        })
      )

      let logFibers: Array<Fiber.RuntimeFiber<void, unknown>> = []
      const followLogs = (deployed: ReadonlyArray<DeploymentSummary>) =>
        Effect.gen(function* () {
          for (const f of logFibers) yield* Fiber.interrupt(f)
          logFibers = []
          for (const d of deployed) {
            const fiber = yield* client.Logs({ service: d.serviceId, follow: true, tail: 0 }).pipe(
              Stream.runForEach((l) =>
                Effect.sync(() =>
                  process.stdout.write(
                    options.json
                      ? JSON.stringify({ _tag: "Log", service: d.serviceName, ...l }) + "\n"
                      : `[${d.serviceName}] ${logLine(l)}\n`
                  )
                )
              ),
              Effect.catchAll(() => Effect.void),
              Effect.forkScoped
            )
            logFibers.push(fiber)
          }
        })

      const detected: Array<{ name: string; path: string }> = []
      let lastDeployed: ReadonlyArray<DeploymentSummary> = []
      const deployOnce = Effect.gen(function* () {
        // Log lines would tear the live progress display: pause them while deploying.
        for (const f of logFibers) yield* Fiber.interrupt(f)
        logFibers = []
        const result = yield* deployFolder(root, { name: options.name, json: options.json })
        detected.splice(0, detected.length, ...result.detected)
        lastDeployed = result.deployed
        yield* followLogs(result.deployed)
        return result.deployed
      })

      yield* deployOnce
      let known = yield* hashes(root, detected)
      let redeploys = 0

      const changes = yield* Queue.unbounded<string>()
      const chokidar = yield* Effect.promise(() => import("chokidar"))
      const ignored = yield* Effect.promise(() => ignoreRule(root))
      const watcher = yield* Effect.acquireRelease(
        Effect.sync(() =>
          chokidar
            .watch(root, { ignored, ignoreInitial: true, awaitWriteFinish: false })
            .on("all", (_event, file) => Queue.unsafeOffer(changes, file))
        ),
        (w) => Effect.promise(() => w.close())
      )
      yield* Effect.promise(() => new Promise<void>((resolve) => watcher.once("ready", () => resolve())))
      yield* say(options.json, `watching ${root} (Ctrl-C to stop)`, { _tag: "Watching", folder: root })

      const pass = Effect.gen(function* () {
        yield* Queue.take(changes)
        // Debounce: wait until the folder has been quiet for debounceMs.
        for (;;) {
          yield* Effect.sleep(debounceMs)
          const more = yield* Queue.takeAll(changes)
          if (more.length === 0) break
        }
        const now = yield* hashes(root, detected)
        // A single service is deployed under its own name (the folder's, or --name): say that one.
        const label = (n: string) =>
          detected.length === 1 && lastDeployed.length === 1 ? lastDeployed[0]!.serviceName : n
        const changed = [...now.entries()].filter(([n, h]) => known.get(n) !== h).map(([n]) => label(n))
        if (changed.length === 0) return
        redeploys++
        yield* say(options.json, `changed: ${changed.join(", ")}: redeploying (#${redeploys})`, {
          _tag: "Redeploy",
          changed,
          redeploy: redeploys
        })
        // What was tried is what is known, success or not: a failed state waits for the next save.
        known = now
        yield* deployOnce.pipe(
          Effect.catchAll((e) =>
            say(
              options.json,
              `redeploy failed: ${(e as { message?: string }).message ?? String(e)} (fix the folder and save again)`,
              { _tag: "RedeployFailed", error: (e as { message?: string }).message ?? String(e) }
            ).pipe(
              // The previous version keeps serving: keep showing its logs.
              Effect.zipRight(followLogs(lastDeployed))
            )
          )
        )
        // Content hashes are re-read after the deploy: saves made during it start the next pass.
        const after = yield* hashes(root, detected)
        if ([...after.entries()].some(([n, h]) => known.get(n) !== h))
          yield* Queue.offer(changes, "(during deploy)")
      })
      yield* Effect.raceFirst(Effect.forever(pass), Deferred.await(stop))
      yield* say(options.json, `stopped watching after ${redeploys} redeploy(s)`, {
        _tag: "Stopped",
        redeploys
      })
    })
  )

/**
 * `kyozo deploy <folder> [--name N] [--wait] [--watch] [--json] [--force] [--replicas n]`: packs the folder as Docker would
 * send it (.dockerignore or Kyozo's defaults honoured), uploads it to `/v1/uploads`, then runs
 * `Deploy` over RPC and shows its progress (Progress.ts) and, at the end, the URL of every service
 * (marked simulated when the server runs on the mock runtime). The service name defaults to the
 * folder's name (the server only sees an upload id). `--json` prints NDJSON: one line per
 * progress message. `--wait` also waits until every deployed service reports `running`.
 * `--watch` is `kyozo dev`: deploy, then redeploy on change. A redeploy whose spec equals what runs
 * changes nothing (status `unchanged`); `--force` replaces the containers anyway.
 */
import * as path from "node:path"

import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import type { DeploymentSummary } from "@kyozo/api/domain/Deploy"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Chunk, Duration, Effect, Option, Schema, Stream } from "effect"

import { ClientLive, Connection } from "./Connection.js"
import { resolveFolder } from "./Folder.js"
import { json, printNdjson } from "./Output.js"
import { makeRenderer, modeOf } from "./Progress.js"

export class UploadFailed extends Schema.TaggedError<UploadFailed>()("UploadFailed", {
  status: Schema.Number,
  detail: Schema.String
}) {
  override get message() {
    return `upload failed (${this.status}): ${this.detail}`
  }
}

export const folder = Args.text({ name: "folder" }).pipe(
  Args.withDescription("the folder to deploy"),
  Args.withDefault(".")
)
export const name = Options.text("name").pipe(
  Options.withDescription("service name (default: from detection)"),
  Options.optional
)
const wait = Options.boolean("wait").pipe(Options.withDescription("wait until every service is running"))
const watch = Options.boolean("watch").pipe(
  Options.withDescription("keep watching the folder and redeploy what changed (same as `kyozo dev`)")
)

const force = Options.boolean("force").pipe(
  Options.withDescription("replace the containers even when nothing changed")
)

const replicas = Options.integer("replicas").pipe(
  Options.withDescription(
    "run n replicas of each deployed service behind its URL (1 to 20; quotas count them)"
  ),
  Options.optional
)

const UploadAnswer = Schema.Struct({ uploadId: Schema.String, files: Schema.Number, bytes: Schema.Number })

/**
 * Sends the tar to the server; answers the upload id. `service` names what it is for, so a viewer
 * with a deploy grant on that service may upload it.
 */
export const upload = (url: string, token: string, tar: Uint8Array, service?: string) =>
  Effect.gen(function* () {
    const query = service === undefined ? "" : `?service=${encodeURIComponent(service)}`
    const res = yield* Effect.tryPromise({
      try: () =>
        fetch(`${url}/v1/uploads${query}`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/x-tar" },
          body: tar
        }),
      catch: (e) => new UploadFailed({ status: 0, detail: String(e) })
    })
    const text = yield* Effect.promise(() => res.text())
    if (res.status !== 201) {
      let detail = text
      try {
        const body = JSON.parse(text) as { errors?: Array<{ detail?: string }> }
        detail = body.errors?.[0]?.detail ?? text
      } catch {
        /* not JSON: keep the text */
      }
      return yield* new UploadFailed({ status: res.status, detail })
    }
    return yield* Schema.decodeUnknown(Schema.parseJson(UploadAnswer))(text).pipe(
      Effect.mapError(() => new UploadFailed({ status: res.status, detail: `unexpected answer ${text}` }))
    )
  })

// Packing loads tar-stream and .dockerignore matching: only deploy needs them.
const loadBuildContext = Effect.promise(() => import("@kyozo/core/build/BuildContext"))

/** One deploy of `dir`: pack, upload, deploy with progress. Answers what was deployed. */
export const deployFolder = (
  dir: string,
  options: { readonly name?: string; readonly json: boolean; readonly force?: boolean }
) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const connection = yield* Connection
    const { fromFolder } = yield* loadBuildContext
    // The folder's kyozo.json is checked here first, so a mistake names the user's own file;
    // a single service's name there is the service's name.
    const KyozoJson = yield* Effect.promise(() => import("@kyozo/core/build/topology/KyozoJson"))
    const settings = yield* KyozoJson.read(dir)
    const named = Option.flatMap(settings, (k) =>
      k.services.length === 1 ? Option.some(k.services[0]!.name) : Option.none()
    )
    const renderer = makeRenderer(modeOf(options.json))
    return yield* Effect.gen(function* () {
      const context = yield* fromFolder(dir, { requireDockerfile: false })
      renderer.packed(context.fileCount, context.sizeBytes)
      const tar = yield* Stream.runCollect(context.tar).pipe(
        Effect.map((chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks)))
      )
      const started = Date.now()
      const serviceName = options.name ?? Option.getOrElse(named, () => path.basename(dir))
      const uploaded = yield* upload(connection.url, connection.token, tar, serviceName)
      renderer.uploaded(uploaded.files, uploaded.bytes, Date.now() - started, uploaded.uploadId)
      const deployed: Array<DeploymentSummary> = []
      const detected: Array<{ name: string; path: string }> = []
      yield* client
        .Deploy({
          source: { _tag: "Upload", uploadId: uploaded.uploadId },
          name: serviceName,
          ...(options.force === true ? { force: true } : {})
        })
        .pipe(
          Stream.runForEach((p) =>
            Effect.sync(() => {
              if (p._tag === "Deployed") deployed.push(p.deployment)
              if (p._tag === "Detected")
                detected.push(...p.services.map((s) => ({ name: s.name, path: s.path })))
              renderer.progress(p)
            })
          )
        )
      renderer.finished(deployed, connection.runtime === "mock")
      return { deployed: deployed as ReadonlyArray<DeploymentSummary>, detected }
    }).pipe(Effect.ensuring(Effect.sync(() => renderer.close())))
  })

export const deployCommand = Command.make(
  "deploy",
  { folder, name, wait, watch, json, force, replicas },
  (args) =>
    Effect.gen(function* () {
      const dir = resolveFolder(args.folder)
      // Checked before anything is deployed: a bad count must not leave a half-done deploy.
      if (Option.isSome(args.replicas) && !(args.replicas.value >= 1 && args.replicas.value <= 20))
        return yield* Effect.zipRight(
          // A usage error (exit 2) prints itself: main.ts leaves those to the command.
          Effect.sync(() =>
            process.stderr.write(
              `kyozo: --replicas ${Option.getOrElse(args.replicas, () => 0)}: must be 1 to 20\n`
            )
          ),
          Effect.fail(ValidationError.invalidValue(HelpDoc.p("--replicas must be 1 to 20")))
        )
      if (args.watch) {
        const dev = yield* Effect.promise(() => import("./DevLoop.js"))
        return yield* dev.devLoop(dir, { name: Option.getOrUndefined(args.name), json: args.json })
      }
      const client = yield* KyozoClient
      const { deployed } = yield* deployFolder(dir, {
        name: Option.getOrUndefined(args.name),
        json: args.json,
        force: args.force
      })
      // Through the same quota-gated scale as `kyozo scale`: the deploy itself rolls what ran.
      if (Option.isSome(args.replicas)) {
        for (const d of deployed) {
          if (d.status === "failed") continue
          yield* client.ScaleService({ service: d.serviceId, replicas: args.replicas.value })
        }
      }
      if (args.wait) {
        for (const d of deployed) {
          const settled = (status: string) =>
            status === "running" || status === "failed" || status === "unhealthy"
          const deadline = Date.now() + 120_000
          let view = yield* client.GetService({ service: d.serviceId })
          while (!settled(view.status) && Date.now() < deadline) {
            yield* Effect.sleep(Duration.millis(500))
            view = yield* client.GetService({ service: d.serviceId })
          }
          if (args.json) yield* printNdjson({ _tag: "Service", service: view })
          else process.stdout.write(`${view.name}: ${view.status}\n`)
        }
      }
    }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Deploy a folder: detect, build (or reuse), run behind a health gate"))

/**
 * `kyozo deploy <folder> [--name N] [--wait] [--json]`: packs the folder as Docker would send it
 * (.dockerignore or Kyozo's defaults honoured), uploads it to `/v1/uploads`, then runs `Deploy`
 * over RPC and prints its progress and, at the end, the URL of every running service.
 * The service name defaults to the folder's name (the server only sees an upload id).
 * `--json` prints NDJSON: one line per progress message. `--wait` also waits until every deployed
 * service reports `running`.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { fromFolder } from "@kyozo/core/BuildContext"
import type { DeploymentSummary, DeployProgress } from "@kyozo/workers/Deployer"
import { Chunk, Console, Duration, Effect, Option, Schema, Stream } from "effect"
import * as path from "node:path"
import { ClientLive, Connection } from "./Connection.js"
import { resolveFolder } from "./DetectCommand.js"
import { json, printNdjson } from "./Output.js"

export class UploadFailed extends Schema.TaggedError<UploadFailed>()("UploadFailed", {
  status: Schema.Number,
  detail: Schema.String
}) {
  override get message() {
    return `upload failed (${this.status}): ${this.detail}`
  }
}

const folder = Args.text({ name: "folder" }).pipe(
  Args.withDescription("the folder to deploy"),
  Args.withDefault(".")
)
const name = Options.text("name").pipe(
  Options.withDescription("service name (default: from detection)"),
  Options.optional
)
const wait = Options.boolean("wait").pipe(Options.withDescription("wait until every service is running"))

const UploadAnswer = Schema.Struct({ uploadId: Schema.String, files: Schema.Number, bytes: Schema.Number })

/** Sends the tar to the server; answers the upload id. */
export const upload = (url: string, token: string, tar: Uint8Array) =>
  Effect.gen(function* () {
    const res = yield* Effect.tryPromise({
      try: () =>
        fetch(`${url}/v1/uploads`, {
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

const describe = (p: DeployProgress): string => {
  switch (p._tag) {
    case "Detected":
      return `detected ${p.services.map((s) => `${s.name} (${s.kind})`).join(", ") || "nothing"}`
    case "BuildLog":
      return `  [${p.service}] ${p.line}`
    case "Step":
      return `${p.service}: ${p.step} — ${p.message}`
    case "Deployed":
      return `${p.deployment.serviceName}: deployed ${p.deployment.deploymentId}${p.deployment.built ? "" : " (image reused)"} in ${Math.round(p.deployment.durationMs)} ms`
  }
}

export const deployCommand = Command.make("deploy", { folder, name, wait, json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const { url, token } = yield* Connection
    const dir = resolveFolder(args.folder)
    const context = yield* fromFolder(dir, { requireDockerfile: false })
    const tar = yield* Stream.runCollect(context.tar).pipe(
      Effect.map((chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks)))
    )
    const uploaded = yield* upload(url, token, tar)
    if (!args.json)
      yield* Console.log(`uploaded ${uploaded.files} files (${uploaded.bytes} bytes) as ${uploaded.uploadId}`)
    const deployed: Array<DeploymentSummary> = []
    yield* client
      .Deploy({
        source: { _tag: "Upload", uploadId: uploaded.uploadId },
        name: Option.getOrElse(args.name, () => path.basename(dir))
      })
      .pipe(
        Stream.runForEach((p) =>
          Effect.zipRight(
            Effect.sync(() => {
              if (p._tag === "Deployed") deployed.push(p.deployment)
            }),
            args.json ? printNdjson(p) : Console.log(describe(p))
          )
        )
      )
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
        else yield* Console.log(`${view.name}: ${view.status}`)
      }
    }
    if (!args.json)
      for (const d of deployed) yield* Console.log(`${d.serviceName} → ${d.url ?? "(no published port)"}`)
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Deploy a folder: detect, build (or reuse), run behind a health gate"))

/**
 * `kyozo.json` beside a folder's code: what detection found, corrected by the user once and kept
 * in version control (`kyozo init` writes it). Detection reads it back: each entry overrides the
 * detected service at the same `path`. A bad file is a DetectError naming the line and the field.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"

import { AutoscalePolicy } from "@kyozo/api/domain/AutoscalePolicy"
import { type DetectedService, DetectError } from "@kyozo/api/domain/Topology"
import { Effect, Option, ParseResult, Schema } from "effect"
import { parseDocument } from "yaml"

import { type PlannedService } from "./Topology.js"

export const fileName = "kyozo.json"

const Name = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9-]{0,62}$/, {
    message: () => "a service name: lower-case letters, digits and '-', starting with a letter or digit"
  })
)
const Port = Schema.Int.pipe(Schema.between(1, 65535, { message: () => "a port number from 1 to 65535" }))
const EnvKey = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/, {
    message: () => "an environment variable name such as DATABASE_URL"
  })
)

export const HealthCheck = Schema.Struct({
  type: Schema.optional(Schema.Literal("http", "tcp", "none")),
  path: Schema.optional(
    Schema.String.pipe(Schema.startsWith("/", { message: () => "a URL path starting with /" }))
  )
})

export const KyozoJsonService = Schema.Struct({
  name: Name,
  /** The service's folder, relative to the file (default "."). */
  path: Schema.optionalWith(Schema.String, { default: () => "." }),
  port: Schema.optional(Schema.NullOr(Port)),
  startCommand: Schema.optional(Schema.NullOr(Schema.String.pipe(Schema.nonEmptyString()))),
  healthCheck: Schema.optional(HealthCheck),
  replicas: Schema.optional(
    Schema.Int.pipe(Schema.between(1, 20, { message: () => "a replica count from 1 to 20" }))
  ),
  /**
   * The environment the service reads: names only (documentation; secrets are set with
   * `kyozo env set`, never kept here), or names with non-secret values, written to the service at
   * each deploy (other variables of the service are kept).
   */
  env: Schema.optional(
    Schema.Union(Schema.Array(EnvKey), Schema.Record({ key: EnvKey, value: Schema.String }))
  ),
  /** Autoscaling (HPA-like): min/max replicas and a CPU or memory target, applied at each deploy. */
  autoscale: Schema.optional(AutoscalePolicy)
})
export type KyozoJsonService = typeof KyozoJsonService.Type

export const KyozoJson = Schema.Struct({
  $schema: Schema.optional(Schema.String),
  services: Schema.Array(KyozoJsonService).pipe(Schema.minItems(1, { message: () => "at least one service" }))
})
export type KyozoJson = typeof KyozoJson.Type

const decode = Schema.decodeUnknownEither(KyozoJson, { onExcessProperty: "error", errors: "first" })

const lineAt = (text: string, offset: number): number => text.slice(0, offset).split("\n").length

const fieldOf = (p: ReadonlyArray<PropertyKey>): string =>
  p.reduce<string>(
    (acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc === "" ? String(k) : `${acc}.${String(k)}`),
    ""
  )

const invalid = (file: string, line: number, detail: string) =>
  new DetectError({
    folder: path.dirname(file),
    reason: "InvalidKyozoJson",
    message: `${file}:${line}: ${detail}. Fix it, or delete ${fileName} to use detection alone.`
  })

/** The line of the node at `at` (or of its nearest parent) in a valid JSON text. */
const lineOf = (text: string, at: ReadonlyArray<PropertyKey>): number => {
  // JSON is YAML, and the YAML parser keeps each node's offset.
  const doc = parseDocument(text)
  for (let n = at.length; n >= 0; n--) {
    const node = doc.getIn(at.slice(0, n) as Array<unknown>, true) as { range?: [number, number] } | undefined
    if (node && typeof node === "object" && node.range) return lineAt(text, node.range[0])
  }
  return 1
}

/** Parses and validates the text of a kyozo.json; a problem names its line and field. */
export const parse = (file: string, text: string): Effect.Effect<KyozoJson, DetectError> =>
  Effect.gen(function* () {
    let raw: unknown
    try {
      raw = JSON.parse(text)
    } catch (e) {
      const message = (e as Error).message
      const at = /position (\d+)/.exec(message)
      const line = at ? lineAt(text, Number(at[1])) : 1
      return yield* invalid(file, line, `not valid JSON (${message})`)
    }
    const result = decode(raw)
    if (result._tag === "Right") return result.right
    const issue = ParseResult.ArrayFormatter.formatErrorSync(result.left)[0]
    const issuePath = issue?.path ?? []
    const line = lineOf(text, issuePath)
    const field = fieldOf(issuePath)
    const message = issue?.message ?? "invalid"
    return yield* invalid(file, line, `${field === "" ? "the file" : field}: ${message}`)
  })

/** The folder's kyozo.json, when it has one. */
export const read = (root: string): Effect.Effect<Option.Option<KyozoJson>, DetectError> =>
  Effect.map(
    readText(root),
    Option.map((r) => r.config)
  )

const readText = (
  root: string
): Effect.Effect<Option.Option<{ config: KyozoJson; text: string }>, DetectError> => {
  const file = path.join(root, fileName)
  return Effect.tryPromise({
    try: () => fs.readFile(file, "utf8"),
    catch: (e) => e as NodeJS.ErrnoException
  }).pipe(
    Effect.matchEffect({
      onFailure: (e) =>
        e.code === "ENOENT"
          ? Effect.succeed(Option.none())
          : Effect.fail(
              new DetectError({
                folder: root,
                reason: "Unreadable",
                message: `cannot read ${file}: ${e.message}`
              })
            ),
      onSuccess: (text) => Effect.map(parse(file, text), (config) => Option.some({ config, text }))
    })
  )
}

const norm = (p: string) => path.posix.normalize(p.replace(/\\/g, "/")).replace(/^\.\/|\/$/g, "") || "."

/** Detected services with the folder's kyozo.json applied (an entry overrides the service at its path). */
export const apply = (
  root: string,
  planned: ReadonlyArray<PlannedService>
): Effect.Effect<ReadonlyArray<PlannedService>, DetectError> =>
  Effect.gen(function* () {
    const found = yield* readText(root)
    if (Option.isNone(found)) return planned
    const { config, text } = found.value
    const file = path.join(root, fileName)
    // An entry is the detected service of the same name, else the only one at its path (a rename).
    const byName = new Map(planned.map((p) => [p.service.name, p]))
    const replaced = new Map<PlannedService, PlannedService>()
    for (const [i, entry] of config.services.entries()) {
      const atPath = planned.filter((p) => norm(p.service.path) === norm(entry.path))
      const target = byName.get(entry.name) ?? (atPath.length === 1 ? atPath[0] : undefined)
      if (!target)
        return yield* invalid(
          file,
          lineOf(text, ["services", i]),
          atPath.length > 1
            ? `services[${i}]: several services live at "${entry.path}" (${atPath.map((p) => p.service.name).join(", ")}): name one of them`
            : `services[${i}].path: no service was detected at "${entry.path}" (detected: ${planned.map((p) => `${p.service.name} at ${norm(p.service.path)}`).join(", ") || "none"})`
        )
      if (replaced.has(target))
        return yield* invalid(
          file,
          1,
          `services[${i}]: a second entry for the service ${target.service.name}`
        )
      const service: DetectedService = {
        ...target.service,
        name: entry.name,
        port: entry.port === undefined ? target.service.port : entry.port,
        startCommand: entry.startCommand === undefined ? target.service.startCommand : entry.startCommand,
        evidence: [...target.service.evidence, { file: fileName, detail: "settings from kyozo.json" }]
      }
      const env =
        entry.env !== undefined && !Array.isArray(entry.env)
          ? (entry.env as Record<string, string>)
          : undefined
      replaced.set(target, {
        ...target,
        service,
        ...(entry.autoscale ? { autoscale: entry.autoscale } : {}),
        ...(entry.replicas === undefined ? {} : { replicas: entry.replicas }),
        ...(entry.healthCheck === undefined ? {} : { healthCheck: entry.healthCheck }),
        ...(env === undefined ? {} : { env })
      })
    }
    // Other services name a renamed one in dependsOn: follow the rename.
    const renamed = new Map([...replaced].map(([from, to]) => [from.service.name, to.service.name]))
    return planned.map((p) => {
      const q = replaced.get(p) ?? p
      return q.service.dependsOn.some((d) => renamed.has(d))
        ? { ...q, service: { ...q.service, dependsOn: q.service.dependsOn.map((d) => renamed.get(d) ?? d) } }
        : q
    })
  })

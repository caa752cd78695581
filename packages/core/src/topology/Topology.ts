/**
 * The answer of topology detection: what runs in a folder, with evidence and a confidence.
 * The JSON shape of `DetectedService` / `TopologyResult` is a contract scripts depend on.
 */
import { Schema } from "effect"
import type { AutoscalePolicy } from "../domain/AutoscalePolicy.js"

export const ServiceKind = Schema.Literal(
  "node",
  "python",
  "go",
  "ruby",
  "rust",
  "java",
  "php",
  "deno",
  "elixir",
  "static",
  "dockerfile",
  "image"
)
export type ServiceKind = typeof ServiceKind.Type

/** The stacks a Dockerfile can be generated for. */
export type StackKind = Exclude<ServiceKind, "dockerfile" | "image">

export const Evidence = Schema.Struct({
  file: Schema.String,
  line: Schema.optional(Schema.Number),
  detail: Schema.String
})
export type Evidence = typeof Evidence.Type

export const DetectedService = Schema.Struct({
  name: Schema.String,
  path: Schema.String,
  kind: ServiceKind,
  framework: Schema.NullOr(Schema.String),
  port: Schema.NullOr(Schema.Number),
  startCommand: Schema.NullOr(Schema.String),
  image: Schema.NullOr(Schema.String),
  dependsOn: Schema.Array(Schema.String),
  requires: Schema.Array(Schema.String),
  evidence: Schema.Array(Evidence),
  confidence: Schema.Number
})
export type DetectedService = typeof DetectedService.Type

export const TopologyResult = Schema.Struct({
  services: Schema.Array(DetectedService),
  reason: Schema.optional(Schema.String)
})
export type TopologyResult = typeof TopologyResult.Type

/**
 * What a Dockerfile generator needs beyond the contract fields. Kept out of the JSON contract.
 */
export interface BuildHints {
  readonly stack: StackKind
  /** Files (relative to the service path) that exist and list dependencies: copied before sources. */
  readonly manifests: ReadonlyArray<string>
  readonly packageManager?: "npm" | "pnpm" | "yarn" | "bun"
  readonly hasDependencies?: boolean
  readonly buildScript?: boolean
  /** Go: package to build (".", "./cmd/api"); Rust/Elixir: binary or release name. */
  readonly target?: string
  readonly buildTool?: "maven" | "gradle"
  /** Static: folder (relative to the service path) holding the site. */
  readonly siteDir?: string
  /** Node front end: the folder its build writes (served by a static server; nothing else ships). */
  readonly output?: string
  /** Node front end: the script that builds it (default "build"). */
  readonly buildScriptName?: string
  /** Files Kyozo writes into the build context, replacing the folder's (a normalised package.json). */
  readonly contextFiles?: Readonly<Record<string, string>>
  /** Python: a folder of wheels shipped with the app; installs use it alone (`--no-index`). */
  readonly wheelDir?: string
}

export interface PlannedService {
  readonly service: DetectedService
  /** Absent when the folder brings its own Dockerfile, or for image-only services. */
  readonly hints?: BuildHints
  /** Named volumes it declares (compose), kept on the service row and mounted by every container. */
  readonly volumes?: ReadonlyArray<{ readonly name: string; readonly target: string }>
  /** Autoscaling from kyozo.json, written to the service row at deploy (absent: left as it is). */
  readonly autoscale?: AutoscalePolicy
}

export interface TopologyPlan {
  readonly root: string
  readonly services: ReadonlyArray<PlannedService>
  readonly reason?: string
}

/** Folder problems that stop detection. Crosses the wire (server, CLI), hence a Schema error. */
export class DetectError extends Schema.TaggedError<DetectError>()("DetectError", {
  folder: Schema.String,
  reason: Schema.Literal("NotFound", "NotADirectory", "Unreadable", "InvalidKyozoJson"),
  message: Schema.String
}) {}

export const toResult = (plan: TopologyPlan): TopologyResult =>
  plan.reason === undefined
    ? { services: plan.services.map((p) => p.service) }
    : { services: plan.services.map((p) => p.service), reason: plan.reason }

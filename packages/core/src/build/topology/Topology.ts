/**
 * Detection's plan: the contract's DetectedService plus what the build needs beyond it (BuildHints).
 * The wire shapes (DetectedService, TopologyResult, DetectError) live in the contract
 * (domain/Topology) and are re-exported here.
 */
import { AutoscalePolicy } from "@kyozo/api/domain/AutoscalePolicy"
import { DetectedService, type StackKind, type TopologyResult } from "@kyozo/api/domain/Topology"
import { Schema } from "effect"

export {
  DetectedService,
  DetectError,
  Evidence,
  ServiceKind,
  type StackKind,
  TopologyResult
} from "@kyozo/api/domain/Topology"

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
  /** Replicas from kyozo.json, written to the service row at deploy (quota-gated; absent: left as it is). */
  readonly replicas?: number
  /** The health check from kyozo.json, written to the service row at deploy. */
  readonly healthCheck?: PlannedHealthCheck
  /** Env values from kyozo.json, merged into the service's env at deploy (the file wins for its keys). */
  readonly env?: Readonly<Record<string, string>>
}

/** kyozo.json's health check: "none" trusts the container's running state (no probe of a path). */
export interface PlannedHealthCheck {
  readonly type?: "http" | "tcp" | "none"
  readonly path?: string
}

export interface TopologyPlan {
  readonly root: string
  readonly services: ReadonlyArray<PlannedService>
  readonly reason?: string
}

/**
 * The schemas of BuildHints and PlannedService: a planned service crosses the database as JSON in
 * the deploy workflow's payload. `satisfies Record<keyof …>` makes a field added to the interfaces
 * above without a schema here a compile error ("Property 'x' is missing"): decoding would drop it.
 */
const buildHintsFields = {
  stack: Schema.Literal("node", "python", "go", "ruby", "rust", "java", "php", "deno", "elixir", "static"),
  manifests: Schema.Array(Schema.String),
  packageManager: Schema.optional(Schema.Literal("npm", "pnpm", "yarn", "bun")),
  hasDependencies: Schema.optional(Schema.Boolean),
  buildScript: Schema.optional(Schema.Boolean),
  target: Schema.optional(Schema.String),
  buildTool: Schema.optional(Schema.Literal("maven", "gradle")),
  siteDir: Schema.optional(Schema.String),
  output: Schema.optional(Schema.String),
  buildScriptName: Schema.optional(Schema.String),
  contextFiles: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  wheelDir: Schema.optional(Schema.String)
} satisfies Record<keyof BuildHints, unknown>
export const BuildHintsSchema = Schema.Struct(buildHintsFields)

const plannedServiceFields = {
  service: DetectedService,
  hints: Schema.optional(BuildHintsSchema),
  volumes: Schema.optional(Schema.Array(Schema.Struct({ name: Schema.String, target: Schema.String }))),
  autoscale: Schema.optional(AutoscalePolicy),
  replicas: Schema.optional(Schema.Int),
  healthCheck: Schema.optional(
    Schema.Struct({
      type: Schema.optional(Schema.Literal("http", "tcp", "none")),
      path: Schema.optional(Schema.String)
    })
  ),
  env: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
} satisfies Record<keyof PlannedService, unknown>
export const PlannedServiceSchema = Schema.Struct(plannedServiceFields)

export const toResult = (plan: TopologyPlan): TopologyResult =>
  plan.reason === undefined
    ? { services: plan.services.map((p) => p.service) }
    : { services: plan.services.map((p) => p.service), reason: plan.reason }

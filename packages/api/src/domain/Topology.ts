/**
 * The answer of topology detection: what runs in a folder, with evidence and a confidence.
 * The JSON shape of `DetectedService` / `TopologyResult` is a contract scripts depend on.
 */
import { Schema } from "effect"

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

/** Folder problems that stop detection. Crosses the wire (server, CLI), hence a Schema error. */
export class DetectError extends Schema.TaggedError<DetectError>()("DetectError", {
  folder: Schema.String,
  reason: Schema.Literal("NotFound", "NotADirectory", "Unreadable", "InvalidKyozoJson"),
  message: Schema.String
}) {}

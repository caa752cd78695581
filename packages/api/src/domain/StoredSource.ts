/**
 * Where a service's folder came from, as the deploy path stores it on the service row
 * (`container_service_instances.source`, JSON) so that a redeploy can find it again. One schema for
 * the writer (the Deployer) and every reader, instead of a shape written in one place and probed
 * key by key in another.
 */
import { Option, Schema } from "effect"

import type { DeploySource } from "./Deploy.js"

/** The service's folder inside the source (compose and multi-service folders). */
const servicePath = { service: Schema.optional(Schema.String) }

export const StoredSource = Schema.Union(
  Schema.Struct({ type: Schema.Literal("upload"), uploadId: Schema.String, ...servicePath }),
  Schema.Struct({ type: Schema.Literal("path"), path: Schema.String, ...servicePath })
)
export type StoredSource = typeof StoredSource.Type

/** What the deploy path stores for a service deployed from `source` (its folder `service` inside it). */
export const storedSourceOf = (source: DeploySource, service?: string): StoredSource => {
  const at = service === undefined ? {} : { service }
  return source._tag === "Upload"
    ? { type: "upload", uploadId: source.uploadId, ...at }
    : { type: "path", path: source.path, ...at }
}

const decode = Schema.decodeUnknownOption(StoredSource)

/** The source to deploy a stored service from again; none for rows written before sources were kept. */
export const deploySourceOf = (stored: unknown): Option.Option<DeploySource> =>
  Option.map(decode(stored), (s): DeploySource =>
    s.type === "upload" ? { _tag: "Upload", uploadId: s.uploadId } : { _tag: "Path", path: s.path }
  )

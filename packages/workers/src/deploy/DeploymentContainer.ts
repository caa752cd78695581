/**
 * The container of one deployment: its spec (limits and env from the service row, labels from its
 * ids, loopback ports) and the fingerprint the unchanged check compares.
 */
import * as crypto from "node:crypto"

import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import type { ContainerSpec, VolumeMount } from "@kyozo/core/engine/ContainerRuntime"
import { labelsFor } from "@kyozo/core/engine/Labels"

const envOf = (row: ServiceInstance): Record<string, string> => {
  const env: Record<string, string> = { ...row.env }
  if (row.internalPort !== null) env.PORT = String(row.internalPort)
  return env
}

/** The label holding the container's extra network aliases, comma-separated. */
export const AliasesLabel = "kyozo.aliases"

/** The label holding `specFingerprint` of the container's spec (the unchanged check compares it). */
export const SpecLabel = "kyozo.spec"

/**
 * A hash of what a container of the service runs with besides its image (which is compared by
 * content id): env, limits, ports, health config, network and aliases. The host port is not in it
 * (picked per container); neither are the ids in the labels.
 */
export const specFingerprint = (
  row: ServiceInstance,
  network: string,
  aliases: ReadonlyArray<string>
): string => {
  const env = envOf(row)
  const sorted = Object.fromEntries(
    Object.keys(env)
      .sort()
      .map((k) => [k, env[k]])
  )
  const health = row.healthConfig as unknown as Record<string, unknown>
  const healthSorted = Object.fromEntries(
    Object.keys(health)
      .sort()
      .map((k) => [k, health[k]])
  )
  const canonical = JSON.stringify([
    sorted,
    row.memoryMb,
    row.cpuMillis,
    row.internalPort,
    healthSorted,
    network,
    [...new Set([row.name, ...aliases])],
    ...(row.volumes.length > 0 ? [row.volumes.map((v) => `${v.name}:${v.target}`).sort()] : [])
  ])
  return crypto.createHash("sha256").update(canonical).digest("hex").slice(0, 32)
}

/** The container of one deployment: limits and env from the service row, labels from its ids. */
export const containerSpec = (
  row: ServiceInstance,
  image: string,
  name: string,
  network: string,
  aliases: ReadonlyArray<string>,
  deploymentId: string,
  /** The host port to publish on 127.0.0.1 (pinned so restarts keep it); null lets the engine pick. */
  hostPort: number | null = null,
  /** Its named volumes (`ensureVolumes`: declared ones and the image's VOLUME paths). */
  volumes: ReadonlyArray<VolumeMount> = []
): ContainerSpec => {
  const env = envOf(row)
  return {
    name,
    image,
    labels: labelsFor(
      { serviceId: row.id, teamId: row.teamId, deploymentId },
      {
        [SpecLabel]: specFingerprint(row, network, aliases),
        // So the container can be made again as it was (a re-create on another port).
        ...(aliases.length > 0 ? { [AliasesLabel]: aliases.join(",") } : {})
      }
    ),
    env,
    ports:
      row.internalPort === null
        ? []
        : [
            hostPort === null
              ? { containerPort: row.internalPort }
              : { containerPort: row.internalPort, hostPort }
          ],
    memoryBytes: row.memoryMb * 1024 * 1024,
    nanoCpus: row.cpuMillis * 1_000_000,
    ...(volumes.length > 0 ? { volumes } : {}),
    network,
    networkAliases: [...new Set([row.name, ...aliases])]
  }
}

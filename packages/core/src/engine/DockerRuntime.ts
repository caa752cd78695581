/**
 * `ContainerRuntime` on a real Docker engine, through docker-modem (the HTTP layer of dockerode).
 *
 * The transport (one `dial` with deadlines and error mapping), the wire decoders and the operations
 * per kind of object live in `internal/`; this module assembles them into the runtime and its layers.
 */
import { Effect, Layer, Stream } from "effect"

import { KyozoConfig } from "../KyozoConfig.js"
import { ContainerRuntime, type ContainerRuntimeShape, type EngineEvent } from "./ContainerRuntime.js"
import { containerOperations } from "./internal/DockerContainers.js"
import { imageOperations } from "./internal/DockerImages.js"
import { networkOperations } from "./internal/DockerNetworks.js"
import {
  type DockerRuntimeOptions,
  dockerTimestamp,
  filtersQuery,
  jsonLines,
  labelFilters,
  makeTransport,
  onStatus,
  type Wire
} from "./internal/DockerTransport.js"
import { volumeOperations } from "./internal/DockerVolumes.js"

export {
  defaultSocket,
  type DockerRuntimeOptions,
  labelFilters,
  parseDockerHost
} from "./internal/DockerTransport.js"
export { createBody, Demuxer, splitTimestamp, toContainerStats } from "./internal/DockerWire.js"

/** Builds a `ContainerRuntimeShape` on the engine at `options.dockerHost`. Connects lazily. */
export const make = (options: DockerRuntimeOptions = {}): Effect.Effect<ContainerRuntimeShape> =>
  Effect.sync(() => {
    const transport = makeTransport(options)
    const { bodyOf, dial, dialStream, endpoint } = transport

    const events: ContainerRuntimeShape["events"] = (eventOptions = {}) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const res = yield* onStatus(
            dialStream({
              operation: "events",
              method: "GET",
              path: "/events",
              query: {
                since: eventOptions.since === undefined ? undefined : dockerTimestamp(eventOptions.since),
                filters: filtersQuery(labelFilters(eventOptions))
              }
            })
          )
          return jsonLines(bodyOf("events", res)).pipe(
            Stream.map((e: Wire): EngineEvent => ({
              type: String(e.Type ?? e.type ?? ""),
              action: String(e.Action ?? e.status ?? ""),
              id: String(e.Actor?.ID ?? e.id ?? ""),
              // Docker mixes the object's labels with attributes such as name and image.
              labels: e.Actor?.Attributes ?? {},
              time: typeof e.timeNano === "number" ? Math.floor(e.timeNano / 1e6) : (e.time ?? 0) * 1000
            }))
          )
        })
      )

    const runtime: ContainerRuntimeShape = {
      mode: "docker",
      endpoint,

      ping: onStatus(dial({ operation: "ping", method: "GET", path: "/_ping" })).pipe(Effect.asVoid),

      version: onStatus(dial({ operation: "version", method: "GET", path: "/version" })).pipe(
        Effect.map((v) => ({ version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch }))
      ),

      ...containerOperations(transport),
      ...imageOperations(transport, options.builder),
      ...networkOperations(transport),
      ...volumeOperations(transport),
      events
    }
    return runtime
  })

/** The engine with explicit options (tests, tools). */
export const layerWith = (options: DockerRuntimeOptions): Layer.Layer<ContainerRuntime> =>
  Layer.effect(ContainerRuntime, make(options))

/** The engine from `KyozoConfig` (DOCKER_HOST, KYOZO_DOCKER_TIMEOUT). */
export const layerConfig: Layer.Layer<ContainerRuntime, never, KyozoConfig> = Layer.effect(
  ContainerRuntime,
  Effect.flatMap(KyozoConfig, (config) =>
    make({ dockerHost: config.dockerHost, timeout: config.dockerTimeout, builder: config.dockerBuilder })
  )
)

/** The engine KyozoConfig names (DOCKER_HOST, KYOZO_DOCKER_TIMEOUT), configuration read on its own. */
export const layer: Layer.Layer<ContainerRuntime> = layerConfig.pipe(
  Layer.provide(KyozoConfig.Default),
  Layer.orDie
)

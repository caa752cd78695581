/**
 * Chooses the engine at start-up: `KYOZO_RUNTIME=docker|mock|auto` (auto by default). In auto mode a
 * ping with a short deadline decides; no engine means the in-memory mock, loudly flagged, and never a
 * failed start. Whatever is chosen is wrapped by the circuit breaker, so a Docker that dies later
 * makes calls fail fast with CircuitOpen instead of hanging the process.
 */
import { Context, Duration, Effect, Layer } from "effect"

import { KyozoConfig } from "../KyozoConfig.js"
import * as CircuitBreaker from "./CircuitBreaker.js"
import { ContainerRuntime, type RuntimeMode } from "./ContainerRuntime.js"
import * as DockerRuntime from "./DockerRuntime.js"
import * as MockRuntime from "./MockRuntime.js"

export interface RuntimeInfoShape {
  readonly mode: RuntimeMode
  /** Why this mode: "KYOZO_RUNTIME=mock", "docker answered ping (28.2.2)", "no engine at …: …". */
  readonly reason: string
  readonly endpoint: string
}

export class RuntimeInfo extends Context.Tag("@kyozo/core/RuntimeInfo")<RuntimeInfo, RuntimeInfoShape>() {}

const PING_DEADLINE = Duration.seconds(2)

const infoLayer = (info: RuntimeInfoShape) => Layer.succeed(RuntimeInfo, info)

/** The unguarded engine plus how it was chosen. */
const selected: Layer.Layer<ContainerRuntime | RuntimeInfo, never, KyozoConfig> = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* KyozoConfig
    const mock = MockRuntime.layer

    if (config.runtime === "mock") {
      yield* Effect.logWarning("Runtime: MOCK (KYOZO_RUNTIME=mock). Containers are simulated in memory.")
      return Layer.merge(
        mock,
        infoLayer({ mode: "mock", reason: "KYOZO_RUNTIME=mock", endpoint: MockRuntime.MockEndpoint })
      )
    }

    const docker = yield* DockerRuntime.make({
      dockerHost: config.dockerHost,
      timeout: config.dockerTimeout,
      builder: config.dockerBuilder
    })
    const dockerLayer = (reason: string) =>
      Layer.merge(
        Layer.succeed(ContainerRuntime, docker),
        infoLayer({ mode: "docker", reason, endpoint: docker.endpoint })
      )

    if (config.runtime === "docker") {
      yield* Effect.logInfo(`Runtime: docker at ${docker.endpoint} (KYOZO_RUNTIME=docker)`)
      return dockerLayer("KYOZO_RUNTIME=docker")
    }

    const probe = yield* docker.version.pipe(Effect.timeout(PING_DEADLINE), Effect.either)
    if (probe._tag === "Right") {
      const reason = `docker ${probe.right.version} answered at ${docker.endpoint}`
      yield* Effect.logInfo(`Runtime: docker (${reason})`)
      return dockerLayer(reason)
    }
    const why =
      probe.left._tag === "TimeoutException"
        ? `no answer within ${Duration.format(PING_DEADLINE)}`
        : probe.left.message
    const reason = `no Docker engine at ${docker.endpoint} (${why})`
    yield* Effect.logWarning(
      `Runtime: MOCK — ${reason}. Kyozo runs on the in-memory engine; start dockerd and restart Kyozo to use Docker.`
    )
    return Layer.merge(mock, infoLayer({ mode: "mock", reason, endpoint: MockRuntime.MockEndpoint }))
  })
)

/** The chosen engine behind the circuit breaker; provides the guarded ContainerRuntime, its breaker and RuntimeInfo. */
export const layer = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* KyozoConfig
    return CircuitBreaker.layerRuntime({
      name: "docker",
      failureThreshold: config.breakerThreshold,
      resetAfter: config.breakerResetAfter
    }).pipe(Layer.provideMerge(selected))
  })
)

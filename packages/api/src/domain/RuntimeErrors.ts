/**
 * Typed failures of the container engine. Each one crosses the wire (Schema.TaggedError) and its
 * message says what went wrong and what to do next.
 */
import { Schema } from "effect"

export class DockerUnavailable extends Schema.TaggedError<DockerUnavailable>()("DockerUnavailable", {
  endpoint: Schema.String,
  cause: Schema.String
}) {
  override get message() {
    return `Docker engine at ${this.endpoint} is not reachable (${this.cause}). Start dockerd or set DOCKER_HOST; Kyozo keeps serving from the database meanwhile.`
  }
}

export class DockerTimeout extends Schema.TaggedError<DockerTimeout>()("DockerTimeout", {
  operation: Schema.String,
  timeoutMs: Schema.Number
}) {
  override get message() {
    return `Docker did not answer ${this.operation} within ${this.timeoutMs} ms. The engine may be overloaded or hung; retry later or check dockerd.`
  }
}

export class DockerApiError extends Schema.TaggedError<DockerApiError>()("DockerApiError", {
  operation: Schema.String,
  status: Schema.Number,
  detail: Schema.String
}) {
  override get message() {
    return `Docker answered ${this.status} to ${this.operation}: ${this.detail}`
  }
}

export class ContainerNotFound extends Schema.TaggedError<ContainerNotFound>()("ContainerNotFound", {
  container: Schema.String
}) {
  override get message() {
    return `No container ${this.container} on the engine. It may have been removed outside Kyozo; the next reconcile pass recreates it if it is still wanted.`
  }
}

export class ImageNotFound extends Schema.TaggedError<ImageNotFound>()("ImageNotFound", {
  image: Schema.String
}) {
  override get message() {
    return `Image ${this.image} is not on the engine. Build it, pull it, or point the base-image map (KYOZO_BASE_IMAGES) at an image that exists.`
  }
}

export class NetworkNotFound extends Schema.TaggedError<NetworkNotFound>()("NetworkNotFound", {
  network: Schema.String
}) {
  override get message() {
    return `No network ${this.network} on the engine; it is created on the next deploy of a service that needs it.`
  }
}

export class VolumeNotFound extends Schema.TaggedError<VolumeNotFound>()("VolumeNotFound", {
  volume: Schema.String
}) {
  override get message() {
    return `No volume ${this.volume} on the engine.`
  }
}

export class NameConflict extends Schema.TaggedError<NameConflict>()("NameConflict", {
  kind: Schema.Literal("container", "network", "volume", "image"),
  name: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `A ${this.kind} named ${this.name} already exists (${this.detail}). Remove it or choose another name.`
  }
}

export class BuildFailed extends Schema.TaggedError<BuildFailed>()("BuildFailed", {
  image: Schema.String,
  reason: Schema.String,
  /** The last lines of the build log, newest last. */
  logTail: Schema.Array(Schema.String)
}) {
  override get message() {
    return `Building ${this.image} failed: ${this.reason}. Fix the step shown in the log tail and deploy again.\n${this.logTail.join("\n")}`
  }
}

export class CircuitOpen extends Schema.TaggedError<CircuitOpen>()("CircuitOpen", {
  name: Schema.String,
  /** Epoch milliseconds when the breaker lets a trial call through. */
  retryAt: Schema.Number
}) {
  override get message() {
    return `The ${this.name} circuit is open after repeated failures; calls fail fast until ${new Date(this.retryAt).toISOString()}, then a trial call is let through.`
  }
}

/** A failure the mock runtime was told to inject, or a mock state-machine violation. */
export class MockFault extends Schema.TaggedError<MockFault>()("MockFault", {
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Mock runtime failed ${this.operation}: ${this.reason}. This is the in-memory engine used when Docker is absent or in tests.`
  }
}

/** A request the engine refused because of the container's state (e.g. start of a removed one). */
export class InvalidContainerState extends Schema.TaggedError<InvalidContainerState>()(
  "InvalidContainerState",
  {
    container: Schema.String,
    state: Schema.String,
    operation: Schema.String
  }
) {
  override get message() {
    return `Cannot ${this.operation} container ${this.container} while it is ${this.state}.`
  }
}

/**
 * A generated Dockerfile's base image is neither on the engine nor pullable (a host without a
 * registry), and no local base image stands in for it.
 */
export class BaseImageUnavailable extends Schema.TaggedError<BaseImageUnavailable>()("BaseImageUnavailable", {
  image: Schema.String,
  /** The base-image map key it came from, when known. */
  key: Schema.NullOr(Schema.String),
  reason: Schema.Literal("PullFailed", "NotFound"),
  detail: Schema.String
}) {
  override get message() {
    const key = this.key ?? "<key>"
    return `Base image ${this.image} is not on this Docker engine and cannot be pulled (${this.detail}). On a host without a registry, build the local base images with scripts/base-images.sh, or point the base-image map at an image this engine has (KYOZO_BASE_IMAGES=${key}=<image>).`
  }
}

export const RuntimeError = Schema.Union(
  DockerUnavailable,
  DockerTimeout,
  DockerApiError,
  ContainerNotFound,
  ImageNotFound,
  NetworkNotFound,
  VolumeNotFound,
  NameConflict,
  BuildFailed,
  CircuitOpen,
  MockFault,
  InvalidContainerState,
  BaseImageUnavailable
)
export type RuntimeError = typeof RuntimeError.Type

/** Failures that say the engine itself is sick (they trip the circuit breaker), not the request. */
export const isEngineFailure = (e: RuntimeError): boolean =>
  e._tag === "DockerUnavailable" ||
  e._tag === "DockerTimeout" ||
  e._tag === "MockFault" ||
  (e._tag === "DockerApiError" && e.status >= 500)

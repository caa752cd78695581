/**
 * An in-memory container engine with Docker's state machine, for tests, benchmarks and machines
 * without Docker. Everything runs on `Clock` (deterministic under TestClock) and on plain maps:
 * the manager benchmark drives 1,000 mock services through a simulated hour.
 *
 * The same layer provides `MockRuntimeControl`, the knobs tests use to make the engine misbehave
 * (failures, hangs, slowness, a stopped dockerd, containers dying behind Kyozo's back).
 */
import type { RuntimeError } from "@kyozo/api/domain/RuntimeErrors"
import { type ContainerNotFound, type InvalidContainerState } from "@kyozo/api/domain/RuntimeErrors"
import { Context, type Duration, Effect, Layer } from "effect"

import { ContainerRuntime, type ContainerRuntimeShape, type HealthState } from "./ContainerRuntime.js"
import { mockControl } from "./internal/MockControl.js"
import { makeMockEngine, type MockRuntimeOptions } from "./internal/MockEngine.js"
import { mockOperations } from "./internal/MockOperations.js"

export {
  defaultFailBuildsMatching,
  defaultImages,
  MockEndpoint,
  type MockImageSeed,
  type MockRuntimeOptions
} from "./internal/MockEngine.js"

export interface MockCallStats {
  readonly total: number
  readonly byOperation: Readonly<Record<string, number>>
  /** Calls that failed because of an injected fault (failNext, setDown). */
  readonly injectedFailures: number
}

export interface MockRuntimeControlShape {
  /** The next `n` calls (optionally only of one operation) fail with `error` or a MockFault. */
  readonly failNext: (
    n: number,
    error?: RuntimeError,
    options?: { readonly operation?: string }
  ) => Effect.Effect<void>
  /** While on, calls wait (interruptibly) and complete only once it is turned off. */
  readonly hang: (on: boolean) => Effect.Effect<void>
  /** Each call sleeps this long on the Clock first; null or zero turns it off. */
  readonly slow: (duration: Duration.DurationInput | null) => Effect.Effect<void>
  /** A stopped dockerd: every call fails DockerUnavailable, open log/event streams fail too. */
  readonly setDown: (down: boolean) => Effect.Effect<void>
  /** The container dies behind Kyozo's back (default exit code 137, SIGKILL). */
  readonly killContainer: (
    id: string,
    options?: { readonly exitCode?: number; readonly oomKilled?: boolean }
  ) => Effect.Effect<void, ContainerNotFound>
  /** Overrides the health a running container reports, until its next start. */
  readonly setHealth: (id: string, health: HealthState) => Effect.Effect<void, ContainerNotFound>
  readonly pauseContainer: (id: string) => Effect.Effect<void, ContainerNotFound | InvalidContainerState>
  readonly unpauseContainer: (id: string) => Effect.Effect<void, ContainerNotFound | InvalidContainerState>
  readonly calls: Effect.Effect<MockCallStats>
  readonly resetCalls: Effect.Effect<void>
  /** References pushed so far, in order (there is no registry: pushes are only recorded). */
  readonly pushed: Effect.Effect<ReadonlyArray<string>>
}

export class MockRuntimeControl extends Context.Tag("@kyozo/core/MockRuntimeControl")<
  MockRuntimeControl,
  MockRuntimeControlShape
>() {}

// ---------------------------------------------------------------------------------------------

export interface MockRuntimeHandle {
  readonly runtime: ContainerRuntimeShape
  readonly control: MockRuntimeControlShape
}

/** Builds a fresh engine; `layerWith` is the usual way in. */ export const make = (
  options: MockRuntimeOptions = {}
): Effect.Effect<MockRuntimeHandle> =>
  Effect.map(makeMockEngine(options), (engine) => ({
    runtime: mockOperations(engine),
    control: mockControl(engine)
  }))

/** Provides `ContainerRuntime` (mode "mock") and its `MockRuntimeControl`. */
export const layerWith = (
  options: MockRuntimeOptions = {}
): Layer.Layer<ContainerRuntime | MockRuntimeControl> =>
  Layer.effectContext(
    Effect.map(make(options), ({ control, runtime }) =>
      Context.make(ContainerRuntime, runtime).pipe(Context.add(MockRuntimeControl, control))
    )
  )

export const layer: Layer.Layer<ContainerRuntime | MockRuntimeControl> = layerWith()

export const MockRuntime = { make, layer, layerWith } as const

/**
 * Per-team registry credentials (configuration only; no registry exists here): pulls of a team's
 * image-only services carry its credentials, and with `push: true` built images are pushed.
 */
import * as path from "node:path"

import { describe, expect, it } from "@effect/vitest"
import { BaseImages, resolveBaseImages } from "@kyozo/core/build/dockerfile/BaseImages"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import { Registries, registryOf } from "@kyozo/core/build/Registries"
import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
import * as MockRuntime from "@kyozo/core/engine/MockRuntime"
import { ConfigProvider, Effect, Layer } from "effect"

const config = JSON.stringify([
  { team: "team_a", server: "registry.example.com", username: "alice", password: "s3cret", push: true },
  { server: "ghcr.io", username: "everyone", password: "shared" }
])

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("Registries", () => {
  it("finds the registry of a reference", () => {
    expect(registryOf("node:20-slim")).toBe("docker.io")
    expect(registryOf("library/node")).toBe("docker.io")
    expect(registryOf("ghcr.io/acme/api:1")).toBe("ghcr.io")
    expect(registryOf("localhost:5000/x")).toBe("localhost:5000")
    expect(registryOf("Registry.Example.com/a/b")).toBe("registry.example.com")
  })

  it.effect("gives each team only its own credentials, and a shared entry to all", () =>
    Effect.gen(function* () {
      const registries = yield* Registries
      expect(registries.authFor("team_a", "registry.example.com/acme/db:1")).toEqual({
        username: "alice",
        password: "s3cret",
        serveraddress: "registry.example.com"
      })
      expect(registries.authFor("team_b", "registry.example.com/acme/db:1")).toBeUndefined()
      expect(registries.authFor("team_b", "ghcr.io/acme/x")?.username).toBe("everyone")
      expect(registries.authFor("team_a", "postgres:16")).toBeUndefined()
      expect(registries.pushTarget("team_a")?.ref("kyozo/svc_1:abc")).toBe(
        "registry.example.com/kyozo/svc_1:abc"
      )
      expect(registries.pushTarget("team_b")).toBeUndefined()
    }).pipe(Effect.provide(Registries.Default), withEnv({ KYOZO_REGISTRIES: config }))
  )

  it.effect("bad configuration is a typed error naming the source", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Effect.provide(Registries, Registries.Default))
      expect(error._tag).toBe("RegistriesConfigInvalid")
      expect(error.message).toContain("KYOZO_REGISTRIES")
    }).pipe(withEnv({ KYOZO_REGISTRIES: '[{"server":"x.io"}]' }))
  )

  it.effect("a team with a push registry gets its freshly built image pushed there, tagged by content", () =>
    Effect.gen(function* () {
      const builder = yield* ImageBuilder
      const control = yield* MockRuntime.MockRuntimeControl
      const folder = path.resolve(import.meta.dirname, "fixtures/detect/static-site")
      const plan = yield* detectPlan(folder)
      const planned = plan.services[0]!
      const built = yield* builder.ensureImage({
        serviceId: "svc_reg",
        teamId: "team_a",
        root: folder,
        planned
      })
      expect(built.built).toBe(true)
      expect(yield* control.pushed).toEqual([`registry.example.com/${built.image}`])
      // team B has no push registry: nothing more is pushed
      yield* builder.ensureImage({ serviceId: "svc_reg_b", teamId: "team_b", root: folder, planned })
      expect((yield* control.pushed).length).toBe(1)
    }).pipe(
      Effect.provide(
        ImageBuilder.DefaultWithoutDependencies.pipe(
          Layer.provideMerge(Registries.Default),
          Layer.provideMerge(
            Layer.succeed(
              BaseImages,
              BaseImages.make({
                images: resolveBaseImages({ static: "busybox:latest", node: "node:20-slim" })
              })
            )
          ),
          Layer.provideMerge(MockRuntime.layer)
        )
      ),
      withEnv({ KYOZO_REGISTRIES: config })
    )
  )
})

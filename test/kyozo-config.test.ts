/**
 * KyozoConfig is the one reader of the environment (issue 14): defaults, and a bad value fails
 * naming its variable.
 */
import { it } from "@effect/vitest"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import * as RateLimit from "@kyozo/server/RateLimit"
import { ConfigProvider, Duration, Effect, Exit, Layer } from "effect"
import { describe, expect } from "vitest"

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const read = (env: Record<string, string>) =>
  Effect.provide(KyozoConfig, KyozoConfig.Default).pipe(withEnv(env))

describe("KyozoConfig", () => {
  it.effect("defaults the moved server settings", () =>
    Effect.gen(function* () {
      const config = yield* read({})
      expect(config.sseHeartbeatMs).toBe(15_000)
      expect(config.ssePollMs).toBe(2_000)
      expect(Duration.toMillis(config.sessionTtl)).toBe(Duration.toMillis(Duration.hours(12)))
      expect(config.apiMaxBodyBytes).toBe(1024 * 1024)
      expect(config.rateLimit).toBeUndefined()
      expect(config.build.registries).toBeUndefined()
    })
  )

  it.effect("reads a set value", () =>
    Effect.gen(function* () {
      const config = yield* read({ KYOZO_SSE_POLL_MS: "750", KYOZO_SESSION_TTL: "30 minutes" })
      expect(config.ssePollMs).toBe(750)
      expect(Duration.toMillis(config.sessionTtl)).toBe(30 * 60_000)
    })
  )

  it.effect("a value that is not an integer fails naming the variable", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(read({ KYOZO_SSE_POLL_MS: "often" }))
      expect(String(error)).toContain("KYOZO_SSE_POLL_MS")
    })
  )

  it.effect("a bad KYOZO_RATE_LIMIT fails the rate limiter's start naming the variable", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Effect.scoped(Layer.build(RateLimit.layer)).pipe(withEnv({ KYOZO_RATE_LIMIT: "fast" }))
      )
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("KYOZO_RATE_LIMIT")
    })
  )
})

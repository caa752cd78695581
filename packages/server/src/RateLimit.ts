/**
 * A token bucket per API key, shared by every front door (REST, RPC, uploads, events): the check
 * runs inside the bearer verification (`Auth.makeAuthenticate`), after the key is known.
 *
 * `KYOZO_RATE_LIMIT` is `<requests per second>[/<burst>]` (default `50/100`; `off` disables).
 * Memory stays bounded: a bucket that has refilled completely is the same as no bucket, so a sweep
 * drops those, and beyond `maxBuckets` the least recently used bucket goes first.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { RateLimited } from "@kyozo/api/KyozoRpc"
import { currentKyozoConfig } from "@kyozo/core/KyozoConfig"
import { Clock, ConfigError, Context, type Duration, Effect, Either, Layer, Option, Schedule } from "effect"

export interface RateLimitSettings {
  /** Tokens added per second; 0 disables the limit. */
  readonly ratePerSecond: number
  /** Bucket size: requests allowed at once after a quiet period. */
  readonly burst: number
  readonly maxBuckets?: number
}

export const DEFAULT_SETTINGS: RateLimitSettings = { ratePerSecond: 50, burst: 100, maxBuckets: 10_000 }

/** Parses `50`, `50/100` or `off`. */
export const parseSetting = (text: string): Either.Either<RateLimitSettings, string> => {
  const t = text.trim().toLowerCase()
  if (t === "off" || t === "0") return Either.right({ ratePerSecond: 0, burst: 0 })
  const match = /^(\d+(?:\.\d+)?)(?:\s*\/\s*(\d+))?$/.exec(t)
  if (!match) return Either.left(`expected "<rate>[/<burst>]" or "off", got "${text}"`)
  const ratePerSecond = Number(match[1])
  const burst = match[2] === undefined ? Math.max(1, Math.ceil(ratePerSecond * 2)) : Number(match[2])
  if (ratePerSecond <= 0 || burst < 1) return Either.left(`rate and burst must be positive, got "${text}"`)
  return Either.right({ ratePerSecond, burst })
}

export interface RateLimiterShape {
  /** Takes one token from the key's bucket, or fails with how long until one is available. */
  readonly take: (key: string) => Effect.Effect<void, RateLimited>
  /** Buckets currently held (for tests of the memory bound). */
  readonly size: Effect.Effect<number>
  /** Drops buckets that are full again (idle long enough); run periodically by the layer. */
  readonly sweep: Effect.Effect<void>
}

export class RateLimiter extends Context.Tag("@kyozo/server/RateLimiter")<RateLimiter, RateLimiterShape>() {}

interface Bucket {
  tokens: number
  at: number
}

export const make = (settings: RateLimitSettings): Effect.Effect<RateLimiterShape> =>
  Effect.sync(() => {
    const { ratePerSecond: rate, burst } = settings
    const maxBuckets = settings.maxBuckets ?? DEFAULT_SETTINGS.maxBuckets!
    // Map iteration order is insertion order: re-inserting on use makes the first entry the LRU one.
    const buckets = new Map<string, Bucket>()
    const refill = (b: Bucket, now: number) => {
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate)
      b.at = now
    }
    const take = (key: string): Effect.Effect<void, RateLimited> =>
      rate <= 0
        ? Effect.void
        : Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const bucket = buckets.get(key) ?? { tokens: burst, at: now }
            refill(bucket, now)
            buckets.delete(key)
            buckets.set(key, bucket)
            while (buckets.size > maxBuckets) buckets.delete(buckets.keys().next().value!)
            if (bucket.tokens >= 1) {
              bucket.tokens -= 1
              return Effect.void
            }
            return Effect.fail(
              new RateLimited({ retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / rate)) })
            )
          })
    const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
      for (const [key, bucket] of buckets) {
        refill(bucket, now)
        if (bucket.tokens >= burst) buckets.delete(key)
      }
    })
    return { take, size: Effect.sync(() => buckets.size), sweep }
  })

/** A limiter with the given settings and a sweep every `sweepEvery` (default 60 s). */
export const layerWith = (settings: RateLimitSettings, sweepEvery: Duration.DurationInput = "60 seconds") =>
  Layer.scoped(
    RateLimiter,
    Effect.gen(function* () {
      const limiter = yield* make(settings)
      yield* limiter.sweep.pipe(Effect.repeat(Schedule.spaced(sweepEvery)), Effect.forkScoped)
      return limiter
    })
  )

// Read in KyozoConfig, parsed here: a bad value fails the start naming the variable.
const SettingConfig = Effect.flatMap(currentKyozoConfig, ({ rateLimit }) =>
  rateLimit === undefined
    ? Effect.succeed(Option.none<RateLimitSettings>())
    : Effect.map(
        Either.mapLeft(parseSetting(rateLimit), (message) =>
          ConfigError.InvalidData(["KYOZO_RATE_LIMIT"], message)
        ),
        Option.some
      )
)

/** From `KYOZO_RATE_LIMIT`, defaulting to 50 r/s with a burst of 100. */
export const layer = Layer.unwrapEffect(
  Effect.map(Effect.orDie(SettingConfig), (setting) =>
    layerWith(Option.getOrElse(setting, () => DEFAULT_SETTINGS))
  )
)

/** The REST answer to a rate-limited request: 429 with `Retry-After`, errors in JSON:API shape. */
export const tooManyRequests = (e: RateLimited) =>
  HttpServerResponse.unsafeJson(
    {
      errors: [{ status: "429", code: "RateLimited", title: "Too many requests", detail: e.message }]
    },
    { status: 429, headers: { "retry-after": String(e.retryAfterSeconds) } }
  )

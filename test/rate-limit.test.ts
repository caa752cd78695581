/**
 * The per-key token bucket: unit behaviour on the TestClock (refill, Retry-After, idle eviction,
 * the memory bound), then against a real server with `KYOZO_RATE_LIMIT=2/5`: a burst of 5 passes,
 * the next request is 429 with Retry-After on REST and a typed RateLimited on RPC, another key is
 * unaffected, and the bucket refills.
 */
import { describe, expect, it } from "@effect/vitest"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { RateLimited } from "@kyozo/api/KyozoRpc"
import * as RateLimit from "@kyozo/server/RateLimit"
import { Effect, Either, TestClock } from "effect"
import { afterAll, beforeAll } from "vitest"

import { startTenantServer, type Tenant, type TenantServer } from "./support/tenants.js"

describe("RateLimit (unit)", () => {
  it("parses KYOZO_RATE_LIMIT", () => {
    expect(RateLimit.parseSetting("50/100")).toEqual(Either.right({ ratePerSecond: 50, burst: 100 }))
    expect(RateLimit.parseSetting("10")).toEqual(Either.right({ ratePerSecond: 10, burst: 20 }))
    expect(RateLimit.parseSetting("off")).toEqual(Either.right({ ratePerSecond: 0, burst: 0 }))
    expect(Either.isLeft(RateLimit.parseSetting("fast"))).toBe(true)
    expect(Either.isLeft(RateLimit.parseSetting("5/0"))).toBe(true)
  })

  it.effect("allows the burst, then fails with the seconds until the next token; refills over time", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimit.make({ ratePerSecond: 0.5, burst: 3 })
      for (let i = 0; i < 3; i++) yield* limiter.take("k1")
      const denied = yield* Effect.flip(limiter.take("k1"))
      expect(denied).toBeInstanceOf(RateLimited)
      expect(denied.retryAfterSeconds).toBe(2)
      // Another key has its own bucket.
      yield* limiter.take("k2")
      yield* TestClock.adjust("2 seconds")
      yield* limiter.take("k1")
      expect((yield* Effect.flip(limiter.take("k1"))).retryAfterSeconds).toBe(2)
    })
  )

  it.effect("a sweep drops buckets that refilled completely; maxBuckets evicts the least recently used", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimit.make({ ratePerSecond: 1, burst: 2, maxBuckets: 3 })
      for (const k of ["a", "b", "c", "d"]) yield* limiter.take(k)
      expect(yield* limiter.size).toBe(3)
      yield* TestClock.adjust("500 millis")
      yield* limiter.sweep
      expect(yield* limiter.size).toBe(3)
      yield* TestClock.adjust("1 second")
      yield* limiter.sweep
      expect(yield* limiter.size).toBe(0)
    })
  )

  it.effect("off never limits", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimit.make({ ratePerSecond: 0, burst: 0 })
      for (let i = 0; i < 1000; i++) yield* limiter.take("k")
      expect(yield* limiter.size).toBe(0)
    })
  )
})

describe("rate limit on a real server", () => {
  let ts: TenantServer
  let a: Tenant
  let b: Tenant

  beforeAll(async () => {
    ts = await startTenantServer({ KYOZO_RATE_LIMIT: "2/5" })
    a = await ts.newTenant("rl-a")
    b = await ts.newTenant("rl-b")
  }, 90_000)

  afterAll(async () => {
    await ts?.close()
  })

  const upload = (token: string) =>
    fetch(`${ts.base}/v1/uploads`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: new Uint8Array(512)
    })

  const exhaust = async (token: string) => {
    for (let i = 0; i < 20; i++) if ((await upload(token)).status === 429) return
    throw new Error("never rate limited")
  }

  const whoAmI = (token: string) =>
    Effect.runPromise(
      Effect.flatMap(KyozoClient, (c) => c.WhoAmI()).pipe(
        Effect.either,
        Effect.provide(KyozoClient.layer({ url: ts.base, token }))
      )
    )

  it("a burst passes, then REST answers 429 with Retry-After and RPC fails with RateLimited", async () => {
    const statuses: Array<number> = []
    for (let i = 0; i < 5; i++) statuses.push((await upload(a.token)).status)
    // Zero blocks are an empty tar: 201, each one let through by the limiter.
    expect(statuses).toEqual([201, 201, 201, 201, 201])
    const limited = await upload(a.token)
    expect(limited.status).toBe(429)
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    const body = (await limited.json()) as { errors: Array<Record<string, unknown>> }
    expect(body.errors[0]).toMatchObject({ status: "429", code: "RateLimited" })

    const events = await fetch(`${ts.base}/v1/events`, {
      headers: { authorization: `Bearer ${a.token}` },
      signal: AbortSignal.timeout(3_000)
    })
    expect(events.status).toBe(429)
    await events.body?.cancel()

    // Building the client takes a moment (tokens refill at 2/s): empty the bucket again first.
    await exhaust(a.token)
    const rpc = await whoAmI(a.token)
    expect(Either.isLeft(rpc)).toBe(true)
    const error = Either.getLeft(rpc).pipe((o) => (o._tag === "Some" ? o.value : undefined))
    expect(error).toBeInstanceOf(RateLimited)

    // Team B's key has its own bucket.
    const other = await whoAmI(b.token)
    expect(Either.isRight(other)).toBe(true)
    expect((await upload(b.token)).status).not.toBe(429)
  })

  it("the service list's answers from memory (the hot route) take from the same bucket", async () => {
    const c = await ts.newTenant("rl-c")
    const list = () =>
      fetch(`${ts.base}/v1/services?page[size]=10`, { headers: { authorization: `Bearer ${c.token}` } })
    const statuses: Array<number> = []
    for (let i = 0; i < 5; i++) {
      const res = await list()
      await res.arrayBuffer()
      statuses.push(res.status)
    }
    // The first is verified through the HTTP stack, the next ones come from memory: all counted.
    expect(statuses).toEqual([200, 200, 200, 200, 200])
    const limited = await list()
    expect(limited.status).toBe(429)
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    expect(((await limited.json()) as { errors: Array<{ status: string }> }).errors[0]?.status).toBe("429")
    expect((await upload(c.token)).status).toBe(429)
  })

  it("the bucket refills at the configured rate", async () => {
    await new Promise((r) => setTimeout(r, 1_100))
    const again = await whoAmI(a.token)
    expect(Either.isRight(again)).toBe(true)
  })
})

/**
 * Webhooks: signed deliveries from the event outbox to local HTTP servers on 127.0.0.1, per-webhook
 * isolation and backoff, and resume after a dispatcher restart. Real time (short settings).
 */
import { createHmac } from "node:crypto"
import * as http from "node:http"
import type * as net from "node:net"

import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import type { TeamId } from "@kyozo/api/domain/Ids"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { WebhookRepo } from "@kyozo/core/store/WebhookRepo"
import { Headers, matchesFilter, verify } from "@kyozo/core/Webhook"
import { retryDelay, WebhookDispatcher, WebhookSettings } from "@kyozo/workers/notify/WebhookDispatcher"
import { Duration, Effect, Exit, Layer, Scope } from "effect"

import { pgliteLayer } from "./support/database.js"

const TEAM = "team_hooks" as TeamId
const SECRET = "0123456789abcdef0123456789abcdef"

interface Received {
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  readonly at: number
}

/** A receiver on 127.0.0.1: "ok" answers 204, "fail" 500, "hang" never answers. */
const receiver = Effect.gen(function* () {
  const received: Array<Received> = []
  const state = { mode: "ok" as "ok" | "fail" | "hang", attempts: 0 }
  const server = http.createServer((req, res) => {
    let body = ""
    req.on("data", (c) => (body += c))
    req.on("end", () => {
      state.attempts++
      if (state.mode === "hang") return
      if (state.mode === "fail") {
        res.statusCode = 500
        res.end()
        return
      }
      received.push({ headers: req.headers, body, at: Date.now() })
      res.statusCode = 204
      res.end()
    })
  })
  const port = yield* Effect.acquireRelease(
    Effect.async<number>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as net.AddressInfo).port)))
    }),
    () =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )
  return { url: `http://127.0.0.1:${port}/hook`, received, state }
})

const settings = Layer.succeed(WebhookSettings, {
  ...WebhookSettings.defaultValue(),
  allowPrivate: true,
  pollInterval: Duration.millis(50),
  // Generous: the receivers share the event loop with PGlite, which blocks it during queries.
  timeout: Duration.seconds(1),
  backoffBase: Duration.millis(200),
  backoffMax: Duration.seconds(1)
})

const reset = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`TRUNCATE webhook_deliveries, webhooks, container_deployment_events, teams CASCADE`
  yield* sql`INSERT INTO teams (id, name) VALUES (${TEAM}, 'hooks')`
})

const append = (type: string, n = 1) =>
  Effect.gen(function* () {
    const events = yield* DeploymentEventRepo
    const ids: Array<number> = []
    for (let i = 0; i < n; i++)
      ids.push(yield* events.append({ teamId: TEAM, type, message: `${type} ${i}` }))
    return ids
  })

const waitUntil = (check: () => boolean, within = Duration.seconds(10)) =>
  Effect.gen(function* () {
    const deadline = Date.now() + Duration.toMillis(within)
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.dieMessage("condition not met in time")
      yield* Effect.sleep("20 millis")
    }
  })

/** Runs the dispatcher in a scope of its own, so a test can stop and start it. */
const startDispatcher = Effect.gen(function* () {
  const scope = yield* Scope.make()
  yield* Layer.buildWithScope(WebhookDispatcher.layer, scope)
  return scope
})

const Repos = Layer.mergeAll(WebhookRepo.Default, DeploymentEventRepo.Default)

describe("webhook signing (pure)", () => {
  it("filter patterns", () => {
    expect(matchesFilter([], "service.failed")).toBe(true)
    expect(matchesFilter(["service.*"], "service.failed")).toBe(true)
    expect(matchesFilter(["service.*"], "alert.fired")).toBe(false)
    expect(matchesFilter(["alert.fired"], "alert.fired")).toBe(true)
  })
  it("retry delays double and are capped", () => {
    const s = {
      ...WebhookSettings.defaultValue(),
      allowPrivate: true,
      backoffBase: Duration.seconds(5),
      backoffMax: Duration.seconds(60)
    }
    expect([1, 2, 3, 4, 5, 6].map((a) => Duration.toSeconds(retryDelay(a, s)))).toEqual([
      5, 10, 20, 40, 60, 60
    ])
  })
})

describe("webhooks", () => {
  layer(pgliteLayer.pipe(Layer.orDie), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.effect("deliveries are signed: HMAC-SHA256 over timestamp and body, filtered by event type", () =>
      Effect.gen(function* () {
        yield* reset
        const repo = yield* WebhookRepo
        const target = yield* receiver
        const hook = yield* repo.create({
          teamId: TEAM,
          url: target.url,
          secret: SECRET,
          eventTypes: ["service.*"]
        })
        const scope = yield* startDispatcher
        const [id] = yield* append("service.restarted")
        yield* append("health.changed") // filtered out
        const [last] = yield* append("service.failed")
        yield* waitUntil(() => target.received.length >= 2)
        yield* Scope.close(scope, Exit.void)
        const first = target.received[0]!
        const timestamp = Number(first.headers[Headers.timestamp])
        const expected = `v1=${createHmac("sha256", SECRET).update(`${timestamp}.${first.body}`).digest("hex")}`
        expect(first.headers[Headers.signature]).toBe(expected)
        expect(first.headers[Headers.delivery]).toBe(`${hook.id}.${id}`)
        expect(first.headers[Headers.event]).toBe("service.restarted")
        expect(Math.abs(timestamp - Date.now() / 1000)).toBeLessThan(30)
        expect(JSON.parse(first.body)).toMatchObject({ id, type: "service.restarted", teamId: TEAM })
        const ok = verify({
          secret: SECRET,
          timestamp,
          body: first.body,
          signature: expected,
          nowSeconds: Date.now() / 1000
        })
        expect(ok).toBe(true)
        expect(
          verify({
            secret: "wrong-secret-wrong-secret",
            timestamp,
            body: first.body,
            signature: expected,
            nowSeconds: timestamp
          })
        ).toBe(false)
        expect(target.received.map((r) => JSON.parse(r.body).type)).toEqual([
          "service.restarted",
          "service.failed"
        ])
        // The cursor passed the filtered event too, and the log shows both deliveries.
        const [after] = yield* repo.listByTeam(TEAM)
        expect(after!.cursorEventId).toBe(last)
        const log = yield* repo.listDeliveries(TEAM, hook.id)
        expect(log.map((d) => d.outcome)).toEqual(["delivered", "delivered"])
      }).pipe(Effect.provide(Repos), Effect.provide(settings), Effect.scoped)
    )

    it.effect(
      "a failing endpoint is retried with backoff while a healthy one gets its deliveries promptly",
      () =>
        Effect.gen(function* () {
          yield* reset
          const repo = yield* WebhookRepo
          const good = yield* receiver
          const bad = yield* receiver
          bad.state.mode = "hang"
          yield* repo.create({ teamId: TEAM, url: good.url, secret: SECRET })
          const badHook = yield* repo.create({ teamId: TEAM, url: bad.url, secret: SECRET })
          const scope = yield* startDispatcher
          const started = Date.now()
          const ids = yield* append("service.restarted", 5)
          yield* waitUntil(() => good.received.length === 5)
          // The hanging endpoint (1 s timeout each) does not hold the healthy one back.
          expect(Date.now() - started).toBeLessThan(1500)
          // Let the bad endpoint fail a few times, then heal it.
          yield* Effect.sleep("2700 millis")
          bad.state.mode = "ok"
          yield* waitUntil(() => bad.received.length === 5)
          yield* Scope.close(scope, Exit.void)
          expect(bad.received.map((r) => JSON.parse(r.body).id)).toEqual(ids)
          const log = [...(yield* repo.listDeliveries(TEAM, badHook.id, 100))].reverse()
          const failed = log.filter((d) => d.outcome === "failed")
          expect(failed.length).toBeGreaterThanOrEqual(2)
          // All failures are of the first event, with attempt numbers counting up…
          expect(failed.map((d) => d.eventId)).toEqual(failed.map(() => ids[0]))
          expect(failed.map((d) => d.attempt)).toEqual(failed.map((_, i) => i + 1))
          expect(failed[0]!.error).toMatch(/no answer/)
          // …and gaps between attempts that grow (200 ms, 400 ms, … plus the 1 s timeout).
          const gaps = failed
            .slice(1)
            .map((d, i) => d.attemptedAt.getTime() - failed[i]!.attemptedAt.getTime())
          expect(gaps[0]!).toBeGreaterThanOrEqual(200)
          if (gaps.length > 1) expect(gaps[1]!).toBeGreaterThanOrEqual(400)
          expect(log.filter((d) => d.outcome === "delivered").map((d) => d.eventId)).toEqual(ids)
        }).pipe(Effect.provide(Repos), Effect.provide(settings), Effect.scoped)
    )

    it.effect("a dispatcher restart resumes from the outbox cursor without loss or duplicates", () =>
      Effect.gen(function* () {
        yield* reset
        const repo = yield* WebhookRepo
        const target = yield* receiver
        yield* append("before.hook") // older than the webhook: never delivered
        yield* repo.create({ teamId: TEAM, url: target.url, secret: SECRET })
        const first = yield* startDispatcher
        const a = yield* append("service.restarted", 3)
        yield* waitUntil(() => target.received.length === 3)
        yield* Scope.close(first, Exit.void)
        // Events written while no dispatcher runs stay in the outbox.
        const b = yield* append("service.failed", 3)
        yield* Effect.sleep("200 millis")
        expect(target.received).toHaveLength(3)
        const second = yield* startDispatcher
        yield* waitUntil(() => target.received.length >= 6)
        yield* Effect.sleep("300 millis") // room for a duplicate to show up
        yield* Scope.close(second, Exit.void)
        expect(target.received.map((r) => JSON.parse(r.body).id)).toEqual([...a, ...b])
      }).pipe(Effect.provide(Repos), Effect.provide(settings), Effect.scoped)
    )
  })
})

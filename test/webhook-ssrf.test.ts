/**
 * Webhook targets (SSRF): a tenant's URL never reaches the server's own network. Refused when
 * stored (the URL as written, however its host is spelled) and again at delivery, on the address
 * the name resolves to then. `KYOZO_WEBHOOK_ALLOW_PRIVATE=1` (allowPrivate) lets loopback through.
 */
import * as http from "node:http"
import type * as net from "node:net"

import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import type { TeamId } from "@kyozo/api/domain/Ids"
import { parseTargetUrl, TargetRefused } from "@kyozo/api/domain/TargetUrl"
import { checkTarget } from "@kyozo/core/OutboundTarget"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { WebhookRepo } from "@kyozo/core/store/WebhookRepo"
import { WebhookDispatcher, WebhookSettings } from "@kyozo/workers/notify/WebhookDispatcher"
import { Duration, Effect, Layer } from "effect"

import { pgliteLayer } from "./support/database.js"
import { INTERNAL_TARGETS } from "./support/targets.js"

describe("the webhook target rule", () => {
  it("refuses loopback, private, link-local, unique-local and metadata hosts in every spelling", () => {
    for (const url of INTERNAL_TARGETS) {
      const r = checkTarget(url, false)
      expect(r instanceof TargetRefused ? r.reason : `accepted ${r}`, url).toBe("private-address")
    }
  })

  it("refuses credentials, other schemes and malformed URLs, whatever the switch", () => {
    for (const [url, reason] of [
      ["http://user:pass@hooks.example.com/", "credentials"],
      ["https://token@hooks.example.com/", "credentials"],
      ["file:///etc/passwd", "scheme"],
      ["gopher://hooks.example.com/", "scheme"],
      ["http:/hooks.example.com", "malformed"],
      ["http://", "malformed"],
      ["not a url", "malformed"],
      ["http://hooks.example.com/\0", "malformed"]
    ] as const) {
      for (const allow of [false, true]) {
        const r = checkTarget(url, allow)
        expect(r instanceof TargetRefused ? r.reason : "accepted", url).toBe(reason)
      }
    }
  })

  it("accepts public hosts and normalizes what is stored", () => {
    expect(String(checkTarget("HTTPS://Hooks.Example.COM/a?b=1", false))).toBe(
      "https://hooks.example.com/a?b=1"
    )
    expect(String(checkTarget("http://93.184.216.34:8080/x", false))).toBe("http://93.184.216.34:8080/x")
    expect(parseTargetUrl("HTTP://127.0.0.1/")).toBeInstanceOf(URL)
  })

  it("the admin switch lets loopback and private through, never metadata", () => {
    expect(checkTarget("http://127.0.0.1:9/hook", true)).toBeInstanceOf(URL)
    expect(checkTarget("http://localhost:9/hook", true)).toBeInstanceOf(URL)
    expect(checkTarget("http://10.1.2.3/", true)).toBeInstanceOf(URL)
    for (const url of [
      "http://169.254.169.254/",
      "http://metadata.google.internal/",
      "http://[::ffff:169.254.169.254]/"
    ])
      expect(checkTarget(url, true), url).toBeInstanceOf(TargetRefused)
  })
})

const TEAM = "team_ssrf" as TeamId

describe("delivery checks the resolved address", () => {
  layer(pgliteLayer.pipe(Layer.orDie), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("a name that resolves to loopback is not called unless private targets are allowed", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`TRUNCATE webhook_deliveries, webhooks, container_deployment_events, teams CASCADE`
        yield* sql`INSERT INTO teams (id, name) VALUES (${TEAM}, 'ssrf')`
        let hits = 0
        const server = http.createServer((_req, res) => {
          hits++
          res.statusCode = 204
          res.end()
        })
        const port = yield* Effect.acquireRelease(
          Effect.async<number>((resume) => {
            server.listen(0, "127.0.0.1", () =>
              resume(Effect.succeed((server.address() as net.AddressInfo).port))
            )
          }),
          () => Effect.sync(() => server.close())
        )
        const repo = yield* WebhookRepo
        // Stored directly, as if DNS had pointed the name elsewhere when it was created.
        const hook = yield* repo.create({
          teamId: TEAM,
          url: `http://localhost:${port}/hook`,
          afterEventId: 0
        })
        yield* (yield* DeploymentEventRepo).append({ teamId: TEAM, type: "service.failed", message: "x" })
        const dispatcher = yield* WebhookDispatcher
        const base = { ...WebhookSettings.defaultValue(), timeout: Duration.seconds(2) }
        const refused = yield* dispatcher
          .drain((yield* repo.findById(TEAM, hook.id)).pipe((o) => (o._tag === "Some" ? o.value : hook)))
          .pipe(Effect.provideService(WebhookSettings, { ...base, allowPrivate: false }))
        expect(refused).toBe(0)
        expect(hits).toBe(0)
        const log = yield* repo.listDeliveries(TEAM, hook.id, 10)
        expect(log[0]?.error).toMatch(/refused/)
        const fresh = yield* repo.findById(TEAM, hook.id)
        const delivered = yield* dispatcher
          .drain(fresh._tag === "Some" ? fresh.value : hook)
          .pipe(Effect.provideService(WebhookSettings, { ...base, allowPrivate: true }))
        expect(delivered).toBe(1)
        expect(hits).toBe(1)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Layer.mergeAll(WebhookDispatcher.Default, WebhookRepo.Default, DeploymentEventRepo.Default)
        )
      )
    )
  })
})

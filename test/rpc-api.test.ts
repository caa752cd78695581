/**
 * The typed RPC API against a real server process (mock runtime, fresh data dir): first-start
 * credentials, a typed client round trip, and every way a token can be wrong.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { describe, expect, it } from "@effect/vitest"
import * as Credentials from "@kyozo/api/Credentials"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Effect, Either, Option } from "effect"
import { afterAll, beforeAll } from "vitest"

import { type ServerProcess, startServer, waitFor } from "./support/server.js"

let server: ServerProcess
let dataDir: string
let creds: Credentials.Credentials

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-rpc-"))
  server = await startServer({ KYOZO_RUNTIME: "mock", KYOZO_DATA_DIR: dataDir })
  await waitFor("server /healthz", 60_000, async () => {
    const r = await server.get("/healthz")
    return r.status === 200 ? true : undefined
  }).catch((e) => {
    throw new Error(`${e}\n${server.log()}`)
  })
  creds = await Effect.runPromise(Credentials.read(dataDir)).then(Option.getOrThrow)
})

afterAll(async () => {
  await server?.stop()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

const withClient = <A, E>(token: string, f: (client: KyozoClient["Type"]) => Effect.Effect<A, E>) =>
  Effect.flatMap(KyozoClient, f).pipe(
    Effect.provide(KyozoClient.layer({ url: `http://127.0.0.1:${server.port}`, token }))
  )

const upload = (token: string | undefined) =>
  fetch(`http://127.0.0.1:${server.port}/v1/uploads`, {
    method: "POST",
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    body: new Uint8Array(1024)
  })

describe("first start", () => {
  it("writes credentials.json with mode 0600 and logs the key once", () => {
    const file = Credentials.credentialsPath(dataDir)
    expect(fs.statSync(file).mode & 0o777).toBe(0o600)
    expect(creds.token).toMatch(/^kz_[0-9a-z]{8}_[0-9a-z]{32}$/)
    expect(creds.url).toBe(`http://127.0.0.1:${server.port}`)
    expect(creds.teamId).toMatch(/^team_/)
    expect(server.log().split(creds.token).length - 1).toBe(1)
  })
})

describe("typed client", () => {
  it.effect("WhoAmI names the bootstrap owner of team default", () =>
    Effect.gen(function* () {
      const me = yield* withClient(creds.token, (c) => c.WhoAmI())
      expect(me.teamId).toBe(creds.teamId)
      expect(me.role).toBe("owner")
      expect(me.teamName).toBe("default")
      expect(me.email).toBe("admin@kyozo.local")
    })
  )

  it.effect("ListServices answers an empty team with an empty array", () =>
    Effect.gen(function* () {
      const services = yield* withClient(creds.token, (c) => c.ListServices())
      expect(services).toEqual([])
    })
  )

  it.effect("RuntimeStatus reports the mock runtime and a closed breaker", () =>
    Effect.gen(function* () {
      const status = yield* withClient(creds.token, (c) => c.RuntimeStatus())
      expect(status.mode).toBe("mock")
      expect(status.breaker.state).toBe("closed")
      expect(status.schedules.map((s) => s.pass).sort()).toEqual(["cleanup", "health", "metrics"])
    })
  )

  it.effect("an unknown service is a typed ServiceNotFound", () =>
    Effect.gen(function* () {
      const result = yield* withClient(creds.token, (c) => c.GetService({ service: "nope" })).pipe(
        Effect.either
      )
      expect(Either.isLeft(result) && result.left._tag).toBe("ServiceNotFound")
    })
  )
})

describe("authentication", () => {
  const whoAmI = (token: string) =>
    withClient(token, (c) => c.WhoAmI()).pipe(
      Effect.either,
      Effect.map((e) => (Either.isLeft(e) ? e.left._tag : "ok"))
    )

  it.effect("missing, empty and malformed tokens are Unauthorized", () =>
    Effect.gen(function* () {
      expect(yield* whoAmI("")).toBe("Unauthorized")
      expect(yield* whoAmI("not-a-key")).toBe("Unauthorized")
      // Well-formed, but no such key.
      expect(yield* whoAmI(`kz_aaaaaaaa_${"b".repeat(32)}`)).toBe("Unauthorized")
      // Right prefix, wrong secret.
      expect(yield* whoAmI(`${creds.token.slice(0, 12)}${"0".repeat(32)}`)).toBe("Unauthorized")
    })
  )

  it.effect("a revoked key stops working; an expired one too", () =>
    Effect.gen(function* () {
      const issued = yield* withClient(creds.token, (c) => c.IssueApiKey({ name: "ci" }))
      expect(yield* whoAmI(issued.key)).toBe("ok")
      yield* withClient(creds.token, (c) => c.RevokeApiKey({ keyId: issued.keyId }))
      expect(yield* whoAmI(issued.key)).toBe("Unauthorized")

      const shortLived = yield* withClient(creds.token, (c) => c.IssueApiKey({ expiresInSeconds: 1 }))
      expect(yield* whoAmI(shortLived.key)).toBe("ok")
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 1200)))
      expect(yield* whoAmI(shortLived.key)).toBe("Unauthorized")
      const revoked = yield* Effect.promise(() => upload(issued.key))
      expect(revoked.status).toBe(401)
    })
  )

  it("uploads without a valid bearer token get a JSON:API 401", async () => {
    for (const token of [undefined, "", "kz_nope"]) {
      const res = await upload(token)
      expect(res.status).toBe(401)
      const body = (await res.json()) as { errors: Array<{ status: string; code: string }> }
      expect(body.errors[0]).toMatchObject({ status: "401", code: "Unauthorized" })
    }
    // Nothing was written for rejected callers.
    expect(fs.existsSync(path.join(dataDir, "uploads"))).toBe(false)
  })
})

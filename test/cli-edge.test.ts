/**
 * `kyozo edge status|stop` as a user runs them, against a real Caddy left running by an edge layer
 * (as a Kyozo that was SIGKILLed leaves it): status reads the routes from Caddy itself, stop ends it.
 */
import { execFile } from "node:child_process"

import * as CaddyAdmin from "@kyozo/core/edge/CaddyAdmin"
import * as CaddyEdge from "@kyozo/core/edge/CaddyEdge"
import { EdgeRouter } from "@kyozo/core/edge/EdgeRouter"
import { Effect, Option } from "effect"
import { afterAll, describe, expect, it } from "vitest"

import { caddySuite, edgeDataDir } from "./support/edge.js"
import { repoRoot } from "./support/server.js"

const caddy = caddySuite("cli-edge")
const dataDir = edgeDataDir()
const admin = CaddyAdmin.defaultAdmin(dataDir)

afterAll(() => Effect.runPromise(CaddyAdmin.stop(admin, dataDir)))

const kyozo = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      "pnpm",
      ["--silent", "kyozo", ...args],
      { cwd: repoRoot, env: { ...process.env, KYOZO_DATA_DIR: dataDir }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr })
    )
  })

describe.skipIf(!caddy.available)("kyozo edge", () => {
  it("status lists the routes Caddy serves; stop stops it", async () => {
    // A Kyozo-made route, then that Kyozo goes away (the layer does not stop Caddy).
    const hostPort = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const edge = yield* EdgeRouter
          const { hostPort } = yield* edge.ensure("svc_cli", { label: "web" })
          yield* edge.setUpstreams("svc_cli", [{ host: "127.0.0.1", port: 9 }])
          return hostPort
        }).pipe(
          Effect.provide(
            CaddyEdge.layer({ dataDir, admin, bin: caddy.bin, sharedPort: null, domain: "localhost" })
          )
        )
      )
    )
    const status = await kyozo(["edge", "status", "--json"])
    expect(status.stderr).toBe("")
    expect(JSON.parse(status.stdout)).toMatchObject({
      running: true,
      routes: [
        { serviceId: "svc_cli", url: `http://127.0.0.1:${hostPort}`, upstreams: [{ address: "127.0.0.1:9" }] }
      ]
    })
    const human = await kyozo(["edge", "status"])
    expect(human.stdout).toContain(`http://127.0.0.1:${hostPort}`)

    const stopped = await kyozo(["edge", "stop", "--json"])
    expect(JSON.parse(stopped.stdout)).toMatchObject({ stopped: true })
    expect(Option.isNone(await Effect.runPromise(CaddyAdmin.currentConfig(admin)))).toBe(true)
    const after = await kyozo(["edge", "status", "--json"])
    expect(JSON.parse(after.stdout)).toMatchObject({ running: false })
  }, 120_000)
})

import { spawnSync } from "node:child_process"
import * as path from "node:path"

import { describe, expect, it } from "@effect/vitest"

import { kyozoBin } from "./support/cli.js"

const ROOT = path.resolve(__dirname, "..")
const FIX = "test/fixtures/detect"

const kyozo = (...args: ReadonlyArray<string>) => {
  // The built bin, as a user runs it (the bundle is built by `pnpm install`).
  const r = spawnSync(kyozoBin, args, {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe("kyozo detect", () => {
  it("--json prints one JSON object honouring the contract", () => {
    const r = kyozo("detect", `${FIX}/compose-stack`, "--json")
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as { services: Array<Record<string, unknown>>; reason?: string }
    expect(out.reason).toBeUndefined()
    expect(out.services.map((s) => s.name)).toEqual(["web", "worker", "db", "cache", "proxy"])
    for (const s of out.services) {
      expect(Object.keys(s).sort()).toEqual(
        [
          "confidence",
          "dependsOn",
          "evidence",
          "framework",
          "image",
          "kind",
          "name",
          "path",
          "port",
          "requires",
          "startCommand"
        ].sort()
      )
    }
    expect(out.services[0]).toMatchObject({ name: "web", path: "web", kind: "dockerfile", port: 3000 })
  })

  it("a folder with nothing deployable: empty services with a reason, exit 0", () => {
    const r = kyozo("detect", `${FIX}/nothing`, "--json")
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as { services: Array<unknown>; reason: string }
    expect(out.services).toEqual([])
    expect(out.reason).toMatch(/nothing deployable/)
  })

  it("a missing folder exits 1 with a message; bad usage exits 2", () => {
    const missing = kyozo("detect", `${FIX}/does-not-exist`, "--json")
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/folder not found: .*does-not-exist/)
    expect(missing.stdout).toBe("")
    expect(kyozo("detect", "a", "b").code).toBe(2)
  })

  it("--dockerfile shows what would be built, from the configured base images", () => {
    const r = spawnSync("pnpm", ["--silent", "kyozo", "detect", `${FIX}/node-http`, "--dockerfile"], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, KYOZO_BASE_IMAGES: "node=kyozo-local/node:20" }
    })
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/plain-http/)
    expect(r.stdout).toMatch(/^FROM kyozo-local\/node:20 AS runtime$/m)
    expect(r.stdout).toMatch(/^CMD \["node","server.js"\]$/m)
  })
})

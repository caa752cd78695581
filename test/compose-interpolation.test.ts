import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { describe, expect, it } from "@effect/vitest"
import { parseCompose, parseDotEnv } from "@kyozo/core/build/topology/Compose"
import { detect } from "@kyozo/core/build/topology/TopologyDetector"
import { Effect } from "effect"

/** A tenant's compose file must never read the server's environment. */
describe("compose interpolation reads the folder only", () => {
  const folder = (files: Record<string, string>): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-compose-"))
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text)
    return dir
  }

  it.effect("a server variable stays out of detection results; unset means empty plus a warning", () =>
    Effect.gen(function* () {
      process.env.KYOZO_PROBE_SECRET = "postgres://admin:hunter2@db/prod"
      try {
        const dir = folder({
          "compose.yaml":
            'services:\n  web:\n    image: "busybox:${KYOZO_PROBE_SECRET}"\n    environment:\n      URL: $KYOZO_PROBE_SECRET\n'
        })
        const r = yield* detect(dir)
        const text = JSON.stringify(r)
        expect(text).not.toContain("hunter2")
        const web = r.services.find((s) => s.name === "web")!
        expect(web.image).toBe("busybox:")
        expect(
          web.evidence.some((e) => /warning: variable KYOZO_PROBE_SECRET is not set/.test(e.detail))
        ).toBe(true)
      } finally {
        delete process.env.KYOZO_PROBE_SECRET
      }
    })
  )

  it.effect("the folder's .env and the file's defaults fill variables", () =>
    Effect.gen(function* () {
      process.env.TAG = "from-the-server"
      try {
        const dir = folder({
          ".env": "# comment\nTAG=1.36\nexport PORT='8081'\n",
          "compose.yaml":
            'services:\n  web:\n    image: "busybox:${TAG}"\n    ports: ["${PORT:-80}"]\n  db:\n    image: "postgres:${PG:-16}"\n'
        })
        const r = yield* detect(dir)
        expect(r.services.find((s) => s.name === "web")).toMatchObject({ image: "busybox:1.36", port: 8081 })
        const db = r.services.find((s) => s.name === "db")!
        expect(db.image).toBe("postgres:16")
        expect(db.evidence.some((e) => /warning/.test(e.detail))).toBe(false)
      } finally {
        delete process.env.TAG
      }
    })
  )

  it("compose forms: $$, ${X-d} vs ${X:-d}, ${X:+r}, quoted .env values", () => {
    const env = parseDotEnv('A=\nB="x y" # c\nC=plain # comment\n')
    expect(env).toEqual({ A: "", B: "x y", C: "plain" })
    const c = parseCompose(
      "services:\n  s:\n    image: i\n    environment:\n      P: $$HOME\n      Q: ${A-d}\n      R: ${A:-d}\n      S: ${B:+yes}\n      T: ${HOME}\n",
      env
    )
    expect(c.services[0]!.environment).toEqual({ P: "$HOME", Q: "", R: "d", S: "yes", T: "" })
    expect(c.unset).toEqual(["HOME"])
  })
})

/**
 * The README's quick start names exactly the pnpm that package.json pins: a looser `pnpm@10`
 * installs the newest 10.x, which refuses to switch to the pinned version on a fresh machine.
 * (CI runs the README's line itself, in a fresh clone: scripts/quickstart.sh fresh.)
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

import { describe, expect, it } from "vitest"

import { repoRoot } from "./support/server.js"

describe("quick start", () => {
  it("the README installs the pnpm version package.json pins, and scripts/quickstart.sh agrees", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as {
      packageManager: string
    }
    expect(pkg.packageManager).toMatch(/^pnpm@\d+\.\d+\.\d+$/)
    const line = execFileSync("bash", ["scripts/quickstart.sh", "line", "1"], {
      cwd: repoRoot,
      encoding: "utf8"
    })
    expect(line.trim()).toBe(`npm install -g ${pkg.packageManager} && pnpm install && pnpm start`)
    expect(
      execFileSync("bash", ["scripts/quickstart.sh", "check"], { cwd: repoRoot, encoding: "utf8" })
    ).toContain(pkg.packageManager)
    expect(
      execFileSync("bash", ["scripts/quickstart.sh", "line", "2"], { cwd: repoRoot, encoding: "utf8" }).trim()
    ).toBe("pnpm test")
  })
})

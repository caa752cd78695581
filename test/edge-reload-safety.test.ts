/**
 * ReloadSafety: the kernel setting that keeps Caddy's reloads from resetting queued connections is
 * read, turned on when off and writable, and reported when it cannot be (see edge/ReloadSafety.ts;
 * the real reloads under polling are in edge-router.test.ts).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import * as ReloadSafety from "@kyozo/core/edge/ReloadSafety"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"

const tempFile = (content: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-reload-"))
  const file = path.join(dir, "tcp_migrate_req")
  fs.writeFileSync(file, content)
  return file
}

describe("ReloadSafety", () => {
  it("turns the setting on when it is off and writable, and says so", () => {
    const file = tempFile("0\n")
    const result = Effect.runSync(ReloadSafety.ensure(file))
    expect(result).toEqual({ _tag: "Safe", changed: true })
    expect(fs.readFileSync(file, "utf8").trim()).toBe("1")
    expect(ReloadSafety.describe(result)?.level).toBe("info")
  })

  it("leaves it alone when it is on already", () => {
    const file = tempFile("1\n")
    const result = Effect.runSync(ReloadSafety.ensure(file))
    expect(result).toEqual({ _tag: "Safe", changed: false })
    expect(ReloadSafety.describe(result)).toBeNull()
  })

  it("a kernel without the setting is not an error", () => {
    const result = Effect.runSync(ReloadSafety.ensure(path.join(os.tmpdir(), "kyozo-no-such-setting")))
    expect(result._tag).toBe("Unsupported")
    expect(ReloadSafety.describe(result)).toBeNull()
  })

  it("one it cannot write is a warning that says what to run", () => {
    // A file nobody may write, not even root: /proc/version.
    const result = Effect.runSync(ReloadSafety.ensure("/proc/version"))
    expect(result._tag).toBe("Unsafe")
    const said = ReloadSafety.describe(result)
    expect(said?.level).toBe("warning")
    expect(said?.text).toContain("sysctl -w net.ipv4.tcp_migrate_req=1")
  })
})

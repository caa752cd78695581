/** `pnpm repl`: the application's layers built once, helpers bound, usable from a piped session. */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot, stopEdge } from "./support/server.js"

describe("REPL", () => {
  it("answers run(ContainerManager.circuitBreakerStatus) and lists containers, then exits cleanly", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-repl-"))
    const env: Record<string, string> = { ...(process.env as Record<string, string>) }
    delete env.DATABASE_URL
    Object.assign(env, { KYOZO_DATA_DIR: dataDir, KYOZO_RUNTIME: "mock", KYOZO_EDGE_PORT: "0" })
    const child = spawn(process.execPath, ["--import", "tsx", "packages/server/src/repl.ts"], {
      cwd: repoRoot,
      env
    })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (out += d))
    child.stdin.write(
      [
        'await run(ContainerManager.circuitBreakerStatus).then((s) => console.log("BREAKER=" + s.state))',
        'await run(ContainerManager.listContainers).then((c) => console.log("CONTAINERS=" + c.length))',
        'console.log("MODE=" + manager.runtimeMode)',
        ".exit",
        ""
      ].join("\n")
    )
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve))
    // The REPL's edge (Caddy) outlives it by design: stop it.
    await stopEdge(dataDir)
    fs.rmSync(dataDir, { recursive: true, force: true })
    expect(out).toContain("Kyozo REPL")
    expect(out).toContain("BREAKER=closed")
    expect(out).toContain("CONTAINERS=0")
    expect(out).toContain("MODE=mock")
    expect(code).toBe(0)
  }, 240_000)
})

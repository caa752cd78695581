/** `pnpm repl`: the application's layers and services built once, helpers bound, usable from a piped session. */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { describe, expect, it } from "vitest"

import { repoRoot, stopEdge, waitFor } from "./support/server.js"

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
        // The application services, as the bootstrap owner (the same rules as every front door).
        'await runAs(ownerToken, Effect.flatMap(Teams, (t) => t.whoAmI)).then((w) => console.log("ROLE=" + w.role))',
        'await runAs(ownerToken, Effect.flatMap(Services, (s) => s.views)).then((v) => console.log("SERVICES=" + v.length))',
        'await runAs("kz_not_a_key", Effect.flatMap(Teams, (t) => t.whoAmI)).catch((e) => console.log("BADKEY=" + String(e).includes("Unauthorized")))',
        ""
      ].join("\n")
    )
    // A piped REPL reads on while an await is pending: exit only once every answer is in.
    const markers = ["BREAKER=", "CONTAINERS=", "MODE=", "ROLE=", "SERVICES=", "BADKEY="]
    await waitFor("the REPL's answers", 120_000, async () =>
      markers.every((m) => out.includes(m)) || child.exitCode !== null ? true : undefined
    ).catch(() => undefined)
    child.stdin.write(".exit\n")
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve))
    // The REPL's edge (Caddy) outlives it by design: stop it.
    await stopEdge(dataDir)
    fs.rmSync(dataDir, { recursive: true, force: true })
    expect(out).toContain("Kyozo REPL")
    expect(out).toContain("BREAKER=closed")
    expect(out).toContain("CONTAINERS=0")
    expect(out).toContain("MODE=mock")
    expect(out).toContain("ROLE=owner")
    expect(out).toContain("SERVICES=0")
    expect(out).toContain("BADKEY=true")
    expect(code).toBe(0)
  }, 240_000)
})

/**
 * bench/startup: how long a Kyozo server takes from spawn to an answering `/healthz`, and its
 * resident memory once idle, on a fresh embedded data folder, an existing one, and PostgreSQL
 * (when DATABASE_URL is set), against a bare `node:http` server started the same way in the same run.
 *
 *   pnpm bench:startup         (BENCH_ROUNDS=3, BENCH_IDLE_MS=10000; runtime forced to mock)
 *
 * The server runs as `pnpm start` runs it: the bin shim that loads the built bundle.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { freePort, repoRoot, sleep } from "../test/support/server.js"

const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const idleMs = Number(process.env.BENCH_IDLE_MS ?? 10_000)

const serverArgs = [path.join(repoRoot, "packages/server/bin/kyozo-server.mjs")]

const bareServer = `require("node:http").createServer((q, s) => s.end("ok")).listen(Number(process.env.KYOZO_PORT), "127.0.0.1")`

const rssMb = (pid: number): number => {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

interface Sample {
  readonly readyMs: number
  readonly rssMb: number
}

const measure = async (args: ReadonlyArray<string>, env: Record<string, string>): Promise<Sample> => {
  const port = await freePort()
  const full: Record<string, string> = { ...(process.env as Record<string, string>) }
  delete full.DATABASE_URL
  Object.assign(full, { KYOZO_RUNTIME: "mock", KYOZO_EDGE: "inprocess" }, env, { KYOZO_PORT: String(port) })
  const started = performance.now()
  const child: ChildProcess = spawn(process.execPath, args, { cwd: repoRoot, env: full, stdio: "ignore" })
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`)
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(500) })
        .then((r) => r.ok)
        .catch(() => false)
      if (ok) break
      await sleep(20)
    }
    const readyMs = performance.now() - started
    await sleep(idleMs)
    return { readyMs, rssMb: rssMb(child.pid!) }
  } finally {
    child.kill("SIGTERM")
    await new Promise((resolve) =>
      child.exitCode !== null ? resolve(undefined) : child.once("exit", resolve)
    )
  }
}

const median = (values: ReadonlyArray<number>) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const row = (name: string, samples: ReadonlyArray<Sample>, baseline: ReadonlyArray<Sample>) => {
  const ready = median(samples.map((s) => s.readyMs))
  const rss = median(samples.map((s) => s.rssMb))
  const bareReady = median(baseline.map((s) => s.readyMs))
  const bareRss = median(baseline.map((s) => s.rssMb))
  console.log(
    `${name.padEnd(28)} ready ${ready.toFixed(0).padStart(6)} ms (${(ready / bareReady).toFixed(1)}× bare)   idle RSS ${rss.toFixed(0).padStart(5)} MB (+${(rss - bareRss).toFixed(0)} MB over bare)`
  )
}

const main = async () => {
  console.log(`server: node ${serverArgs.join(" ")}; ${rounds} rounds, idle ${idleMs} ms; medians`)
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-bench-startup-"))
  const bare: Array<Sample> = []
  const fresh: Array<Sample> = []
  const existing: Array<Sample> = []
  const postgres: Array<Sample> = []
  try {
    for (let round = 0; round < rounds; round++) {
      bare.push(await measure(["-e", bareServer], {}))
      const dataDir = path.join(root, `data-${round}`)
      fresh.push(await measure(serverArgs, { KYOZO_DATA_DIR: dataDir }))
      existing.push(await measure(serverArgs, { KYOZO_DATA_DIR: dataDir }))
      if (process.env.DATABASE_URL) {
        postgres.push(
          await measure(serverArgs, {
            KYOZO_DATA_DIR: path.join(root, `pg-${round}`),
            DATABASE_URL: process.env.DATABASE_URL
          })
        )
      }
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
  row("bare node:http", bare, bare)
  row("embedded, fresh data dir", fresh, bare)
  row("embedded, existing data dir", existing, bare)
  if (postgres.length > 0) row("PostgreSQL", postgres, bare)
  else console.log("PostgreSQL: skipped (set DATABASE_URL to measure it)")
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})

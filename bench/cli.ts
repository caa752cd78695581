/**
 * How fast `kyozo` answers, as a user runs it (the built bin, `node_modules/.bin/kyozo`), against
 * baselines measured in the same run: `node -e 0` (Node's own start) and `pnpm --version`.
 * Targets: `kyozo --version` ≤ 300 ms, `kyozo ps --json` against a running server ≤ 600 ms
 * (medians of 5). The server runs from its built bundle on the mock runtime in a temp data folder.
 *
 *   pnpm bench:cli
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const kyozo = path.join(root, "node_modules", ".bin", "kyozo")
const RUNS = 5

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const time = (cmd: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env): number => {
  const started = process.hrtime.bigint()
  const r = spawnSync(cmd, args, { env, encoding: "utf8" })
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`)
  return ms
}

const measure = (label: string, cmd: string, args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv) => {
  time(cmd, args, env) // warm the file cache
  const runs = Array.from({ length: RUNS }, () => time(cmd, args, env))
  return { label, median: median(runs), runs }
}

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-bench-cli-"))
const port = await freePort()
const env: NodeJS.ProcessEnv = {
  ...process.env,
  KYOZO_DATA_DIR: dataDir,
  KYOZO_PORT: String(port),
  KYOZO_RUNTIME: "mock"
}
delete env.DATABASE_URL
delete env.KYOZO_URL
delete env.KYOZO_TOKEN
const server = spawn(process.execPath, [path.join(root, "packages/server/bin/kyozo-server.mjs")], {
  env,
  stdio: "ignore"
})
try {
  const deadline = Date.now() + 90_000
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`)
      .then((r) => r.ok)
      .catch(() => false)
    if (ok && fs.existsSync(path.join(dataDir, "credentials.json"))) break
    if (Date.now() > deadline) throw new Error("the server did not start")
    await new Promise((r) => setTimeout(r, 250))
  }
  const cliEnv = { ...env, KYOZO_NO_MOCK_NOTICE: "1" }
  const rows = [
    measure("node -e 0 (baseline)", process.execPath, ["-e", "0"]),
    measure("pnpm --version (baseline)", "pnpm", ["--version"]),
    { ...measure("kyozo --version", kyozo, ["--version"], cliEnv), target: 300 },
    { ...measure("kyozo ps --json (running server)", kyozo, ["ps", "--json"], cliEnv), target: 600 }
  ]
  console.log(`medians of ${RUNS} runs (ms)`)
  for (const r of rows) {
    const target = "target" in r ? `  target ≤ ${r.target}: ${r.median <= r.target ? "met" : "MISSED"}` : ""
    console.log(
      `${r.label.padEnd(36)} ${r.median.toFixed(0).padStart(6)}   [${r.runs.map((x) => x.toFixed(0)).join(", ")}]${target}`
    )
  }
} finally {
  server.kill("SIGTERM")
  await new Promise((r) => server.once("exit", r))
  fs.rmSync(dataDir, { recursive: true, force: true })
}

/** Spawns a real Kyozo server process (`node --import tsx packages/server/src/main.ts`) for tests. */
import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"

import * as CaddyAdmin from "@kyozo/core/edge/CaddyAdmin"
import { Effect } from "effect"

export const repoRoot = path.resolve(import.meta.dirname, "..", "..")

const canBind = (port: number): Promise<number | undefined> =>
  new Promise((resolve) => {
    const server = net.createServer()
    server.once("error", () => resolve(undefined))
    server.listen(port, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address ? address.port : undefined))
    })
  })

// Where this test file starts looking: random, so that a server another file spawned and left
// binding late (a timed-out start) does not meet the same port in the next file.
let portCursor = Math.floor(Math.random() * 12_000)

/**
 * A port for a test server, below the ephemeral range (32768+) that Kyozo, Caddy and Docker take
 * their own ports from: a server binds its port seconds after it was chosen (longer under load),
 * and a kernel-chosen ephemeral port may meanwhile be handed to one of those, so the wrong server
 * would answer.
 */
export const freePort = async (): Promise<number> => {
  for (let i = 0; i < 500; i++) {
    const port = await canBind(20_000 + (portCursor++ % 12_000))
    if (port !== undefined) return port
  }
  const port = await canBind(0)
  if (port === undefined) throw new Error("no free port")
  return port
}

/** Stops the Caddy a Kyozo on this data dir started or adopted, if one answers. */
export const stopEdge = (dataDir: string): Promise<boolean> =>
  Effect.runPromise(CaddyAdmin.stop(CaddyAdmin.defaultAdmin(dataDir), dataDir))

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export const waitFor = async <A>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<A | undefined>
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    await sleep(200)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

export interface ServerProcess {
  readonly port: number
  readonly child: ChildProcess
  readonly log: () => string
  readonly exited: Promise<number | null>
  readonly get: (route: string) => Promise<{ status: number; body: any }>
  readonly stop: () => Promise<number | null>
}

export interface StartOptions {
  /**
   * Run the built bundle (`packages/server/dist/main.mjs`, what users run) instead of the sources
   * through tsx; `nodeArgs` go before it (benchmarks: `--cpu-prof`).
   */
  readonly built?: boolean
  readonly nodeArgs?: ReadonlyArray<string>
}

/** Starts a server with the given environment (DATABASE_URL is removed unless given). */
export const startServer = async (
  env: Record<string, string>,
  options: StartOptions = {}
): Promise<ServerProcess> => {
  const port = Number(env.KYOZO_PORT ?? (await freePort()))
  const full: Record<string, string> = { ...(process.env as Record<string, string>) }
  delete full.DATABASE_URL
  // Each server gets its own shared edge port (4080 would collide between parallel test files).
  if (env.KYOZO_EDGE_PORT === undefined) full.KYOZO_EDGE_PORT = String(await freePort())
  Object.assign(full, env, { KYOZO_PORT: String(port) })
  let output = ""
  const entry = options.built
    ? ["packages/server/dist/main.mjs"]
    : ["--import", "tsx", "packages/server/src/main.ts"]
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...entry], {
    cwd: repoRoot,
    env: full
  })
  child.stdout?.on("data", (d) => (output += d))
  child.stderr?.on("data", (d) => (output += d))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const get = async (route: string) => {
    // Never take another process's answer on this port for ours (it would have a different database).
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`the server exited (${child.exitCode ?? child.signalCode}):\n${output.slice(-2000)}`)
    const res = await fetch(`http://127.0.0.1:${port}${route}`, { signal: AbortSignal.timeout(3000) })
    const text = await res.text()
    let body: any = text
    try {
      body = JSON.parse(text)
    } catch {
      /* not JSON */
    }
    return { status: res.status, body }
  }
  return {
    port,
    child,
    log: () => output,
    exited,
    get,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      const code = await exited
      // The edge (Caddy) outlives Kyozo by design; a test stops every Caddy its servers started.
      if (full.KYOZO_DATA_DIR) await stopEdge(full.KYOZO_DATA_DIR)
      return code
    }
  }
}

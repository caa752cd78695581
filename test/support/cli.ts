/**
 * Runs the built `kyozo` command as a user does: `node_modules/.bin/kyozo` (the committed shim and
 * the bundle `pnpm install` builds), never `pnpm kyozo` or tsx. `buildCli()` rebuilds the bundle
 * from the current sources first (test files run one at a time, so this never races).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { type DockerSuite, NodeImage, removeTeamObjects, StaticImage } from "./docker.js"
import { repoRoot, type ServerProcess, startServer, waitFor } from "./server.js"

export const kyozoBin = path.join(repoRoot, "node_modules", ".bin", "kyozo")

export const buildCli = (): void => {
  execFileSync(process.execPath, ["scripts/build.mjs", "cli"], {
    cwd: repoRoot,
    env: { ...process.env, KYOZO_BUILD_QUIET: "1" },
    stdio: "inherit"
  })
}

export interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** The environment of a CLI run: no inherited server or key, the given data folder. */
export const cliEnv = (dataDir: string, env: Record<string, string> = {}): Record<string, string> => {
  const full: Record<string, string> = { ...(process.env as Record<string, string>) }
  delete full.KYOZO_URL
  delete full.KYOZO_TOKEN
  delete full.KYOZO_SERVER
  delete full.INIT_CWD
  // The CLI never needs it; `kyozo server` in a test must use its own embedded database.
  delete full.DATABASE_URL
  return Object.assign(full, { KYOZO_DATA_DIR: dataDir }, env)
}

export const runKyozo = (
  dataDir: string,
  args: ReadonlyArray<string>,
  options: { env?: Record<string, string>; timeout?: number; input?: string; cwd?: string } = {}
): Promise<Run> =>
  new Promise((resolve) => {
    const child = execFile(
      kyozoBin,
      args,
      { cwd: options.cwd ?? repoRoot, env: cliEnv(dataDir, options.env), timeout: options.timeout ?? 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr })
    )
    if (options.input !== undefined) child.stdin?.end(options.input)
    else child.stdin?.end()
  })

export interface LiveRun {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<number | null>
  /** Waits until stdout matches (or throws after timeoutMs with what was printed). */
  readonly waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
}

/** A long-running command (`logs -f`, `events -f`, `dev`). */
export const spawnKyozo = (
  dataDir: string,
  args: ReadonlyArray<string>,
  env: Record<string, string> = {}
): LiveRun => {
  const child = spawn(kyozoBin, args, { cwd: repoRoot, env: cliEnv(dataDir, env) })
  let out = ""
  let err = ""
  child.stdout.on("data", (d) => (out += d))
  child.stderr.on("data", (d) => (err += d))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const waitFor = async (pattern: RegExp, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const m = out.match(pattern)
      if (m) return m
      if (child.exitCode !== null) break
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`no ${pattern} in the output of kyozo ${args.join(" ")}:\n${out}\n--- stderr:\n${err}`)
  }
  return { child, stdout: () => out, stderr: () => err, exited, waitFor }
}

/** A server on the real engine for CLI suites, with the credentials its bootstrap wrote. */
export interface CliServer {
  readonly server: ServerProcess
  /** The server's data folder; the CLI finds the server and its key through credentials.json there. */
  readonly dataDir: string
  /** A scratch folder for the folders the suite deploys. */
  readonly work: string
  readonly token: string
  readonly teamId: string
}

/**
 * Builds the CLI and starts `kyozo server` on the real engine (FROM lines on the local base images)
 * with a new data folder, and waits until its bootstrap wrote the credentials.
 */
export const startCliServer = async (name: string): Promise<CliServer> => {
  buildCli()
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `kyozo-${name}-`))
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `kyozo-${name}-work-`))
  const server = await startServer({
    KYOZO_RUNTIME: "docker",
    KYOZO_DATA_DIR: dataDir,
    KYOZO_BASE_IMAGES: JSON.stringify({ node: NodeImage, static: StaticImage })
  })
  const credentials = path.join(dataDir, "credentials.json")
  await waitFor("credentials file", 60_000, async () =>
    fs.existsSync(credentials) && (await server.get("/healthz")).status === 200 ? true : undefined
  ).catch((e) => {
    throw new Error(`${e}\n${server.log()}`)
  })
  const written = JSON.parse(fs.readFileSync(credentials, "utf8")) as { token: string; teamId: string }
  return { server, dataDir, work, token: written.token, teamId: written.teamId }
}

/** Stops the server, removes its team's Docker objects (all carry its label) and both folders. */
export const stopCliServer = async (docker: DockerSuite, cli: Partial<CliServer>): Promise<void> => {
  await cli.server?.stop()
  if (cli.teamId) await removeTeamObjects(docker.client, cli.teamId)
  for (const d of [cli.dataDir, cli.work]) if (d) fs.rmSync(d, { recursive: true, force: true })
}

/**
 * Caddy's admin API and process, as Kyozo uses them.
 *
 * The admin endpoint is a unix socket inside Kyozo's data dir by default (`KYOZO_CADDY_ADMIN`
 * overrides it: a socket path, `unix//path`, or a loopback `host:port`). Over a socket Caddy
 * accepts a request only with an empty `Host:` header (else 403 "host not allowed"), which Node
 * sends only with `setHost: false`.
 *
 * `start` runs `caddy run` detached in a session of its own (Node's `detached` is setsid(2)), with
 * XDG dirs inside the data dir so Caddy's state and internal CA live there: it outlives a SIGKILL
 * of Kyozo, and the next Kyozo adopts it through the same socket.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"

import { Duration, Effect, Option, Schedule } from "effect"

import { EdgeUnavailable } from "./EdgeRouter.js"

export type AdminEndpoint =
  | { readonly _tag: "Socket"; readonly path: string }
  | { readonly _tag: "Tcp"; readonly host: string; readonly port: number }

/** Where Caddy's files live: `<dataDir>/edge`. */
export const edgeDir = (dataDir: string) => path.join(dataDir, "edge")

/** The root certificate of Caddy's internal CA (HTTPS on local names), once Caddy made it. */
export const internalCaRoot = (dataDir: string) =>
  path.join(edgeDir(dataDir), "data", "caddy", "pki", "authorities", "local", "root.crt")

export const defaultAdmin = (dataDir: string): AdminEndpoint => ({
  _tag: "Socket",
  path: path.join(edgeDir(dataDir), "caddy-admin.sock")
})

/**
 * Which of the edge's two Caddy processes: the front holds the public listeners (per-service ports,
 * host names, HTTPS) and relays each service to a unix socket; the back listens on those sockets and
 * proxies to the containers. A rollout reloads only the back (see CaddyConfig.ts for why).
 */
export type Role = "front" | "back"

/** The back Caddy's admin socket, beside the front's. */
export const backAdmin = (dataDir: string): AdminEndpoint => ({
  _tag: "Socket",
  path: path.join(edgeDir(dataDir), "caddy-back-admin.sock")
})

/** The folder of the per-service sockets between the two Caddy processes. */
export const relayDir = (dataDir: string) => path.join(edgeDir(dataDir), "u")

/** Reads KYOZO_CADDY_ADMIN; null for an address that is not a socket or a loopback host:port. */
export const parseAdmin = (value: string): AdminEndpoint | null => {
  const v = value.trim()
  if (v.startsWith("unix//")) return { _tag: "Socket", path: v.slice("unix/".length) }
  if (v.startsWith("/")) return { _tag: "Socket", path: v }
  const m = /^(?:http:\/\/)?(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})\/?$/.exec(v)
  if (m) return { _tag: "Tcp", host: m[1] === "localhost" ? "127.0.0.1" : m[1]!, port: Number(m[2]) }
  return null
}

/** The value for Caddy's `admin.listen`. */
export const listenValue = (admin: AdminEndpoint) =>
  admin._tag === "Socket" ? `unix/${admin.path}` : `${admin.host}:${admin.port}`

export const describeAdmin = (admin: AdminEndpoint) =>
  admin._tag === "Socket" ? `unix:${admin.path}` : `http://${admin.host}:${admin.port}`

export interface AdminResponse {
  readonly status: number
  readonly body: string
}

const REQUEST_TIMEOUT_MS = 10_000

/**
 * One admin request. Transport failures are EdgeUnavailable; HTTP errors come back as status.
 * A `load` makes Caddy restart its admin listener, so a request right after may meet a closed
 * socket: transport failures are retried briefly (every admin call Kyozo makes is idempotent).
 */
export const request = (
  admin: AdminEndpoint,
  method: string,
  urlPath: string,
  body?: unknown
): Effect.Effect<AdminResponse, EdgeUnavailable> =>
  requestOnce(admin, method, urlPath, body).pipe(
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(10))))
  )

const requestOnce = (
  admin: AdminEndpoint,
  method: string,
  urlPath: string,
  body?: unknown
): Effect.Effect<AdminResponse, EdgeUnavailable> =>
  Effect.async<AdminResponse, EdgeUnavailable>((resume) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const headers: Record<string, string> = {}
    if (payload !== undefined) headers["Content-Type"] = "application/json"
    const target =
      admin._tag === "Socket"
        ? { socketPath: admin.path, setHost: false, headers: { ...headers, Host: "" } }
        : { host: admin.host, port: admin.port, headers }
    const req = http.request({ ...target, method, path: urlPath, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let data = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => (data += c))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body: data })))
      res.on("error", (e) =>
        resume(Effect.fail(new EdgeUnavailable({ reason: "admin-unreachable", detail: e.message })))
      )
    })
    req.on("timeout", () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)))
    req.on("error", (e) =>
      resume(
        Effect.fail(
          new EdgeUnavailable({
            reason: "admin-unreachable",
            detail: `${describeAdmin(admin)}: ${e.message}`
          })
        )
      )
    )
    if (payload !== undefined) req.write(payload)
    req.end()
    return Effect.sync(() => req.destroy())
  })

/** The running config, or none when nothing answers on the endpoint. */
export const currentConfig = (admin: AdminEndpoint): Effect.Effect<Option.Option<unknown>> =>
  requestOnce(admin, "GET", "/config/").pipe(
    Effect.map((r) =>
      r.status === 200 ? Option.some(JSON.parse(r.body || "null") as unknown) : Option.none()
    ),
    Effect.catchAll(() => Effect.succeedNone),
    Effect.catchAllDefect(() => Effect.succeedNone)
  )

/** Replaces the whole config atomically; fails with Caddy's own words when it refuses. */
export const load = (admin: AdminEndpoint, config: unknown): Effect.Effect<void, EdgeUnavailable | string> =>
  Effect.flatMap(request(admin, "POST", "/load", config), (r) =>
    r.status === 200 ? Effect.void : Effect.fail(errorText(r))
  )

const errorText = (r: AdminResponse): string => {
  try {
    const parsed = JSON.parse(r.body) as { error?: unknown }
    if (typeof parsed.error === "string") return parsed.error
  } catch {
    // not JSON: the raw body says it
  }
  return `HTTP ${r.status}: ${r.body.trim()}`
}

export interface UpstreamHealth {
  readonly address: string
  readonly num_requests: number
  readonly fails: number
}

export const upstreamHealth = (admin: AdminEndpoint): Effect.Effect<ReadonlyArray<UpstreamHealth>> =>
  request(admin, "GET", "/reverse_proxy/upstreams").pipe(
    Effect.map((r) =>
      r.status === 200 ? (JSON.parse(r.body || "[]") as ReadonlyArray<UpstreamHealth>) : []
    ),
    Effect.catchAll(() => Effect.succeed([])),
    Effect.catchAllDefect(() => Effect.succeed([]))
  )

/** File names of a role's process: the front keeps the names it always had. */
const fileOf = (role: Role, name: "pid" | "log" | "boot" | "data" | "config") => {
  const front = { pid: "caddy.pid", log: "caddy.log", boot: "boot.json", data: "data", config: "config" }[
    name
  ]
  return role === "front" ? front : `back-${front}`
}

const pidFile = (dataDir: string, role: Role = "front") => path.join(edgeDir(dataDir), fileOf(role, "pid"))

export const readPid = (dataDir: string, role: Role = "front"): number | null => {
  try {
    const pid = Number(fs.readFileSync(pidFile(dataDir, role), "utf8").trim())
    if (!Number.isInteger(pid) || pid <= 0) return null
    process.kill(pid, 0)
    return pid
  } catch {
    return null
  }
}

/**
 * Asks Caddy to exit (POST /stop) and waits until the endpoint is silent. With the data dir, the
 * front's stop also stops the back Caddy of that data dir (one edge, two processes).
 */
export const stop = (admin: AdminEndpoint, dataDir?: string, role: Role = "front"): Effect.Effect<boolean> =>
  Effect.gen(function* () {
    if (dataDir !== undefined && role === "front") {
      const back = backAdmin(dataDir)
      if (back._tag === "Socket" && (fs.existsSync(back.path) || readPid(dataDir, "back") !== null))
        yield* stop(back, dataDir, "back")
    }
    const answered = yield* request(admin, "POST", "/stop").pipe(
      Effect.map((r) => r.status === 200),
      Effect.orElseSucceed(() => false)
    )
    if (!answered) {
      // The endpoint is silent: kill the Caddy this data dir started, if it still runs.
      const pid = dataDir === undefined ? null : readPid(dataDir, role)
      if (pid === null) return false
      yield* Effect.sync(() => {
        try {
          process.kill(pid, "SIGTERM")
        } catch {
          // already gone
        }
      })
    }
    yield* currentConfig(admin).pipe(
      Effect.flatMap((c) => (Option.isNone(c) ? Effect.void : Effect.fail("still up"))),
      Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("5 seconds"))),
      Effect.ignore
    )
    if (dataDir !== undefined) yield* Effect.sync(() => fs.rmSync(pidFile(dataDir, role), { force: true }))
    return true
  })

/** The `caddy` binary: the configured one (KYOZO_CADDY_BIN), else the first on PATH. */
export const findCaddy = (explicit?: string): string | null => {
  if (explicit) return fs.existsSync(explicit) ? explicit : null
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue
    const candidate = path.join(dir, "caddy")
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return null
}

/** The config Caddy boots with: only the admin endpoint; Kyozo loads the routes right after. */
export const bootConfig = (admin: AdminEndpoint) => ({
  admin: { listen: listenValue(admin), config: { persist: false } }
})

/**
 * Starts Caddy detached and waits until its admin endpoint answers. Its output goes to
 * `<dataDir>/edge/caddy.log`, whose tail is the error when it does not come up.
 */
export const start = (options: {
  readonly bin: string
  readonly dataDir: string
  readonly admin: AdminEndpoint
  readonly startTimeout?: Duration.DurationInput
  readonly role?: Role
}): Effect.Effect<{ readonly pid: number }, EdgeUnavailable> =>
  Effect.gen(function* () {
    const role = options.role ?? "front"
    const dir = edgeDir(options.dataDir)
    const logPath = path.join(dir, fileOf(role, "log"))
    const pid = yield* Effect.try({
      try: () => {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
        if (options.admin._tag === "Socket") fs.rmSync(options.admin.path, { force: true })
        const boot = path.join(dir, fileOf(role, "boot"))
        fs.writeFileSync(boot, JSON.stringify(bootConfig(options.admin)))
        const log = fs.openSync(logPath, "a")
        const child = spawn(options.bin, ["run", "--config", boot], {
          detached: true,
          stdio: ["ignore", log, log],
          cwd: dir,
          env: {
            ...process.env,
            XDG_DATA_HOME: path.join(dir, fileOf(role, "data")),
            XDG_CONFIG_HOME: path.join(dir, fileOf(role, "config")),
            HOME: dir
          }
        })
        fs.closeSync(log)
        child.unref()
        if (child.pid === undefined) throw new Error("spawn gave no pid")
        fs.writeFileSync(pidFile(options.dataDir, role), String(child.pid))
        return child.pid
      },
      catch: (e) =>
        new EdgeUnavailable({ reason: "start-failed", detail: e instanceof Error ? e.message : String(e) })
    })
    const up = yield* currentConfig(options.admin).pipe(
      Effect.flatMap((c) => (Option.isSome(c) ? Effect.void : Effect.fail("not yet"))),
      Effect.retry(
        Schedule.spaced("50 millis").pipe(Schedule.upTo(options.startTimeout ?? Duration.seconds(10)))
      ),
      Effect.either
    )
    if (up._tag === "Left") {
      const tail = yield* Effect.sync(() => {
        try {
          return fs.readFileSync(logPath, "utf8").trim().split("\n").slice(-3).join(" | ")
        } catch {
          return "no log"
        }
      })
      yield* Effect.sync(() => {
        try {
          process.kill(pid, "SIGKILL")
        } catch {
          // already gone
        }
      })
      return yield* new EdgeUnavailable({ reason: "start-failed", detail: `admin API silent; log: ${tail}` })
    }
    return { pid }
  })

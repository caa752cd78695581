/**
 * Which server the CLI talks to, with which key: `KYOZO_URL` / `KYOZO_TOKEN` when set; else the
 * server `KYOZO_SERVER` names, or the current one, in `<KYOZO_DATA_DIR>/servers.json`
 * (`kyozo login`); else `<KYOZO_DATA_DIR>/credentials.json` written by the server's first start,
 * so a user on the same machine never copies a token. Also: the typed client layer, and a quick
 * reachability check (`/healthz`) so a missing server is one clear sentence instead of a transport
 * error; its answer names the server's runtime, and on the mock runtime every command says so on
 * stderr (stdout stays clean for --json).
 *
 * Heavy modules (the RPC client) load when a command needs them: `kyozo --version` stays fast.
 */
import * as Credentials from "@kyozo/api/Credentials"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { Context, Effect, Layer, Option, Schema } from "effect"

import * as Servers from "./Servers.js"

export class ServerUnreachable extends Schema.TaggedError<ServerUnreachable>()("ServerUnreachable", {
  url: Schema.String
}) {
  override get message() {
    return `no Kyozo server at ${this.url}: start one with \`pnpm start\` (or \`kyozo login <url>\` for another server)`
  }
}

export class NoCredentials extends Schema.TaggedError<NoCredentials>()("NoCredentials", {
  file: Schema.String
}) {
  override get message() {
    return `no API key: run \`kyozo login <url>\`, set KYOZO_TOKEN (and KYOZO_URL), or start the server once on this machine so it writes ${this.file}`
  }
}

export class UnknownServer extends Schema.TaggedError<UnknownServer>()("UnknownServer", {
  name: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message() {
    return `no server named ${this.name}: run \`kyozo login <url> --name ${this.name}\`${this.known.length > 0 ? ` (known: ${this.known.join(", ")})` : ""}`
  }
}

export interface ConnectionInfo {
  readonly url: string
  readonly token: string
  /** The server's engine as its /healthz says (`docker`, `mock`), when it says. */
  readonly runtime?: string
  /** Where the key came from: `env`, `login:<name>` or `credentials`. */
  readonly source: string
}

export class Connection extends Context.Tag("@kyozo/cli/Connection")<Connection, ConnectionInfo>() {}

const env = (name: string): string | undefined => {
  const value = process.env[name]?.trim()
  return value ? value : undefined
}

const localUrl = (host: string, port: number): string => {
  const h = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host
  return `http://${h.includes(":") ? `[${h}]` : h}:${port}`
}

export const resolve = Effect.gen(function* () {
  const config = yield* KyozoConfig
  const trim = (u: string) => u.replace(/\/+$/, "")
  const envUrl = env("KYOZO_URL")
  const envToken = env("KYOZO_TOKEN")
  if (envUrl !== undefined && envToken !== undefined)
    return { url: trim(envUrl), token: envToken, source: "env" }
  const servers = yield* Servers.read(config.dataDir)
  const wanted = env("KYOZO_SERVER")
  const stored = Servers.pick(servers, wanted)
  if (wanted !== undefined && Option.isNone(stored))
    return yield* new UnknownServer({ name: wanted, known: Object.keys(servers.servers) })
  if (Option.isSome(stored) && (envUrl === undefined || trim(envUrl) === trim(stored.value.url)))
    return {
      url: trim(stored.value.url),
      token: envToken ?? stored.value.token,
      source: `login:${stored.value.name}`
    }
  const file = yield* Credentials.read(config.dataDir)
  const url =
    envUrl ?? Option.match(file, { onNone: () => localUrl(config.host, config.port), onSome: (c) => c.url })
  const token = envToken ?? Option.getOrUndefined(Option.map(file, (c) => c.token))
  if (token === undefined)
    return yield* new NoCredentials({ file: Credentials.credentialsPath(config.dataDir) })
  return { url: trim(url), token, source: envToken !== undefined ? "env" : "credentials" }
})

/** Any answer from /healthz means a server listens; no answer at all means none does. */
export const checkReachable = (url: string) =>
  Effect.tryPromise({
    try: async () => {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(3000) })
      const body = (await res.json().catch(() => ({}))) as { runtime?: unknown }
      return typeof body.runtime === "string" ? body.runtime : undefined
    },
    catch: () => new ServerUnreachable({ url })
  })

/** One line on stderr, once per process: the server runs containers on the in-memory mock engine. */
let noticed = false
export const mockNotice = (info: ConnectionInfo) =>
  Effect.sync(() => {
    if (info.runtime !== "mock" || noticed || process.env.KYOZO_NO_MOCK_NOTICE === "1") return
    noticed = true
    process.stderr.write(
      `kyozo: ${info.url} runs on the mock runtime: services are simulated, nothing really runs (start it with Docker available, or KYOZO_RUNTIME=docker)\n`
    )
  })

export const ConnectionLive = Layer.effect(
  Connection,
  Effect.gen(function* () {
    const info = yield* resolve
    const runtime = yield* checkReachable(info.url)
    const connected: ConnectionInfo = runtime === undefined ? info : { ...info, runtime }
    yield* mockNotice(connected)
    return connected
  })
).pipe(Layer.provide(KyozoConfig.Default))

/** The typed client plus the connection it uses (the deploy command also needs the raw URL for uploads). */
export const ClientLive = Layer.unwrapEffect(Effect.map(Connection, (c) => KyozoClient.layer(c))).pipe(
  Layer.provideMerge(ConnectionLive)
)

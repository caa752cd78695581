/**
 * Which server the CLI talks to, with which key: `KYOZO_URL` / `KYOZO_TOKEN` when set, otherwise
 * `<KYOZO_DATA_DIR>/credentials.json` written by the server's first start, so a user on the same
 * machine never copies a token. Also: the typed client layer, and a quick reachability check so a
 * missing server is one clear sentence instead of a transport error.
 */
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { localUrl } from "@kyozo/server/Auth"
import * as Credentials from "@kyozo/server/Credentials"
import { Context, Effect, Layer, Option, Schema } from "effect"

export class ServerUnreachable extends Schema.TaggedError<ServerUnreachable>()("ServerUnreachable", {
  url: Schema.String
}) {
  override get message() {
    return `no Kyozo server at ${this.url}: start one with \`pnpm start\``
  }
}

export class NoCredentials extends Schema.TaggedError<NoCredentials>()("NoCredentials", {
  file: Schema.String
}) {
  override get message() {
    return `no API key: set KYOZO_TOKEN (and KYOZO_URL), or start the server once on this machine so it writes ${this.file}`
  }
}

export interface ConnectionInfo {
  readonly url: string
  readonly token: string
}

export class Connection extends Context.Tag("@kyozo/cli/Connection")<Connection, ConnectionInfo>() {}

const env = (name: string): string | undefined => {
  const value = process.env[name]?.trim()
  return value ? value : undefined
}

export const resolve = Effect.gen(function* () {
  const config = yield* KyozoConfig
  const file = yield* Credentials.read(config.dataDir)
  const url =
    env("KYOZO_URL") ??
    Option.match(file, { onNone: () => localUrl(config.host, config.port), onSome: (c) => c.url })
  const token = env("KYOZO_TOKEN") ?? Option.getOrUndefined(Option.map(file, (c) => c.token))
  if (token === undefined)
    return yield* new NoCredentials({ file: Credentials.credentialsPath(config.dataDir) })
  return { url: url.replace(/\/+$/, ""), token } satisfies ConnectionInfo
})

/** Any answer from /healthz means a server listens; no answer at all means none does. */
export const checkReachable = (url: string) =>
  Effect.tryPromise({
    try: () => fetch(`${url}/healthz`, { signal: AbortSignal.timeout(3000) }).then((r) => r.body?.cancel()),
    catch: () => new ServerUnreachable({ url })
  })

export const ConnectionLive = Layer.effect(
  Connection,
  Effect.tap(resolve, (c) => checkReachable(c.url))
).pipe(Layer.provide(KyozoConfig.Default))

/** The typed client plus the connection it uses (the deploy command also needs the raw URL for uploads). */
export const ClientLive = Layer.unwrapEffect(Effect.map(Connection, (c) => KyozoClient.layer(c))).pipe(
  Layer.provideMerge(ConnectionLive)
)

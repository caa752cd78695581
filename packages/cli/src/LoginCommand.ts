/**
 * `kyozo login <url> [--token KEY] [--name N] [--json]`: checks the key against the server
 * (WhoAmI) and stores server and key in `<KYOZO_DATA_DIR>/servers.json` (Servers.ts) as the
 * current server; later commands use it. The key comes from --token, KYOZO_TOKEN, the local
 * credentials file when it names the same server, or stdin. `kyozo servers` lists what is stored;
 * `kyozo use <name>` switches the current server.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Credentials from "@kyozo/api/Credentials"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { Effect, Option, Schema } from "effect"

import { checkReachable, mockNotice, UnknownServer } from "./Connection.js"
import { json, printJson } from "./Output.js"
import * as Servers from "./Servers.js"

export class NoKey extends Schema.TaggedError<NoKey>()("NoKey", { url: Schema.String }) {
  override get message() {
    return `no API key for ${this.url}: pass --token kz_… (or pipe it on stdin, or set KYOZO_TOKEN)`
  }
}

const url = Args.text({ name: "url" }).pipe(Args.withDescription("the server, e.g. http://127.0.0.1:4040"))
const token = Options.text("token").pipe(
  Options.withDescription("API key (default: stdin)"),
  Options.optional
)
const serverName = Options.text("name").pipe(
  Options.withDescription("a name for this server (default: its host:port)"),
  Options.optional
)

const readStdin = Effect.promise(async () => {
  if (process.stdin.isTTY) {
    process.stderr.write("API key: ")
    const rl = (await import("node:readline")).createInterface({ input: process.stdin })
    const line = await new Promise<string>((resolve) => rl.once("line", resolve))
    rl.close()
    return line.trim()
  }
  let text = ""
  for await (const chunk of process.stdin) text += chunk
  return text.trim()
})

export const loginCommand = Command.make("login", { url, token, name: serverName, json }, (args) =>
  Effect.gen(function* () {
    const config = yield* KyozoConfig
    const target = args.url.replace(/\/+$/, "")
    const local = yield* Credentials.read(config.dataDir)
    const key =
      Option.getOrUndefined(args.token) ??
      process.env.KYOZO_TOKEN?.trim() ??
      Option.getOrUndefined(
        Option.map(
          Option.filter(local, (c) => c.url.replace(/\/+$/, "") === target),
          (c) => c.token
        )
      ) ??
      (yield* readStdin)
    if (!key) return yield* new NoKey({ url: target })
    const runtime = yield* checkReachable(target)
    yield* mockNotice({ url: target, token: key, runtime, source: "login" })
    const me = yield* Effect.flatMap(KyozoClient, (c) => c.WhoAmI()).pipe(
      Effect.provide(KyozoClient.layer({ url: target, token: key }))
    )
    const name = Option.getOrElse(args.name, () => Servers.nameOf(target))
    const stored = yield* Servers.read(config.dataDir)
    const file = yield* Servers.write(config.dataDir, {
      current: name,
      servers: { ...stored.servers, [name]: { url: target, token: key } }
    })
    if (args.json)
      return yield* printJson({
        name,
        url: target,
        file,
        email: me.email,
        role: me.role,
        teamName: me.teamName
      })
    process.stdout.write(
      `logged in to ${name} (${target}) as ${me.email}, ${me.role} of team ${me.teamName}; saved in ${file}\n`
    )
  }).pipe(Effect.provide(KyozoConfig.Default))
).pipe(Command.withDescription("Store a server and its API key; later commands use it"))

export const serversCommand = Command.make("servers", { json }, (args) =>
  Effect.gen(function* () {
    const config = yield* KyozoConfig
    const stored = yield* Servers.read(config.dataDir)
    const rows = Object.entries(stored.servers).map(([name, s]) => ({
      name,
      url: s.url,
      current: name === stored.current
    }))
    if (args.json) return yield* printJson(rows)
    if (rows.length === 0) return process.stdout.write("No servers stored: `kyozo login <url>` adds one.\n")
    for (const r of rows) process.stdout.write(`${r.current ? "*" : " "} ${r.name}  ${r.url}\n`)
  }).pipe(Effect.provide(KyozoConfig.Default))
).pipe(Command.withDescription("List the servers `kyozo login` stored (* is the current one)"))

export const useCommand = Command.make(
  "use",
  { name: Args.text({ name: "name" }).pipe(Args.withDescription("a stored server's name")) },
  (args) =>
    Effect.gen(function* () {
      const config = yield* KyozoConfig
      const stored = yield* Servers.read(config.dataDir)
      if (stored.servers[args.name] === undefined)
        return yield* new UnknownServer({ name: args.name, known: Object.keys(stored.servers) })
      yield* Servers.write(config.dataDir, { ...stored, current: args.name })
      process.stdout.write(`now using ${args.name} (${stored.servers[args.name]!.url})\n`)
    }).pipe(Effect.provide(KyozoConfig.Default))
).pipe(Command.withDescription("Switch the current server"))

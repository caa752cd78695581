/**
 * `<KYOZO_DATA_DIR>/servers.json`, beside the credentials file that a server's first start writes:
 * the servers `kyozo login` stored, by name, with the one later commands use (`current`).
 * Mode 0600 (it holds bearer keys), written atomically.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"

import { Data, Effect, Option, Schema } from "effect"

export const StoredServer = Schema.Struct({ url: Schema.String, token: Schema.String })
export const ServersFile = Schema.Struct({
  current: Schema.optional(Schema.String),
  servers: Schema.Record({ key: Schema.String, value: StoredServer })
})
export type ServersFile = typeof ServersFile.Type

export class ServersFileError extends Data.TaggedError("ServersFileError")<{
  readonly path: string
  readonly reason: "unreadable" | "invalid" | "unwritable"
  readonly detail: string
}> {
  override get message() {
    return this.reason === "invalid"
      ? `${this.path} is not a servers file (${this.detail}): fix it or delete it and run \`kyozo login <url>\` again`
      : `cannot ${this.reason === "unreadable" ? "read" : "write"} ${this.path}: ${this.detail}`
  }
}

export const serversPath = (dataDir: string): string => path.join(dataDir, "servers.json")

const empty: ServersFile = { servers: {} }

export const read = (dataDir: string): Effect.Effect<ServersFile, ServersFileError> => {
  const file = serversPath(dataDir)
  return Effect.tryPromise({
    try: () => fs.readFile(file, "utf8"),
    catch: (e) => e as NodeJS.ErrnoException
  }).pipe(
    Effect.matchEffect({
      onFailure: (e) =>
        e.code === "ENOENT"
          ? Effect.succeed(empty)
          : Effect.fail(new ServersFileError({ path: file, reason: "unreadable", detail: e.message })),
      onSuccess: (text) =>
        Schema.decodeUnknown(Schema.parseJson(ServersFile))(text).pipe(
          Effect.mapError(
            (e) => new ServersFileError({ path: file, reason: "invalid", detail: e.message.split("\n")[0]! })
          )
        )
    })
  )
}

export const write = (dataDir: string, servers: ServersFile): Effect.Effect<string, ServersFileError> => {
  const file = serversPath(dataDir)
  const tmp = `${file}.${process.pid}.tmp`
  return Effect.tryPromise({
    try: async () => {
      await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
      await fs.writeFile(tmp, JSON.stringify(servers, null, 2) + "\n", { mode: 0o600 })
      await fs.chmod(tmp, 0o600)
      await fs.rename(tmp, file)
      return file
    },
    catch: (e) => new ServersFileError({ path: file, reason: "unwritable", detail: String(e) })
  })
}

/** The named server, or the current one. */
export const pick = (file: ServersFile, name?: string) =>
  Option.fromNullable(name ?? file.current).pipe(
    Option.flatMap((n) => Option.map(Option.fromNullable(file.servers[n]), (s) => ({ name: n, ...s })))
  )

/** A default name for a server: its host and port (`127.0.0.1:4040`). */
export const nameOf = (url: string): string => {
  try {
    return new URL(url).host
  } catch {
    return url
  }
}

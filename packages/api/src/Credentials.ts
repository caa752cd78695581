/**
 * `<KYOZO_DATA_DIR>/credentials.json`: the first-start admin key, so a user on the same machine
 * never copies a token by hand. Mode 0600 (the key is a bearer secret), written atomically.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"

import { Effect, Option, Schema } from "effect"

export const Credentials = Schema.Struct({
  url: Schema.String,
  token: Schema.String,
  teamId: Schema.String
})
export type Credentials = typeof Credentials.Type

export class CredentialsError extends Schema.TaggedError<CredentialsError>()("CredentialsError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Cannot use credentials file ${this.path}: ${this.reason}`
  }
}

export const credentialsPath = (dataDir: string): string => path.join(dataDir, "credentials.json")

const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

export const write = (dataDir: string, credentials: Credentials): Effect.Effect<string, CredentialsError> => {
  const file = credentialsPath(dataDir)
  const tmp = `${file}.${process.pid}.tmp`
  return Effect.tryPromise({
    try: async () => {
      await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
      await fs.writeFile(tmp, JSON.stringify(credentials, null, 2) + "\n", { mode: 0o600 })
      // The umask cannot widen 0600, but an existing file keeps its mode: set it explicitly.
      await fs.chmod(tmp, 0o600)
      await fs.rename(tmp, file)
      return file
    },
    catch: (e) => new CredentialsError({ path: file, reason: reasonOf(e) })
  })
}

/** The credentials, or none when the file does not exist. */
export const read = (dataDir: string): Effect.Effect<Option.Option<Credentials>, CredentialsError> => {
  const file = credentialsPath(dataDir)
  const decode = Schema.decodeUnknownOption(Credentials)
  return Effect.tryPromise({
    try: async (): Promise<Option.Option<Credentials>> => {
      let text: string
      try {
        text = await fs.readFile(file, "utf8")
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return Option.none()
        throw e
      }
      const decoded = decode(JSON.parse(text))
      if (Option.isNone(decoded)) throw new Error("expected { url, token, teamId }")
      return decoded
    },
    catch: (e) => new CredentialsError({ path: file, reason: reasonOf(e) })
  })
}

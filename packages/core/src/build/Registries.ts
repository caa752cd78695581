/**
 * Image registries and their credentials, per team, from configuration only:
 * `KYOZO_REGISTRIES` (JSON) or the JSON file named by `KYOZO_REGISTRIES_FILE`, a list of
 * `{ "team": "<teamId>" | "*", "server": "registry.example.com", "username": "…", "password": "…", "push": true }`.
 * Pulls of a team's image-only services use the matching credentials; with `push: true` every
 * image built for the team is also pushed to `<server>/kyozo/<service>:<hash>`.
 * Passwords never reach build args, image layers or logs.
 */
import * as fs from "node:fs"

import { Effect, Option, Redacted, Schema } from "effect"

import type { RegistryAuth } from "../engine/ContainerRuntime.js"
import { currentKyozoConfig } from "../KyozoConfig.js"

export const RegistryEntry = Schema.Struct({
  team: Schema.optionalWith(Schema.String, { default: () => "*" }),
  server: Schema.String.pipe(Schema.pattern(/^[a-z0-9.-]+(:\d+)?$/i)),
  username: Schema.String,
  password: Schema.Redacted(Schema.String),
  push: Schema.optionalWith(Schema.Boolean, { default: () => false })
})
export type RegistryEntry = typeof RegistryEntry.Type

export class RegistriesConfigInvalid extends Schema.TaggedError<RegistriesConfigInvalid>()(
  "RegistriesConfigInvalid",
  { source: Schema.String, detail: Schema.String }
) {
  override get message() {
    return `Registry configuration in ${this.source} is invalid: ${this.detail}. Expected a JSON list of { team, server, username, password, push }.`
  }
}

/** The registry host of an image reference; Docker Hub for references without one. */
export const registryOf = (ref: string): string => {
  const first = ref.split("/")[0] ?? ""
  return ref.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")
    ? first.toLowerCase()
    : "docker.io"
}

const decode = (source: string, text: string) =>
  Effect.try({ try: () => JSON.parse(text) as unknown, catch: (e) => String(e) }).pipe(
    Effect.flatMap((json) =>
      Schema.decodeUnknown(Schema.Array(RegistryEntry))(json).pipe(Effect.mapError((e) => e.message))
    ),
    Effect.mapError((detail) => new RegistriesConfigInvalid({ source, detail }))
  )

export const make = (entries: ReadonlyArray<RegistryEntry>) => {
  const forTeam = (teamId: string) => entries.filter((e) => e.team === teamId || e.team === "*")
  // A team's own entry wins over a "*" one for the same server.
  const pick = (teamId: string, match: (e: RegistryEntry) => boolean) =>
    forTeam(teamId)
      .filter(match)
      .sort((a, b) => Number(b.team !== "*") - Number(a.team !== "*"))[0]
  const toAuth = (e: RegistryEntry): RegistryAuth => ({
    username: e.username,
    password: Redacted.value(e.password),
    serveraddress: e.server
  })
  return {
    entries,
    /** Credentials for pulling `ref` on behalf of a team, if any are configured for its registry. */
    authFor: (teamId: string, ref: string): RegistryAuth | undefined => {
      const entry = pick(teamId, (e) => e.server.toLowerCase() === registryOf(ref))
      return entry ? toAuth(entry) : undefined
    },
    /** Where a team's built images are pushed, if anywhere. */
    pushTarget: (
      teamId: string
    ): { readonly ref: (tag: string) => string; readonly auth: RegistryAuth } | undefined => {
      const entry = pick(teamId, (e) => e.push)
      return entry ? { ref: (tag) => `${entry.server}/${tag}`, auth: toAuth(entry) } : undefined
    }
  } as const
}

export class Registries extends Effect.Service<Registries>()("@kyozo/core/Registries", {
  effect: Effect.gen(function* () {
    const { registries, registriesFile } = (yield* currentKyozoConfig).build
    const inline = Option.fromNullable(registries)
    const file = Option.fromNullable(registriesFile)
    if (Option.isSome(inline)) return make(yield* decode("KYOZO_REGISTRIES", inline.value))
    if (Option.isSome(file)) {
      const text = yield* Effect.try({
        try: () => fs.readFileSync(file.value, "utf8"),
        catch: (e) => new RegistriesConfigInvalid({ source: file.value, detail: String(e) })
      })
      return make(yield* decode(file.value, text))
    }
    return make([])
  })
}) {}

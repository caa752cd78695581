/**
 * What generated builds need from the network they run on: the CA bundle package downloads must
 * trust (a TLS-intercepting proxy, as on many corporate networks) and package mirrors.
 *
 *   KYOZO_BUILD_CA_FILE        extra CA bundle (PEM) for package downloads; `none` turns it off.
 *                              Default: the host's own bundle where there is one, so builds trust
 *                              what the host trusts.
 *   KYOZO_BUILD_NPM_REGISTRY   npm registry URL (npm, pnpm, yarn, corepack)
 *   KYOZO_BUILD_PIP_INDEX_URL  pip index URL
 *   KYOZO_BUILD_PIP_FIND_LINKS pip find-links URL (a wheel folder served over HTTP)
 *
 * The bundle goes into the build context of generated Dockerfiles only, is used by build stages
 * only, and never reaches the final image (DockerfileGenerator keeps it out of every runtime COPY).
 */
import * as fs from "node:fs"

import { Data, Effect, Option } from "effect"

import { currentKyozoConfig } from "../../KyozoConfig.js"

/** Where the bundle sits in the build context; build stages copy it outside the app folder. */
export const BUILD_CA_CONTEXT_FILE = ".kyozo-build-ca.pem"
export const BUILD_CA_PATH = "/etc/kyozo/build-ca.pem"

/** Debian/Ubuntu, Fedora/RHEL, Alpine/macOS-style locations of the system bundle. */
export const HOST_CA_BUNDLES = [
  "/etc/ssl/certs/ca-certificates.crt",
  "/etc/pki/tls/certs/ca-bundle.crt",
  "/etc/ssl/cert.pem"
] as const

export interface BuildSettingsShape {
  /** PEM text build stages trust, and where it came from (for logs). */
  readonly ca?: { readonly pem: string; readonly source: string }
  readonly npmRegistry?: string
  readonly pipIndexUrl?: string
  readonly pipFindLinks?: string
}

export class BuildSettingsError extends Data.TaggedError("BuildSettingsError")<{
  readonly variable: string
  readonly reason: "Unreadable" | "NotPem" | "InvalidUrl"
  readonly message: string
}> {}

const PEM = /-----BEGIN CERTIFICATE-----/

const readPem = (file: string, variable: string): Effect.Effect<string, BuildSettingsError> =>
  Effect.try({
    try: () => fs.readFileSync(file, "utf8"),
    catch: (e) =>
      new BuildSettingsError({
        variable,
        reason: "Unreadable",
        message: `${variable}: cannot read ${file} (${(e as Error).message}). Point it at a readable PEM bundle, or set it to "none".`
      })
  }).pipe(
    Effect.filterOrFail(
      (text) => PEM.test(text),
      () =>
        new BuildSettingsError({
          variable,
          reason: "NotPem",
          message: `${variable}: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----).`
        })
    )
  )

const url = (variable: string, raw: string | undefined) =>
  Effect.gen(function* () {
    if (raw === undefined || raw.trim() === "") return undefined
    const value = raw.trim()
    if (!/^(https?|file):\/\/\S+$/.test(value))
      return yield* new BuildSettingsError({
        variable,
        reason: "InvalidUrl",
        message: `${variable}: "${value}" is not an http(s) URL.`
      })
    return value
  })

/**
 * An explicit file is added to the host's bundle (it is an extra CA: public registries keep
 * working); without one, the host's bundle alone.
 */
export const loadBuildSettings: Effect.Effect<BuildSettingsShape, BuildSettingsError> = Effect.gen(
  function* () {
    const variable = "KYOZO_BUILD_CA_FILE"
    const settings = (yield* currentKyozoConfig).build
    const configured = Option.fromNullable(settings.caFile)
    const hostFile = HOST_CA_BUNDLES.find((f) => fs.existsSync(f))
    const host = hostFile
      ? yield* readPem(hostFile, "host CA bundle").pipe(Effect.option, Effect.map(Option.getOrUndefined))
      : undefined
    let ca: BuildSettingsShape["ca"]
    const choice = Option.getOrUndefined(configured)?.trim()
    if (choice === "none" || choice === "off") ca = undefined
    else if (choice !== undefined && choice !== "") {
      const extra = yield* readPem(choice, variable)
      ca =
        host !== undefined && choice !== hostFile
          ? { pem: `${host.trimEnd()}\n${extra.trimEnd()}\n`, source: `${hostFile} + ${choice}` }
          : { pem: extra, source: choice }
    } else if (host !== undefined) ca = { pem: host, source: hostFile! }
    const npmRegistry = yield* url("KYOZO_BUILD_NPM_REGISTRY", settings.npmRegistry)
    const pipIndexUrl = yield* url("KYOZO_BUILD_PIP_INDEX_URL", settings.pipIndexUrl)
    const pipFindLinks = yield* url("KYOZO_BUILD_PIP_FIND_LINKS", settings.pipFindLinks)
    return {
      ...(ca ? { ca } : {}),
      ...(npmRegistry ? { npmRegistry } : {}),
      ...(pipIndexUrl ? { pipIndexUrl } : {}),
      ...(pipFindLinks ? { pipFindLinks } : {})
    }
  }
)

export class BuildSettings extends Effect.Service<BuildSettings>()("@kyozo/core/BuildSettings", {
  effect: loadBuildSettings
}) {}

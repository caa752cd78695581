/**
 * How builds reach package registries: the CA bundle build stages trust (the host's by default, an
 * extra one added to it), package mirrors, and typed errors for configuration that cannot work.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { afterAll, describe, expect, it } from "@effect/vitest"
import { HOST_CA_BUNDLES, loadBuildSettings } from "@kyozo/core/build/dockerfile/BuildSettings"
import { ConfigProvider, Effect } from "effect"

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-build-settings-"))
const EXTRA = "-----BEGIN CERTIFICATE-----\nMIIBcorporateproxyca\n-----END CERTIFICATE-----\n"
const extraFile = path.join(dir, "proxy-ca.pem")
fs.writeFileSync(extraFile, EXTRA)
const notPem = path.join(dir, "notes.txt")
fs.writeFileSync(notPem, "not a certificate\n")
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
const host = HOST_CA_BUNDLES.find((f) => fs.existsSync(f))

describe("build settings", () => {
  it.effect("by default builds trust the host's own bundle, where there is one", () =>
    Effect.gen(function* () {
      const s = yield* loadBuildSettings
      if (host === undefined) expect(s.ca).toBeUndefined()
      else {
        expect(s.ca?.source).toBe(host)
        expect(s.ca?.pem).toBe(fs.readFileSync(host, "utf8"))
      }
      expect(s.npmRegistry).toBeUndefined()
    }).pipe(withEnv({}))
  )

  it.effect("KYOZO_BUILD_CA_FILE adds a CA to the host's bundle: public registries stay trusted", () =>
    Effect.gen(function* () {
      const s = yield* loadBuildSettings
      expect(s.ca?.pem.endsWith(EXTRA)).toBe(true)
      if (host !== undefined) {
        expect(s.ca?.source).toBe(`${host} + ${extraFile}`)
        expect(s.ca!.pem.length).toBeGreaterThan(EXTRA.length + 1000)
      }
    }).pipe(withEnv({ KYOZO_BUILD_CA_FILE: extraFile }))
  )

  it.effect("none turns the build CA off", () =>
    Effect.gen(function* () {
      expect((yield* loadBuildSettings).ca).toBeUndefined()
    }).pipe(withEnv({ KYOZO_BUILD_CA_FILE: "none" }))
  )

  it.effect("a missing file or one without a certificate is a typed error naming the variable", () =>
    Effect.gen(function* () {
      const missing = yield* Effect.flip(
        loadBuildSettings.pipe(withEnv({ KYOZO_BUILD_CA_FILE: path.join(dir, "absent.pem") }))
      )
      expect(missing.reason).toBe("Unreadable")
      expect(missing.message).toMatch(/KYOZO_BUILD_CA_FILE/)
      const garbage = yield* Effect.flip(loadBuildSettings.pipe(withEnv({ KYOZO_BUILD_CA_FILE: notPem })))
      expect(garbage.reason).toBe("NotPem")
    })
  )

  it.effect("package mirrors are read, and a value that is not a URL is refused", () =>
    Effect.gen(function* () {
      const s = yield* loadBuildSettings.pipe(
        withEnv({
          KYOZO_BUILD_NPM_REGISTRY: "https://npm.corp.example/",
          KYOZO_BUILD_PIP_INDEX_URL: "https://pypi.corp.example/simple",
          KYOZO_BUILD_PIP_FIND_LINKS: "https://wheels.corp.example/"
        })
      )
      expect(s).toMatchObject({
        npmRegistry: "https://npm.corp.example/",
        pipIndexUrl: "https://pypi.corp.example/simple",
        pipFindLinks: "https://wheels.corp.example/"
      })
      const bad = yield* Effect.flip(
        loadBuildSettings.pipe(withEnv({ KYOZO_BUILD_NPM_REGISTRY: "npm.corp" }))
      )
      expect(bad.reason).toBe("InvalidUrl")
      expect(bad.variable).toBe("KYOZO_BUILD_NPM_REGISTRY")
    })
  )
})

/**
 * Headless Chromium for browser tests (playwright-core driving Debian's /usr/bin/chromium). Without
 * a browser the suite is skipped loudly, or fails when KYOZO_REQUIRE_BROWSER=1 (CI sets it).
 */
import * as fs from "node:fs"
import * as path from "node:path"

import { type Browser, chromium } from "playwright-core"

export const CHROMIUM = process.env.KYOZO_CHROMIUM ?? "/usr/bin/chromium"

export const browserAvailable = (suite: string): boolean => {
  if (fs.existsSync(CHROMIUM)) return true
  if (process.env.KYOZO_REQUIRE_BROWSER === "1")
    throw new Error(
      `[${suite}] KYOZO_REQUIRE_BROWSER=1 but there is no browser at ${CHROMIUM}: apt-get install -y chromium.`
    )
  const bar = "!".repeat(78)
  console.warn(
    `\n${bar}\n!! SKIPPING ${suite}: no Chromium at ${CHROMIUM}.\n!! These tests did NOT run. apt-get install -y chromium, or set KYOZO_REQUIRE_BROWSER=1 to fail instead.\n${bar}\n`
  )
  return false
}

/** A fresh headless Chromium: Playwright gives every launch a new, temporary profile folder. */
export const launch = (): Promise<Browser> =>
  chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
  })

/** Where screenshots go (gitignored): `KYOZO_ARTIFACTS` or `<repo>/artifacts/dashboard`. */
export const artifactsDir = (repoRoot: string): string => {
  const dir = process.env.KYOZO_ARTIFACTS ?? path.join(repoRoot, "artifacts", "dashboard")
  fs.mkdirSync(dir, { recursive: true })
  return dir
}

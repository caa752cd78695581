/**
 * The edge for tests: a real Caddy (started in a temp data dir and stopped when the layer closes)
 * wherever one is installed, else the in-process fallback. `caddySuite` decides whether a test
 * file that needs Caddy runs: it skips loudly without one, and fails under KYOZO_REQUIRE_CADDY=1.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import * as CaddyAdmin from "@kyozo/core/edge/CaddyAdmin"
import * as CaddyEdge from "@kyozo/core/edge/CaddyEdge"
import type { EdgeRouter } from "@kyozo/core/edge/EdgeRouter"
import * as InProcessEdge from "@kyozo/core/edge/InProcessEdge"
import { Layer } from "effect"

export const caddyBin = (): string | null => CaddyAdmin.findCaddy(process.env.KYOZO_CADDY_BIN)

export interface CaddySuite {
  readonly available: boolean
  readonly bin: string
}

export const caddySuite = (suite: string): CaddySuite => {
  const bin = caddyBin()
  if (bin === null) {
    if (process.env.KYOZO_REQUIRE_CADDY === "1") {
      throw new Error(
        `[${suite}] KYOZO_REQUIRE_CADDY=1 but no caddy binary is on PATH. apt-get install -y caddy.`
      )
    }
    const bar = "!".repeat(78)
    console.warn(
      `\n${bar}\n!! SKIPPING ${suite}: no caddy binary on PATH.\n!! These tests did NOT run. Install caddy (apt-get install -y caddy), or set KYOZO_REQUIRE_CADDY=1 to fail instead.\n${bar}\n`
    )
  }
  return { available: bin !== null, bin: bin ?? "caddy" }
}

/** A short temp dir (unix socket paths must stay under ~100 bytes). */
export const edgeDataDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-edge-"))

/** A Caddy edge in its own temp dir, stopped on close. */
export const caddyLayer = (
  options: { dataDir?: string; sharedPort?: number | null; tlsPort?: number | null; domain?: string } = {}
) => {
  const dataDir = options.dataDir ?? edgeDataDir()
  return CaddyEdge.layer({
    dataDir,
    admin: CaddyAdmin.defaultAdmin(dataDir),
    bin: caddyBin(),
    sharedPort: options.sharedPort ?? null,
    tlsPort: options.tlsPort ?? null,
    domain: options.domain ?? "localhost",
    reason: "test",
    stopOnClose: true
  })
}

/** Caddy where installed (stopped on close), else the in-process edge: for tests about deploys. */
export const testEdgeLayer = (): Layer.Layer<EdgeRouter> =>
  caddyBin() === null
    ? InProcessEdge.layer({ reason: "test: no caddy installed" })
    : caddyLayer().pipe(Layer.orDie)

/**
 * The edge for tests: a real Caddy (started in a temp data dir and stopped when the layer closes)
 * wherever one is installed, else the in-process fallback. `caddySuite` decides whether a test
 * file that needs Caddy runs: it skips loudly without one, and fails under KYOZO_REQUIRE_CADDY=1.
 * `httpGet` / `httpsGet`: one request to an edge's port, as a client with a Host (and SNI) sends it.
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as https from "node:https"
import * as os from "node:os"
import * as path from "node:path"
import type * as tls from "node:tls"

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

/**
 * One GET to 127.0.0.1:`port` on a fresh connection (a kept-alive one would stay on its old
 * upstream); status 0 and the error as body when it fails or times out.
 */
export const httpGet = (port: number, headers: Record<string, string> = {}, timeoutMs = 8000) =>
  new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>((resolve) => {
    const req = http.get(
      { host: "127.0.0.1", port, path: "/", headers, agent: false, timeout: timeoutMs },
      (res) => {
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (c: string) => (body += c))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
        res.on("error", (e) => resolve({ status: 0, body: String(e), headers: {} }))
      }
    )
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", (e) => resolve({ status: 0, body: String(e), headers: {} }))
  })

/**
 * One HTTPS GET to 127.0.0.1:`port` with SNI and Host `name`, verified against `ca` (the system's
 * when undefined), on a fresh connection; with the certificate's issuer and subject alt names.
 */
export const httpsGet = (port: number, name: string, ca: Buffer | undefined, timeoutMs = 8000) =>
  new Promise<{ status: number; body: string; issuer?: string; subjectAltName?: string }>((resolve) => {
    const req = https.get(
      {
        host: "127.0.0.1",
        port,
        path: "/",
        servername: name,
        headers: { host: name },
        ca,
        agent: false,
        timeout: timeoutMs
      },
      (res) => {
        const cert = (res.socket as tls.TLSSocket).getPeerCertificate()
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (c: string) => (body += c))
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            issuer: `${cert.issuer?.O ?? ""} ${cert.issuer?.CN ?? ""}`,
            subjectAltName: cert.subjectaltname
          })
        )
      }
    )
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", (e) => resolve({ status: 0, body: String(e) }))
  })

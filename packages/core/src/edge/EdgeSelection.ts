/**
 * Chooses the edge at start-up: `KYOZO_EDGE=caddy|inprocess|auto` (auto by default).
 * - caddy: adopt the Caddy answering at the admin endpoint (`KYOZO_CADDY_ADMIN`, default a socket
 *   in the data dir), else start one; failing that, Kyozo does not start (the admin asked for it).
 * - auto: the same, but without Caddy (not installed, or it would not start) the in-process
 *   fallback, loudly flagged.
 * - inprocess: the fallback, always.
 */
import { Effect, Layer } from "effect"

import { KyozoConfig } from "../KyozoConfig.js"
import * as Admin from "./CaddyAdmin.js"
import * as CaddyEdge from "./CaddyEdge.js"
import { EdgeRouter, EdgeUnavailable } from "./EdgeRouter.js"
import * as InProcessEdge from "./InProcessEdge.js"

export const layer: Layer.Layer<EdgeRouter, EdgeUnavailable, KyozoConfig> = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* KyozoConfig
    if (config.edge === "inprocess") {
      return InProcessEdge.layer({
        reason: "KYOZO_EDGE=inprocess",
        domain: config.domain,
        host: config.edgeHost
      })
    }
    const admin =
      config.caddyAdmin === undefined
        ? Admin.defaultAdmin(config.dataDir)
        : Admin.parseAdmin(config.caddyAdmin)
    if (admin === null) {
      return Layer.fail(
        new EdgeUnavailable({
          reason: "admin-unreachable",
          detail: `KYOZO_CADDY_ADMIN=${config.caddyAdmin} is neither a unix socket nor a loopback host:port`
        })
      )
    }
    const caddy = CaddyEdge.layer({
      dataDir: config.dataDir,
      admin,
      bin: Admin.findCaddy(config.caddyBin),
      host: config.edgeHost,
      sharedPort: config.edgePort === 0 ? null : config.edgePort,
      tlsPort: config.edgeTlsPort === 0 ? null : config.edgeTlsPort,
      acme: config.acmeEmail === undefined ? null : { email: config.acmeEmail, ca: config.acmeCa },
      domain: config.domain,
      reason: `KYOZO_EDGE=${config.edge}`
    })
    if (config.edge === "caddy") return caddy
    return caddy.pipe(
      Layer.catchAll((e) =>
        InProcessEdge.layer({
          reason: `KYOZO_EDGE=auto, ${e.message}`,
          domain: config.domain,
          host: config.edgeHost
        })
      )
    )
  })
)

/**
 * `kyozo edge status|stop [--json]`: the data plane, straight from Caddy's admin endpoint in the
 * data dir (or KYOZO_CADDY_ADMIN), so it works while the Kyozo server is down — which is when the
 * edge matters. `stop` asks Caddy to exit: every service URL stops answering until Kyozo starts
 * it again.
 */
import * as Command from "@effect/cli/Command"
import * as Admin from "@kyozo/core/edge/CaddyAdmin"
import { parseRoutes } from "@kyozo/core/edge/CaddyConfig"
import { EdgeUnavailable } from "@kyozo/core/edge/EdgeRouter"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { Console, Effect, Option } from "effect"

import { json, printJson } from "./Output.js"

const adminOf = Effect.gen(function* () {
  const config = yield* KyozoConfig
  const admin =
    config.caddyAdmin === undefined ? Admin.defaultAdmin(config.dataDir) : Admin.parseAdmin(config.caddyAdmin)
  if (admin === null) {
    return yield* new EdgeUnavailable({
      reason: "admin-unreachable",
      detail: `KYOZO_CADDY_ADMIN=${config.caddyAdmin} is neither a unix socket nor a loopback host:port`
    })
  }
  return { admin, dataDir: config.dataDir }
})

const statusCommand = Command.make("status", { json }, (args) =>
  Effect.gen(function* () {
    const { admin, dataDir } = yield* adminOf
    const running = yield* Admin.currentConfig(admin)
    if (Option.isNone(running)) {
      const report = { running: false, admin: Admin.describeAdmin(admin) }
      return yield* args.json
        ? printJson(report)
        : Console.log(
            `No Caddy answers at ${report.admin}. Kyozo starts one on its next start (KYOZO_EDGE=auto|caddy); with KYOZO_EDGE=inprocess the URLs live inside the Kyozo process.`
          )
    }
    // Where Kyozo runs Caddy itself, the upstreams live in the back Caddy (CaddyConfig.ts).
    const back = yield* Admin.currentConfig(Admin.backAdmin(dataDir))
    const routes = parseRoutes(running.value, Option.getOrUndefined(back))
    const health = yield* Admin.upstreamHealth(Option.isSome(back) ? Admin.backAdmin(dataDir) : admin)
    const report = {
      running: true,
      admin: Admin.describeAdmin(admin),
      pid: Admin.readPid(dataDir),
      routes: routes.map((r) => ({
        serviceId: r.serviceId,
        url: `http://127.0.0.1:${r.hostPort}`,
        hostName: r.hostName,
        simulated: r.simulated,
        upstreams: r.upstreams.map((u) => {
          const h = health.find((x) => x.address === `${u.host}:${u.port}`)
          return { address: `${u.host}:${u.port}`, requests: h?.num_requests ?? 0, fails: h?.fails ?? 0 }
        })
      }))
    }
    if (args.json) return yield* printJson(report)
    yield* Console.log(
      `Caddy at ${report.admin}${report.pid === null ? "" : ` (pid ${report.pid})`}: ${routes.length} routes`
    )
    for (const r of report.routes) {
      const ups = r.simulated
        ? "simulated"
        : r.upstreams.length === 0
          ? "no upstream (503)"
          : r.upstreams.map((u) => `${u.address}${u.fails > 0 ? ` (${u.fails} fails)` : ""}`).join(", ")
      yield* Console.log(`  ${r.url}${r.hostName ? `  ${r.hostName}` : ""}  → ${ups}  (${r.serviceId})`)
    }
  })
).pipe(Command.withDescription("Show the edge router (Caddy): its routes and upstreams"))

const stopEdgeCommand = Command.make("stop", { json }, (args) =>
  Effect.gen(function* () {
    const { admin, dataDir } = yield* adminOf
    const stopped = yield* Admin.stop(admin, dataDir)
    yield* args.json
      ? printJson({ stopped, admin: Admin.describeAdmin(admin) })
      : Console.log(
          stopped
            ? `Stopped Caddy at ${Admin.describeAdmin(admin)}. Service URLs no longer answer until Kyozo starts again.`
            : `No Caddy answers at ${Admin.describeAdmin(admin)}; nothing to stop.`
        )
  })
).pipe(Command.withDescription("Stop the edge router (Caddy); service URLs stop answering"))

export const edgeCommand = Command.make("edge").pipe(
  Command.withDescription("The edge router that serves the service URLs"),
  Command.withSubcommands([statusCommand, stopEdgeCommand]),
  Command.provide(KyozoConfig.Default)
)

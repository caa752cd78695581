/**
 * Health probes of a deployment's containers, judged through the port the engine published on
 * 127.0.0.1 the way a user's request would reach the service (never a container IP): an HTTP GET
 * (any answer below 500, or bytes that are not HTTP) or a TCP connect that stays open.
 */
import * as http from "node:http"
import * as net from "node:net"

import type { RuntimeError } from "@kyozo/api/domain/RuntimeErrors"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import type { ContainerInfo, HealthState } from "@kyozo/core/engine/ContainerRuntime"
import { Effect } from "effect"

export type ProbeKind = "http" | "tcp"

export interface ProbeTarget {
  readonly kind: ProbeKind
  /** Always 127.0.0.1: the machine's network rule (never container IPs). */
  readonly host: string
  readonly port: number
  readonly path: string
  readonly containerId: string
}

/** One probe of a published port: true when the service answers. */
export type Probe = (target: ProbeTarget, timeoutMs: number) => Effect.Effect<boolean>

const httpProbe = (target: ProbeTarget, timeoutMs: number): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    let done = false
    const finish = (ok: boolean) => {
      if (done) return
      done = true
      resume(Effect.succeed(ok))
    }
    const req = http.get(
      { host: target.host, port: target.port, path: target.path, timeout: timeoutMs, agent: false },
      (res) => {
        res.resume()
        finish((res.statusCode ?? 500) < 500)
      }
    )
    req.on("timeout", () => {
      req.destroy()
      finish(false)
    })
    req.on("error", (e: NodeJS.ErrnoException) => {
      // Bytes that are not HTTP came back: something listens and speaks another protocol.
      finish(typeof e.code === "string" && e.code.startsWith("HPE_"))
    })
    return Effect.sync(() => req.destroy())
  })

const tcpProbe = (target: ProbeTarget, timeoutMs: number): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = net.connect({ host: target.host, port: target.port })
    let done = false
    const finish = (ok: boolean) => {
      if (done) return
      done = true
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.setTimeout(timeoutMs, () => finish(false))
    socket.on("error", () => finish(false))
    // Docker's port proxy accepts before the app listens and then closes: wait a moment for that.
    socket.on("connect", () => setTimeout(() => finish(!socket.destroyed && !socket.readableEnded), 100))
    socket.on("end", () => finish(false))
    return Effect.sync(() => socket.destroy())
  })

export const defaultProbe: Probe = (target, timeoutMs) =>
  target.kind === "http" ? httpProbe(target, timeoutMs) : tcpProbe(target, timeoutMs)

/** The host port the engine published for `containerPort` on 127.0.0.1. */
export const publishedPort = (info: ContainerInfo, containerPort: number | null): number | null => {
  if (containerPort === null) return null
  const found = info.ports.find((p) => p.containerPort === containerPort && p.hostPort > 0)
  return found?.hostPort ?? null
}

/** How a service is probed, from its health config: the kind, the path and the container port. */
export const probePlanOf = (
  row: ServiceInstance
): { readonly kind: ProbeKind; readonly path: string; readonly port: number | null } => ({
  kind: row.healthConfig.type === "tcp" ? "tcp" : "http",
  path: row.healthConfig.type === "http" ? row.healthConfig.path : "/",
  port: row.healthConfig.port ?? row.internalPort
})

/** One look at a container of a service: gone for good, not up or not reachable (yet), or the probe's answer. */
export type Readiness =
  | { readonly _tag: "Exited"; readonly exitCode: number | null; readonly oomKilled: boolean }
  | { readonly _tag: "NotRunning"; readonly state: string }
  | { readonly _tag: "Unhealthy" }
  | { readonly _tag: "Unpublished"; readonly port: number }
  /** Up, but the service has no port to probe: only the time it keeps running tells. */
  | { readonly _tag: "NoPort" }
  | { readonly _tag: "Probed"; readonly answering: boolean; readonly health: HealthState }

/** Judges an inspected container and, when it is up with its port published, probes that port once. */
export const readinessOf = (
  probe: Probe,
  row: ServiceInstance,
  info: ContainerInfo,
  timeoutMs: number
): Effect.Effect<Readiness> =>
  Effect.gen(function* () {
    if (info.state === "exited" || info.state === "dead") {
      return { _tag: "Exited", exitCode: info.exitCode, oomKilled: info.oomKilled } as const
    }
    if (!info.running) return { _tag: "NotRunning", state: info.state } as const
    if (info.health === "unhealthy") return { _tag: "Unhealthy" } as const
    const plan = probePlanOf(row)
    if (plan.port === null) return { _tag: "NoPort" } as const
    const hostPort = publishedPort(info, plan.port)
    if (hostPort === null) return { _tag: "Unpublished", port: plan.port } as const
    const answering = yield* probe(
      { kind: plan.kind, host: "127.0.0.1", port: hostPort, path: plan.path, containerId: info.id },
      timeoutMs
    )
    return { _tag: "Probed", answering, health: info.health } as const
  })

/**
 * `readinessOf` with the probe sent at once, next to the inspect, when the host port is known
 * already (pinned at create): the gate's early polls then cost one engine round trip or one probe,
 * whichever is slower, not both. The inspect still decides (an exited, unhealthy or not yet running
 * container fails or waits whatever the probe said); a port other than the pinned one is probed
 * again the ordinary way.
 */
export const readinessNow = (
  probe: Probe,
  row: ServiceInstance,
  containerId: string,
  inspect: Effect.Effect<ContainerInfo, RuntimeError>,
  pinnedPort: number | null,
  timeoutMs: number
): Effect.Effect<Readiness, RuntimeError> => {
  const plan = probePlanOf(row)
  if (pinnedPort === null || plan.port === null || plan.port !== row.internalPort)
    return Effect.flatMap(inspect, (info) => readinessOf(probe, row, info, timeoutMs))
  return Effect.gen(function* () {
    const [info, early] = yield* Effect.all(
      [
        inspect,
        probe(
          { kind: plan.kind, host: "127.0.0.1", port: pinnedPort, path: plan.path, containerId },
          timeoutMs
        )
      ],
      { concurrency: 2 }
    )
    if (!info.running || info.health === "unhealthy" || publishedPort(info, plan.port) !== pinnedPort)
      return yield* readinessOf(probe, row, info, timeoutMs)
    return { _tag: "Probed", answering: early, health: info.health } as const
  })
}

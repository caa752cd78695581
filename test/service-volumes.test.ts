/**
 * Declared volumes and the TCP rule, as pure functions: compose `volumes` keep named volumes and
 * report bind mounts and anonymous ones as skipped (a tenant never mounts a host path); detection
 * carries them into the plan; the Docker volume name is per team and service name; which services
 * Docker itself publishes (TCP).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { describe, expect, it } from "@effect/vitest"
import { HealthCheckConfig } from "@kyozo/api/domain/HealthCheckConfig"
import { parseCompose } from "@kyozo/core/build/topology/Compose"
import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
import { publishedByEngine, transportOf } from "@kyozo/core/edge/Transport"
import { dockerVolumeName, mountsFor } from "@kyozo/core/engine/ServiceVolumes"
import { Effect } from "effect"

describe("compose volumes", () => {
  it("named volumes are kept (short and long form); host paths and anonymous ones are skipped", () => {
    const c = parseCompose(
      [
        "services:",
        "  db:",
        "    image: postgres:16",
        "    volumes:",
        "      - pgdata:/var/lib/postgresql/data",
        "      - ./init:/docker-entrypoint-initdb.d:ro",
        "      - /etc/passwd:/x",
        "      - /anon",
        "      - type: volume",
        "        source: ${VOL:-logs}",
        "        target: /logs",
        "      - type: bind",
        "        source: /",
        "        target: /host",
        "volumes:",
        "  pgdata: {}",
        ""
      ].join("\n")
    )
    const db = c.services[0]!
    expect(db.volumes).toEqual([
      { name: "pgdata", target: "/var/lib/postgresql/data" },
      { name: "logs", target: "/logs" }
    ])
    expect(db.skippedMounts).toHaveLength(4)
    expect(db.skippedMounts.join("\n")).toContain("./init:/docker-entrypoint-initdb.d:ro: a host path")
    expect(db.skippedMounts.join("\n")).toContain("an anonymous volume")
    expect(db.skippedMounts.join("\n")).toContain("mounts of type bind are not supported")
  })

  it.effect("detection carries the volumes into the plan, with the skipped ones as warnings", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-vol-"))
      fs.writeFileSync(
        path.join(dir, "compose.yaml"),
        "services:\n  cache:\n    image: redis:7\n    volumes:\n      - cachedata:/data\n      - ./conf:/etc/redis\n"
      )
      const plan = yield* detectPlan(dir)
      const cache = plan.services.find((p) => p.service.name === "cache")!
      expect(cache.volumes).toEqual([{ name: "cachedata", target: "/data" }])
      expect(cache.service.evidence.map((e) => e.detail).join("\n")).toContain(
        "warning: volume ./conf:/etc/redis"
      )
      fs.rmSync(dir, { recursive: true, force: true })
    })
  )

  it("one Docker volume per team, service name and declared name", () => {
    const owner = {
      id: "svc_1",
      teamId: "team_a",
      name: "db",
      volumes: [{ name: "pgdata", target: "/data" }]
    }
    expect(dockerVolumeName("team_a", "db", "pgdata")).toBe("kyozo-team_a-db-pgdata")
    expect(mountsFor(owner)).toEqual([{ source: "kyozo-team_a-db-pgdata", target: "/data" }])
  })
})

describe("transport of a service's stable port", () => {
  const row = (internalPort: number | null, type?: "http" | "tcp" | "docker") => ({
    internalPort,
    healthConfig: new HealthCheckConfig(type === undefined ? {} : { type })
  })
  it("a TCP health check or a well-known TCP port means TCP: Docker publishes the stable port", () => {
    expect(transportOf(row(6379))).toBe("tcp")
    expect(transportOf(row(5432))).toBe("tcp")
    expect(transportOf(row(9000, "tcp"))).toBe("tcp")
    expect(transportOf(row(6379, "http"))).toBe("http")
    expect(transportOf(row(8080))).toBe("http")
    expect(publishedByEngine(row(6379))).toBe(true)
    expect(publishedByEngine(row(null, "tcp"))).toBe(false)
    expect(publishedByEngine(row(3000))).toBe(false)
  })
})

/**
 * Declared volumes and the TCP rule, as pure functions: compose `volumes` keep named volumes and
 * report bind mounts and anonymous ones as skipped (a tenant never mounts a host path); detection
 * carries them into the plan; the Docker volume name is per team and service name at creation, and
 * the volume follows the service's id (a renamed service keeps it); an image's VOLUME paths get named
 * volumes too; which services Docker itself publishes (TCP).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { describe, expect, it } from "@effect/vitest"
import { HealthCheckConfig } from "@kyozo/api/domain/HealthCheckConfig"
import { parseCompose } from "@kyozo/core/build/topology/Compose"
import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
import { publishedByEngine, transportOf } from "@kyozo/core/edge/Transport"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as MockRuntime from "@kyozo/core/engine/MockRuntime"
import {
  dockerVolumeName,
  ensureVolumes,
  imageVolumeName,
  volumesOf,
  wantedVolumes
} from "@kyozo/core/engine/ServiceVolumes"
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

  it("one Docker volume per team, service name and declared name; image VOLUME paths get theirs", () => {
    expect(dockerVolumeName("team_a", "db", "pgdata")).toBe("kyozo-team_a-db-pgdata")
    expect(imageVolumeName("/data")).toBe("image-data")
    expect(imageVolumeName("/var/lib/postgresql/data/")).toBe("image-var-lib-postgresql-data")
    const long = imageVolumeName(`/${"x".repeat(80)}/a`)
    expect(long).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/)
    expect(long).not.toBe(imageVolumeName(`/${"x".repeat(80)}/b`))
    // A declared volume on a path wins over the image's VOLUME there.
    expect(
      wantedVolumes({ volumes: [{ name: "pgdata", target: "/data/" }] }, ["/data", "/logs", "relative"])
    ).toEqual([
      { name: "pgdata", target: "/data/" },
      { name: "image-logs", target: "/logs" }
    ])
  })
})

describe("the volumes of a service (engine: the mock runtime)", () => {
  const seeded = MockRuntime.layerWith({ images: [{ tag: "db:1", volumes: ["/data", "/var/log/db"] }] })

  it.effect("the image's VOLUME paths and the declared volumes are mounted as named, labelled volumes", () =>
    Effect.gen(function* () {
      const runtime = yield* ContainerRuntime
      const owner = {
        id: "svc_1",
        teamId: "team_a",
        name: "db",
        volumes: [{ name: "logs", target: "/var/log/db" }]
      }
      const mounts = yield* ensureVolumes(runtime, owner, "db:1")
      expect(mounts).toEqual([
        { source: "kyozo-team_a-db-logs", target: "/var/log/db" },
        { source: "kyozo-team_a-db-image-data", target: "/data" }
      ])
      const made = yield* runtime.listVolumes({ labels: { "kyozo.service": "svc_1" } })
      expect(made.map((v) => [v.name, v.labels["kyozo.volume"], v.labels["kyozo.managed"]]).sort()).toEqual([
        ["kyozo-team_a-db-image-data", "image-data", "true"],
        ["kyozo-team_a-db-logs", "logs", "true"]
      ])
      // Asked again (a redeploy, a replica): the same volumes, nothing new.
      expect(yield* ensureVolumes(runtime, owner, "db:1")).toEqual(mounts)
      expect(yield* runtime.listVolumes({ labels: { "kyozo.team": "team_a" } })).toHaveLength(2)
    }).pipe(Effect.provide(seeded))
  )

  it.effect("a renamed service keeps its volumes: they follow its id, not its name", () =>
    Effect.gen(function* () {
      const runtime = yield* ContainerRuntime
      const before = {
        id: "svc_1",
        teamId: "team_a",
        name: "db",
        volumes: [{ name: "pgdata", target: "/pg" }]
      }
      const first = yield* ensureVolumes(runtime, before, "db:1")
      expect(first.map((m) => m.target)).toEqual(["/pg", "/data", "/var/log/db"])
      const renamed = { ...before, name: "database" }
      expect(yield* ensureVolumes(runtime, renamed, "db:1")).toEqual(first)
      expect(yield* runtime.listVolumes({ labels: { "kyozo.team": "team_a" } })).toHaveLength(3)
      // Deleting the renamed service with its volumes finds them under its new name.
      expect((yield* volumesOf(runtime, renamed)).map((v) => v.name).sort()).toEqual(
        first.map((m) => m.source).sort()
      )
      // A new service under the old name neither mounts nor deletes the renamed one's data.
      const newcomer = { id: "svc_2", teamId: "team_a", name: "db", volumes: [] }
      const live = (id: string) => Effect.succeed(id === "svc_1")
      expect(yield* volumesOf(runtime, newcomer, live)).toEqual([])
      // A service deployed again under its name (the old row deleted) finds the old data.
      const again = { ...newcomer, volumes: before.volumes }
      expect(yield* ensureVolumes(runtime, { ...again, name: "db" }, "db:1")).toEqual(first)
      expect((yield* volumesOf(runtime, again)).map((v) => v.name).sort()).toEqual(
        first.map((m) => m.source).sort()
      )
    }).pipe(Effect.provide(seeded))
  )
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

/**
 * The cleanup pass on PGlite with the in-memory runtime: finished workflow history is pruned and a
 * running workflow's journal kept; disk pressure keeps one image per service; a service with an
 * unfinished deployment keeps its images and networks; every removal is a `cleanup.removed` event.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import { MockRuntime } from "@kyozo/core/engine/MockRuntime"
import { VolumeLabel, VolumeServiceLabel } from "@kyozo/core/engine/ServiceVolumes"
import { CleanupSettings, CleanupWorker, snowflakeAt } from "@kyozo/workers/maintenance/CleanupWorker"
import { Duration, Effect, Layer, Stream } from "effect"

import { pgliteLayer } from "./support/database.js"
import { tarOf } from "./support/docker.js"

const TEAM = "team_cleanup"
const DAY = 86_400_000

const Live = CleanupWorker.Default.pipe(
  Layer.provideMerge(MockRuntime.layer),
  Layer.provideMerge(pgliteLayer),
  Layer.orDie
)

const reset = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`TRUNCATE container_deployment_events, deployments, container_service_instances, teams CASCADE`
  yield* sql`INSERT INTO teams (id, name) VALUES (${TEAM}, 'cleanup')`
})

const insertService = (id: string, options: { readonly image?: string; readonly gone?: boolean } = {}) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql`INSERT INTO container_service_instances ${sql.insert({
        id,
        team_id: TEAM,
        name: id.replace(/_/g, "-"),
        desired_state: options.gone ? "removed" : "running",
        status: options.gone ? "removed" : "running",
        image: options.image ?? null,
        deleted_at: options.gone ? new Date() : null
      })}`
  )

const insertDeployment = (id: string, serviceId: string, status: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`INSERT INTO deployments ${sql.insert({ id, service_id: serviceId, team_id: TEAM, status })}`
  )

/** A kyozo-labelled image of the service in the mock engine; returns its tag. */
const buildImage = (serviceId: string, rev: number) =>
  Effect.gen(function* () {
    const runtime = yield* ContainerRuntime
    const tag = `kyozo/${serviceId.replace(/_/g, "-")}:r${rev}`
    const context = yield* Effect.promise(() =>
      tarOf({ Dockerfile: `FROM busybox:latest\nLABEL rev=${rev}\n` })
    )
    yield* runtime
      .buildImage({
        context: Stream.make(new Uint8Array(context)),
        tag,
        labels: Labels.labelsFor({ teamId: TEAM, serviceId })
      })
      .pipe(Stream.runDrain)
    // Distinct creation times, so "newest" is well defined.
    yield* Effect.sleep("5 millis")
    return tag
  })

const imageTags = (serviceId: string) =>
  Effect.map(
    Effect.flatMap(ContainerRuntime, (r) => r.listImages({ labels: { [Labels.Service]: serviceId } })),
    (list) => list.flatMap((i) => i.tags).sort()
  )

const removedEvents = (serviceId?: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ service_id: string | null; data: { kind: string; name: string; reason: string } }>`
      SELECT service_id, data FROM container_deployment_events
      WHERE type = 'cleanup.removed' AND ${serviceId === undefined ? sql`true` : sql`service_id = ${serviceId}`}
      ORDER BY id`
  )

const settings = (
  overrides: Partial<typeof CleanupSettings.defaultValue extends () => infer A ? A : never>
) => Layer.succeed(CleanupSettings, { ...CleanupSettings.defaultValue(), ...overrides })

/** The cluster's message tables, as @effect/cluster's SqlMessageStorage creates them on PostgreSQL. */
const clusterTables = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.zipRight(
    sql`CREATE TABLE IF NOT EXISTS cluster_messages (
      id BIGINT PRIMARY KEY, rowid BIGSERIAL, message_id VARCHAR(255), shard_id VARCHAR(50) NOT NULL,
      entity_type VARCHAR(150) NOT NULL, entity_id VARCHAR(255) NOT NULL, kind INT NOT NULL, tag VARCHAR(50),
      payload TEXT, headers TEXT, trace_id VARCHAR(32), span_id VARCHAR(16), sampled BOOLEAN,
      processed BOOLEAN NOT NULL DEFAULT FALSE, request_id BIGINT NOT NULL, reply_id BIGINT,
      last_reply_id BIGINT, last_read TIMESTAMP, deliver_at BIGINT, UNIQUE (message_id))`,
    sql`CREATE TABLE IF NOT EXISTS cluster_replies (
      id BIGINT PRIMARY KEY, rowid BIGSERIAL, kind INT, request_id BIGINT NOT NULL, payload TEXT NOT NULL,
      sequence INT, acked BOOLEAN NOT NULL DEFAULT FALSE, UNIQUE (request_id, kind), UNIQUE (request_id, sequence))`
  )
)

let seq = 0n
/** A request (kind 0) of an entity at `atMillis`, with its final reply (kind 0: WithExit) when `finished`. */
const request = (entityType: string, entityId: string, atMillis: number, finished: boolean) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    seq += 1n
    const id = (snowflakeAt(atMillis) + seq).toString()
    yield* sql`INSERT INTO cluster_messages (id, message_id, shard_id, entity_type, entity_id, kind, tag, payload, headers, request_id, processed)
      VALUES (${id}::bigint, ${`m-${id}`}, 'default:1', ${entityType}, ${entityId}, 0, 'Deploy', '{}', '{}', ${id}::bigint, ${finished})`
    if (finished) {
      seq += 1n
      const replyId = (snowflakeAt(atMillis) + seq).toString()
      yield* sql`INSERT INTO cluster_replies (id, kind, request_id, payload)
        VALUES (${replyId}::bigint, 0, ${id}::bigint, '{"_tag":"Success"}')`
    }
    return id
  })

const countRows = (entityId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ messages: number; replies: number }>`
        SELECT (SELECT count(*)::int FROM cluster_messages WHERE entity_id = ${entityId}) AS messages,
               (SELECT count(*)::int FROM cluster_replies r JOIN cluster_messages m ON m.id = r.request_id
                WHERE m.entity_id = ${entityId}) AS replies`,
      (r) => r[0]!
    )
  )

describe("cleanup pass (PGlite, mock runtime)", () => {
  layer(Live, { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.effect(
      "finished workflow history past retention is pruned; a running workflow keeps its journal",
      () =>
        Effect.gen(function* () {
          yield* reset
          yield* clusterTables
          const sql = yield* SqlClient.SqlClient
          yield* sql`DELETE FROM cluster_replies`
          yield* sql`DELETE FROM cluster_messages`
          yield* insertService("svc_wf_done")
          yield* insertService("svc_wf_running")
          yield* insertService("svc_wf_recent")
          const now = Date.now()
          // Finished long ago: two deploys, both replied.
          yield* request("ServiceEntity", "svc_wf_done", now - 10 * DAY, true)
          yield* request("ServiceEntity", "svc_wf_done", now - 9 * DAY, true)
          // Old, but its second request has no final reply yet: a workflow still running.
          yield* request("ServiceEntity", "svc_wf_running", now - 10 * DAY, true)
          yield* request("ServiceEntity", "svc_wf_running", now - 9 * DAY, false)
          // Finished, but inside the retention.
          yield* request("ServiceEntity", "svc_wf_recent", now - 2 * DAY, true)

          const report = yield* Effect.flatMap(CleanupWorker, (c) => c.run)
          expect(report.notes).toContain("2 workflow history messages pruned")
          expect(yield* countRows("svc_wf_done")).toEqual({ messages: 0, replies: 0 })
          expect(yield* countRows("svc_wf_running")).toEqual({ messages: 2, replies: 1 })
          expect(yield* countRows("svc_wf_recent")).toEqual({ messages: 1, replies: 1 })
          const events = yield* removedEvents()
          expect(events.map((e) => [e.service_id, e.data.kind, e.data.name])).toEqual([
            ["svc_wf_done", "workflow-history", "ServiceEntity/svc_wf_done"]
          ])
          // Level-driven: a second pass finds nothing more to prune.
          const again = yield* Effect.flatMap(CleanupWorker, (c) => c.run)
          expect(again.notes).toContain("0 workflow history messages pruned")
        }).pipe(Effect.provide(settings({ workflowRetention: Duration.days(7) })))
    )

    it.effect("disk pressure keeps one image per service; without pressure the rollback set stays", () =>
      Effect.gen(function* () {
        yield* reset
        const cleanup = yield* CleanupWorker
        const tags: Array<string> = []
        for (let rev = 1; rev <= 3; rev++) tags.push(yield* buildImage("svc_disk", rev))
        yield* insertService("svc_disk", { image: tags[2]! })

        const relaxed = yield* cleanup.run.pipe(Effect.provide(settings({ keepImages: 5 })))
        expect(relaxed.notes.some((n) => n.startsWith("0 rollback images pruned (keep 5,"))).toBe(true)
        expect(yield* imageTags("svc_disk")).toEqual([...tags].sort())

        // Any image bytes at all are "too many": prune hard.
        const pressed = yield* cleanup.run.pipe(
          Effect.provide(settings({ keepImages: 5, diskThresholdBytes: 1, keepImagesUnderPressure: 1 }))
        )
        expect(
          pressed.notes.some((n) => n.startsWith("2 rollback images pruned (keep 1, disk pressure"))
        ).toBe(true)
        expect(yield* imageTags("svc_disk")).toEqual([tags[2]])
        const events = yield* removedEvents("svc_disk")
        expect(events.map((e) => e.data.kind)).toEqual(["image", "image"])
        expect(events.map((e) => e.data.name).sort()).toEqual([tags[0], tags[1]].sort())
        for (const e of events) expect(e.data.reason).toBe("beyond the newest 1")
      })
    )

    it.effect("a service with an unfinished deployment keeps its images and networks, even deleted", () =>
      Effect.gen(function* () {
        yield* reset
        const runtime = yield* ContainerRuntime
        const sql = yield* SqlClient.SqlClient
        const cleanup = yield* CleanupWorker
        const pressure = settings({ diskThresholdBytes: 1, keepImagesUnderPressure: 1 })
        const busy = [yield* buildImage("svc_busy", 1), yield* buildImage("svc_busy", 2)]
        yield* insertService("svc_busy", { gone: true })
        yield* insertDeployment("dep_busy", "svc_busy", "building")
        const network = yield* runtime.createNetwork({
          name: "kyozo-busy-net",
          labels: Labels.labelsFor({ teamId: TEAM, serviceId: "svc_busy" })
        })
        const volume = yield* runtime.createVolume({
          name: "kyozo-busy-vol",
          labels: Labels.labelsFor({ teamId: TEAM, serviceId: "svc_busy" })
        })

        yield* cleanup.run.pipe(Effect.provide(pressure))
        expect(yield* imageTags("svc_busy")).toEqual([...busy].sort())
        const networks = (yield* runtime.listNetworks({ labels: { [Labels.Service]: "svc_busy" } })).map(
          (n) => n.id
        )
        expect(networks).toEqual([network.id])
        expect(
          (yield* runtime.listVolumes({ labels: { [Labels.Service]: "svc_busy" } })).map((v) => v.name)
        ).toEqual([volume.name])
        expect(yield* removedEvents("svc_busy")).toHaveLength(0)

        // The deployment ends: now the deleted service's objects go, each with its event.
        yield* sql`UPDATE deployments SET status = 'failed' WHERE id = 'dep_busy'`
        yield* cleanup.run.pipe(Effect.provide(pressure))
        expect(yield* imageTags("svc_busy")).toEqual([])
        expect(yield* runtime.listNetworks({ labels: { [Labels.Service]: "svc_busy" } })).toHaveLength(0)
        expect(yield* runtime.listVolumes({ labels: { [Labels.Service]: "svc_busy" } })).toHaveLength(0)
        const kinds = (yield* removedEvents("svc_busy")).map((e) => e.data.kind).sort()
        expect(kinds).toEqual(["image", "image", "network", "volume"])
      })
    )

    it.effect("a deleted service's data volumes stay (only kyozo rm --volumes removes them)", () =>
      Effect.gen(function* () {
        yield* reset
        const runtime = yield* ContainerRuntime
        const cleanup = yield* CleanupWorker
        yield* insertService("svc_data", { gone: true })
        const data = yield* runtime.createVolume({
          name: "kyozo-data-vol",
          labels: Labels.labelsFor(
            { teamId: TEAM, serviceId: "svc_data" },
            { [VolumeLabel]: "pgdata", [VolumeServiceLabel]: "svc-data" }
          )
        })
        const scratch = yield* runtime.createVolume({
          name: "kyozo-scratch-vol",
          labels: Labels.labelsFor({ teamId: TEAM, serviceId: "svc_data" })
        })
        yield* cleanup.run
        const left = (yield* runtime.listVolumes({ labels: { [Labels.Service]: "svc_data" } })).map(
          (v) => v.name
        )
        expect(left).toEqual([data.name])
        expect(left).not.toContain(scratch.name)
      })
    )

    it.effect("every removed container is a cleanup.removed event; running and current ones stay", () =>
      Effect.gen(function* () {
        yield* reset
        const runtime = yield* ContainerRuntime
        const sql = yield* SqlClient.SqlClient
        yield* insertService("svc_ctr")
        yield* insertDeployment("dep_old", "svc_ctr", "succeeded")
        yield* insertDeployment("dep_new", "svc_ctr", "succeeded")
        yield* sql`UPDATE container_service_instances SET current_deployment_id = 'dep_new' WHERE id = 'svc_ctr'`
        const make = (name: string, deploymentId: string, start: boolean) =>
          Effect.gen(function* () {
            const ref = yield* runtime.createContainer({
              name,
              image: "busybox:latest",
              labels: Labels.labelsFor({ teamId: TEAM, serviceId: "svc_ctr", deploymentId })
            })
            if (start) yield* runtime.startContainer(ref.id)
            return ref.id
          })
        const stale = [yield* make("ctr-old-1", "dep_old", false), yield* make("ctr-old-2", "dep_old", false)]
        const oldRunning = yield* make("ctr-old-running", "dep_old", true)
        const current = yield* make("ctr-new", "dep_new", true)
        const report = yield* Effect.flatMap(CleanupWorker, (c) => c.run)
        expect(report.acted).toBe(2)
        const left = (yield* runtime.listContainers({ all: true, labels: { [Labels.Service]: "svc_ctr" } }))
          .map((c) => c.id)
          .sort()
        expect(left).toEqual([oldRunning, current].sort())
        for (const id of stale) expect(left).not.toContain(id)
        const events = yield* removedEvents("svc_ctr")
        expect(events.map((e) => [e.data.kind, e.data.name]).sort()).toEqual([
          ["container", "ctr-old-1"],
          ["container", "ctr-old-2"]
        ])
      })
    )
  })
})

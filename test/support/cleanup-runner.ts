/**
 * A Kyozo process for the mid-cleanup crash test, run with `node --import tsx`: PGlite in a data
 * folder, the real Docker engine, the workers' cleanup pass.
 *
 *   seed <dataDir> <team> <labelsJson> <n>   a service with a running current container and n exited
 *                                            superseded ones; prints SEEDED
 *   cleanup <dataDir> <delayMs>              one cleanup pass, each removal slowed by delayMs and
 *                                            announced with a REMOVING line; prints DONE
 *   check <dataDir> <team>                   prints STATE: the service row, the engine's containers,
 *                                            and the cleanup.removed events
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { ContainerRuntime } from "@kyozo/core/engine/ContainerRuntime"
import * as DockerRuntime from "@kyozo/core/engine/DockerRuntime"
import * as Labels from "@kyozo/core/engine/Labels"
import * as Database from "@kyozo/core/store/Database"
import { MaintenancePasses } from "@kyozo/core/supervision/MaintenancePasses"
import * as Workers from "@kyozo/workers/Workers"
import { Effect, Layer, Logger, LogLevel } from "effect"

const [mode, dataDir, ...rest] = process.argv.slice(2)
const say = (tag: string, value: unknown) => process.stdout.write(`${tag} ${JSON.stringify(value)}\n`)
const SERVICE = "svc_crashclean"

/** The engine, with removals announced and slowed so a SIGKILL lands between two of them. */
const SlowRemovals = (delayMs: number) =>
  Layer.effect(
    ContainerRuntime,
    Effect.gen(function* () {
      const inner = yield* DockerRuntime.make({ dockerHost: process.env.DOCKER_HOST, timeout: "20 seconds" })
      // One removal at a time, so the kill lands after some removals and before others.
      const one = yield* Effect.makeSemaphore(1)
      return {
        ...inner,
        removeContainer: (id: string, options?: { readonly force?: boolean }) =>
          one.withPermits(1)(
            Effect.sync(() => say("REMOVING", id)).pipe(
              Effect.zipRight(Effect.sleep(delayMs)),
              Effect.zipRight(inner.removeContainer(id, options))
            )
          )
      }
    })
  )

const Db = Database.migrated(Database.layerPglite(dataDir!))

const seed = Effect.gen(function* () {
  const [team, labelsJson, n] = rest
  const extra = JSON.parse(labelsJson!) as Record<string, string>
  const sql = yield* SqlClient.SqlClient
  const runtime = yield* ContainerRuntime
  yield* sql`INSERT INTO teams (id, name) VALUES (${team!}, ${`crash-${team}`})`
  const make = (deploymentId: string, start: boolean) =>
    Effect.gen(function* () {
      const ref = yield* runtime.createContainer({
        name: `kyozo-crashclean-${team}-${deploymentId}`.replace(/_/g, "-"),
        image: "kyozo-local/static:latest",
        cmd: start ? ["sleep", "600"] : ["true"],
        labels: Labels.labelsFor({ teamId: team!, serviceId: SERVICE, deploymentId }, extra)
      })
      if (start) yield* runtime.startContainer(ref.id)
      return ref.id
    })
  const current = yield* make("dep_current", true)
  const old = yield* Effect.forEach(
    Array.from({ length: Number(n) }, (_, i) => `dep_old${i}`),
    (d) => make(d, false)
  )
  yield* sql`INSERT INTO container_service_instances ${sql.insert({
    id: SERVICE,
    team_id: team!,
    name: "crashclean",
    desired_state: "running",
    status: "running",
    container_id: current,
    current_deployment_id: "dep_current"
  })}`
  say("SEEDED", { current, old })
})

const cleanup = Effect.gen(function* () {
  const passes = yield* MaintenancePasses
  const report = yield* passes.cleanup
  say("DONE", report)
})

const check = Effect.gen(function* () {
  const [team] = rest
  const sql = yield* SqlClient.SqlClient
  const runtime = yield* ContainerRuntime
  const [service] = yield* sql<{ container_id: string | null; status: string }>`
    SELECT container_id, status FROM container_service_instances WHERE id = ${SERVICE}`
  const containers = yield* runtime.listContainers({ all: true, labels: { [Labels.Team]: team! } })
  const events = yield* sql<{ data: { name: string } }>`
    SELECT data FROM container_deployment_events WHERE type = 'cleanup.removed' AND team_id = ${team!}`
  say("STATE", {
    service,
    containers: containers.map((c) => ({ id: c.id, name: c.name, state: c.state })),
    removedEvents: events.map((e) => e.data.name)
  })
})

const delay = Number(rest[0] ?? 0)
const main =
  mode === "seed"
    ? seed.pipe(Effect.provide(Layer.merge(Db, DockerRuntime.layer)))
    : mode === "cleanup"
      ? cleanup.pipe(
          Effect.provide(Workers.layer.pipe(Layer.provideMerge(SlowRemovals(delay)), Layer.provideMerge(Db)))
        )
      : check.pipe(Effect.provide(Layer.merge(Db, DockerRuntime.layer)))

Effect.runPromise(main.pipe(Logger.withMinimumLogLevel(LogLevel.Warning))).then(
  () => process.exit(0),
  (e) => {
    say("FAILED", String(e))
    process.exit(1)
  }
)

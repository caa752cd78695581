/**
 * The durable engine runs workflows and entities on PGlite (always) and on PostgreSQL (when
 * DATABASE_URL is set). Each database gets the same three checks: a two-activity workflow
 * completes, re-executing with the same idempotency key replays the stored result without
 * re-running activities, and a persisted entity answers a message.
 */
import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import * as Entity from "@effect/cluster/Entity"
import * as Sharding from "@effect/cluster/Sharding"
import * as Rpc from "@effect/rpc/Rpc"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { describe, expect, it, layer } from "@effect/vitest"
import * as Activity from "@effect/workflow/Activity"
import * as Workflow from "@effect/workflow/Workflow"
import { PGlite } from "@electric-sql/pglite"
import { createPgConfig } from "@electric-sql/pglite/node-postgres"
import * as DurableEngine from "@kyozo/workers/deploy/DurableEngine"
import { Effect, Layer, Redacted, Schema } from "effect"
import pg from "pg"

// PostgreSQL keeps results between test runs: fresh ids per run, or a replay would look like a bug.
const run = Date.now().toString(36)

// Activity executions per workflow id: a replay must not add to these.
const runs = new Map<string, { first: number; second: number }>()
const countsFor = (id: string) => {
  let c = runs.get(id)
  if (!c) runs.set(id, (c = { first: 0, second: 0 }))
  return c
}

const Greet = Workflow.make({
  name: "DurableEngineTest/Greet",
  payload: { id: Schema.String, name: Schema.String },
  success: Schema.String,
  idempotencyKey: (p) => p.id
})

const GreetLive = Greet.toLayer(
  Effect.fn(function* (payload) {
    const first = yield* Activity.make({
      name: "first",
      success: Schema.Number,
      execute: Effect.sync(() => ++countsFor(payload.id).first)
    })
    const second = yield* Activity.make({
      name: "second",
      success: Schema.String,
      execute: Effect.sync(() => {
        countsFor(payload.id).second++
        return `hello ${payload.name}`
      })
    })
    return `${second} (${first})`
  })
)

const Counter = Entity.make("DurableEngineTest/Counter", [
  Rpc.make("Add", { payload: { amount: Schema.Number }, success: Schema.Number })
]).annotateRpcs(ClusterSchema.Persisted, true)

const CounterLive = Counter.toLayer(
  Effect.sync(() => {
    let total = 0
    return { Add: (envelope) => Effect.sync(() => (total += envelope.payload.amount)) }
  })
)

const pgliteClient = Layer.unwrapScoped(
  Effect.gen(function* () {
    const db = yield* Effect.acquireRelease(
      Effect.promise(() => PGlite.create()),
      (db) => Effect.promise(() => db.close())
    )
    return PgClient.layerFromPool({
      acquire: Effect.acquireRelease(
        Effect.sync(() => new pg.Pool({ ...createPgConfig(db), max: 1 })),
        (pool) => Effect.promise(() => pool.end())
      )
    })
  })
)

const engineOn = (kind: DurableEngine.DatabaseKind, client: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  Layer.mergeAll(GreetLive, CounterLive).pipe(
    Layer.provideMerge(DurableEngine.layer(kind)),
    Layer.provideMerge(client),
    Layer.orDie
  )

const checks = (kind: DurableEngine.DatabaseKind, client: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  layer(engineOn(kind, client), { excludeTestServices: true, timeout: "60 seconds" })(kind, (it) => {
    it.effect("the runner acquires its shards", () =>
      Effect.gen(function* () {
        yield* DurableEngine.awaitReady({ timeout: "20 seconds" })
        const sharding = yield* Sharding.Sharding
        expect(yield* sharding.isShutdown).toBe(false)
      })
    )

    it.effect("a two-activity workflow runs to completion", () =>
      Effect.gen(function* () {
        const id = `${kind}-wf-1-${run}`
        const result = yield* Greet.execute({ id, name: "kyozo" })
        expect(result).toBe("hello kyozo (1)")
        expect(countsFor(id)).toEqual({ first: 1, second: 1 })
      })
    )

    it.effect("the same idempotency key returns the stored result without re-running activities", () =>
      Effect.gen(function* () {
        const id = `${kind}-wf-2-${run}`
        const a = yield* Greet.execute({ id, name: "first call" })
        // Different payload, same key: the stored result wins, so nothing re-ran.
        const b = yield* Greet.execute({ id, name: "second call" })
        expect(a).toBe("hello first call (1)")
        expect(b).toBe(a)
        expect(countsFor(id)).toEqual({ first: 1, second: 1 })
        // A new key runs the activities again.
        const c = yield* Greet.execute({ id: `${kind}-wf-3-${run}`, name: "other" })
        expect(c).toBe("hello other (1)")
        expect(countsFor(`${kind}-wf-3-${run}`)).toEqual({ first: 1, second: 1 })
      })
    )

    it.effect("a persisted entity answers messages, one at a time per id", () =>
      Effect.gen(function* () {
        const makeClient = yield* Counter.client
        const counter = makeClient(`${kind}-counter-1-${run}`)
        expect(yield* counter.Add({ amount: 2 })).toBe(2)
        expect(yield* counter.Add({ amount: 3 })).toBe(5)
        const other = makeClient(`${kind}-counter-2-${run}`)
        expect(yield* other.Add({ amount: 10 })).toBe(10)
      })
    )

    it.effect("workflow and entity messages are stored in SQL", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM cluster_messages`
        expect(rows[0]!.n).toBeGreaterThan(0)
        const runners = yield* sql<{ n: number }>`
          SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'cluster_runners'`
        // Runner storage is SQL only on PostgreSQL (PGlite keeps runners in memory).
        expect(runners[0]!.n).toBe(kind === "postgres" ? 1 : 0)
      })
    )
  })

describe("DurableEngine", () => {
  checks("pglite", pgliteClient)

  const url = process.env.DATABASE_URL
  if (url) {
    checks("postgres", PgClient.layer({ url: Redacted.make(url) }))
  } else if (process.env.KYOZO_REQUIRE_POSTGRES === "1") {
    it("PostgreSQL is required (KYOZO_REQUIRE_POSTGRES=1) but DATABASE_URL is unset", () => {
      expect.fail("set DATABASE_URL to run the durable engine on PostgreSQL")
    })
  } else {
    console.warn("[durable-engine.test] DATABASE_URL unset: the PostgreSQL engine checks are SKIPPED")
    // Skipped on purpose, and loudly: without DATABASE_URL there is no PostgreSQL to run on. CI sets
    // DATABASE_URL and KYOZO_REQUIRE_POSTGRES=1, so there these checks run (or the branch above fails).
    it.skip("on PostgreSQL: skipped because DATABASE_URL is unset (no PostgreSQL here; CI sets it)", () => {}) // reason: no PostgreSQL configured on this machine
  }

  it.effect("layerMemory runs a workflow without a database", () =>
    Effect.gen(function* () {
      const id = "memory-wf-1"
      const result = yield* Greet.execute({ id, name: "memory" })
      expect(result).toBe("hello memory (1)")
      expect(countsFor(id)).toEqual({ first: 1, second: 1 })
    }).pipe(Effect.provide(GreetLive.pipe(Layer.provideMerge(DurableEngine.layerMemory))))
  )
})

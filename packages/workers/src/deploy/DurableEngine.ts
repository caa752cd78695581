/**
 * The durable engine: `@effect/cluster` (one runner, SQL message storage on Kyozo's own database)
 * with `@effect/workflow` on top. The deploy workflow and the per-service entity register on it.
 *
 * Runner storage depends on the database: `"sql"` on PostgreSQL so
 * shard locks are real, `"memory"` on PGlite because SqlRunnerStorage reserves a connection for
 * its locks and PGlite has exactly one (the runner deadlocks). Messages are stored in SQL in both
 * cases, so workflows resume after a crash either way.
 */
import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import { EntityId } from "@effect/cluster/EntityId"
import type * as MessageStorage from "@effect/cluster/MessageStorage"
import * as Sharding from "@effect/cluster/Sharding"
import type * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SingleRunner from "@effect/cluster/SingleRunner"
import * as TestRunner from "@effect/cluster/TestRunner"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import { Database, type DatabaseKind } from "@kyozo/core/store/Database"
import { Data, Duration, Effect, Layer, Schedule } from "effect"
import type * as ConfigError from "effect/ConfigError"

export type { DatabaseKind }

export interface DurableEngineOptions {
  /** Overrides on top of Kyozo's defaults (which already lower the poll intervals). */
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
}

/**
 * Kyozo's sharding defaults. The cluster's own defaults poll stored messages every 10 s, which
 * would make a deploy sent before the shards are acquired wait that long; one runner on a local
 * database can afford to poll often (a small indexed query).
 */
export const shardingDefaults: Partial<ShardingConfig.ShardingConfig["Type"]> = {
  entityMessagePollInterval: Duration.millis(500),
  entityReplyPollInterval: Duration.millis(100),
  refreshAssignmentsInterval: Duration.seconds(1),
  sendRetryInterval: Duration.millis(50),
  // Persisted messages are serialized anyway; skipping the simulated round trip saves CPU.
  simulateRemoteSerialization: false
}

/** `"sql"` runner storage only where it is safe (see the module comment). */
export const runnerStorageFor = (kind: DatabaseKind): "sql" | "memory" =>
  kind === "postgres" ? "sql" : "memory"

export type DurableEngineServices =
  Sharding.Sharding | WorkflowEngine.WorkflowEngine | MessageStorage.MessageStorage

/**
 * The engine on Kyozo's database. Cluster tables (`cluster_messages`, `cluster_replies`, and on
 * PostgreSQL `cluster_runners`, `cluster_locks`) are created by the cluster at start.
 */
export const layer = (
  kind: DatabaseKind,
  options: DurableEngineOptions = {}
): Layer.Layer<DurableEngineServices, ConfigError.ConfigError, SqlClient.SqlClient> =>
  ClusterWorkflowEngine.layer.pipe(
    Layer.provideMerge(
      SingleRunner.layer({
        runnerStorage: runnerStorageFor(kind),
        shardingConfig: { ...shardingDefaults, ...options.shardingConfig }
      })
    )
  )

/** The engine on the application's database, its runner storage chosen from `Database.kind`. */
export const layerFromDatabase = (
  options: DurableEngineOptions = {}
): Layer.Layer<DurableEngineServices, ConfigError.ConfigError, SqlClient.SqlClient | Database> =>
  Layer.unwrapEffect(Effect.map(Database, (db) => layer(db.kind, options)))

/**
 * The same engine on in-memory storage, for unit tests that want entities and cluster-run
 * workflows without a database.
 */
export const layerTest: Layer.Layer<DurableEngineServices> = ClusterWorkflowEngine.layer.pipe(
  Layer.provideMerge(TestRunner.layer)
)

/** Workflows only, no cluster: the lightest engine for unit tests of workflow logic. */
export const layerMemory: Layer.Layer<WorkflowEngine.WorkflowEngine> = WorkflowEngine.layerMemory

export class EngineNotReady extends Data.TaggedError("EngineNotReady")<{
  readonly waitedMs: number
}> {
  override get message() {
    return `The cluster runner did not acquire its shards within ${this.waitedMs} ms; check the database connection and the cluster_locks table.`
  }
}

/**
 * Waits until the runner holds the shard of a probe entity id. A message sent earlier is not lost,
 * but waits for the next storage poll; callers that want a prompt first answer wait here.
 */
export const awaitReady = (
  options: { readonly timeout?: Duration.DurationInput; readonly group?: string } = {}
): Effect.Effect<void, EngineNotReady, Sharding.Sharding> =>
  Effect.gen(function* () {
    const sharding = yield* Sharding.Sharding
    const shardId = sharding.getShardId(EntityId.make("kyozo-readiness-probe"), options.group ?? "default")
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(30))
    yield* Effect.sync(() => sharding.hasShardId(shardId)).pipe(
      Effect.repeat({ schedule: Schedule.spaced(Duration.millis(20)), until: (held) => held }),
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new EngineNotReady({ waitedMs: Duration.toMillis(timeout) })
      })
    )
  })

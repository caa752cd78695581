import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { makeTeamId } from "@kyozo/api/domain/Ids"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import {
  Database,
  DatabaseLocked,
  DatabaseUnavailable,
  layer as databaseLayer,
  layerPglite,
  layerPostgres
} from "@kyozo/core/store/Database"
import * as Migrations from "@kyozo/core/store/Migrations"
import { Cause, ConfigProvider, Effect, Exit, Layer, Option } from "effect"

import {
  createSchema,
  databaseUrl,
  describeEachDatabase,
  dropSchema,
  makeTempDir,
  seedPgliteDir,
  withSearchPath
} from "./support/database.js"

const tables = [
  "teams",
  "users",
  "memberships",
  "api_keys",
  "container_service_instances",
  "deployments",
  "container_deployment_events",
  "container_topology_detections",
  "container_service_dependencies",
  "health_checks",
  "service_permissions",
  "metric_samples"
]

/** Tables of the current search_path schema. */
const currentTables = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ tableName: string }>`
    SELECT table_name AS "tableName" FROM information_schema.tables WHERE table_schema = current_schema()`
  return rows.map((r) => r.tableName).sort()
})

/** Migrations on an empty schema: everything applies once, then nothing. */
const migrateTwice = Effect.gen(function* () {
  const first = yield* Migrations.run()
  const second = yield* Migrations.run()
  return { first, second, tables: yield* currentTables }
})

/** The database's own message of a failed statement. */
const failureText = (exit: Exit.Exit<unknown, SqlError>): string =>
  Exit.isFailure(exit)
    ? Cause.failureOption(exit.cause).pipe(
        Option.map((e) => String((e.cause as Error | undefined)?.message ?? e.message)),
        Option.getOrElse(() => Cause.pretty(exit.cause))
      )
    : ""

/** A pid that certainly belonged to a process that has exited. */
const deadPid = (): number => {
  const child = spawnSync(process.execPath, ["-e", ""])
  expect(child.pid).toBeGreaterThan(0)
  return child.pid!
}

/** Every migration file in the folder, as the migrator names them: [id, name]. */
const migrationFiles: ReadonlyArray<readonly [number, string]> = fs
  .readdirSync(Migrations.defaultMigrationsDirectory)
  .flatMap((f) => {
    const m = /^(\d+)_(.+)\.sql$/.exec(f)
    return m ? [[Number(m[1]), m[2]!] as const] : []
  })
  .sort((a, b) => a[0] - b[0])

describeEachDatabase("database", (it, db) => {
  it.effect("reports its kind", () =>
    Effect.gen(function* () {
      const database = yield* Database
      expect(database.kind).toBe(db.name)
    })
  )

  it.effect("is migrated, and a second run applies nothing", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const applied = yield* sql<{ migrationId: number; name: string }>`
            SELECT migration_id AS "migrationId", name FROM kyozo_migrations ORDER BY migration_id`
      expect(applied.map((a) => [a.migrationId, a.name])).toEqual(migrationFiles)
      expect(yield* Migrations.run()).toEqual([])
      const present = yield* currentTables
      for (const table of tables) expect(present).toContain(table)
    })
  )

  it.effect("keeps deployment events append-only: UPDATE and DELETE are rejected", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const teamId = makeTeamId()
      yield* sql`INSERT INTO teams (id, name) VALUES (${teamId}, ${teamId})`
      const [row] = yield* sql<{ id: string }>`
            INSERT INTO container_deployment_events (team_id, type) VALUES (${teamId}, 'test') RETURNING id`
      const update = yield* Effect.exit(
        sql`UPDATE container_deployment_events SET message = 'changed' WHERE id = ${row!.id}`
      )
      const remove = yield* Effect.exit(sql`DELETE FROM container_deployment_events WHERE id = ${row!.id}`)
      for (const exit of [update, remove]) {
        expect(Exit.isFailure(exit)).toBe(true)
        expect(failureText(exit)).toMatch(/append-only/)
      }
      const [kept] = yield* sql<{ message: string }>`
            SELECT message FROM container_deployment_events WHERE id = ${row!.id}`
      expect(kept?.message).toBe("")
    })
  )

  it.effect("a failing migration fails typed and is rolled back", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const dir = makeTempDir("kyozo-bad-migrations-")
      for (const name of fs.readdirSync(Migrations.defaultMigrationsDirectory)) {
        fs.copyFileSync(path.join(Migrations.defaultMigrationsDirectory, name), path.join(dir, name))
      }
      fs.writeFileSync(
        path.join(dir, "9999_broken.sql"),
        "CREATE TABLE kyozo_should_not_exist (id int);\nSELECT * FROM no_such_table;\n"
      )
      const error = yield* Effect.flip(Migrations.run({ directory: dir }))
      expect(error._tag).toBe("MigrationFailed")
      expect(error.message).toMatch(/9999_broken/)
      const [latest] = yield* sql<{ id: number }>`SELECT max(migration_id) AS id FROM kyozo_migrations`
      expect(latest?.id).toBeLessThan(9999)
      expect(yield* currentTables).not.toContain("kyozo_should_not_exist")
    })
  )
})

describe("PGlite folder", () => {
  it.effect(
    "a fresh folder gets every migration once",
    () =>
      Effect.gen(function* () {
        const dir = makeTempDir("kyozo-fresh-pglite-")
        const result = yield* migrateTwice.pipe(Effect.provide(layerPglite(dir)))
        expect(result.first).toEqual(migrationFiles)
        expect(result.second).toEqual([])
        for (const table of tables) expect(result.tables).toContain(table)
      }),
    90_000
  )

  it.effect(
    "a fresh folder is a copy of the initdb template, with small shared buffers",
    () =>
      Effect.gen(function* () {
        const showBuffers = Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql<{ readonly shared_buffers: string }>`SHOW shared_buffers`.pipe(
            Effect.map((rows) => rows[0]?.shared_buffers)
          )
        )
        const first = makeTempDir("kyozo-fresh-a-")
        const second = makeTempDir("kyozo-fresh-b-")
        expect(yield* showBuffers.pipe(Effect.provide(layerPglite(first)))).toBe("16MB")
        expect(yield* showBuffers.pipe(Effect.provide(layerPglite(second)))).toBe("16MB")
        // Both came from the same template (initdb ran at most once, in a child process): same cluster id.
        const systemId = (dir: string) =>
          fs
            .readFileSync(path.join(dir, "pgdata", "global", "pg_control"))
            .subarray(0, 8)
            .toString("hex")
        expect(systemId(second)).toBe(systemId(first))
        // No temporary folders are left beside the data.
        expect(fs.readdirSync(second).filter((name) => name.startsWith("pgdata."))).toEqual([])
      }),
    90_000
  )

  it.effect(
    "is locked while open: a second layer fails with DatabaseLocked, and the lock goes on close",
    () =>
      Effect.gen(function* () {
        const dir = makeTempDir("kyozo-lock-")
        yield* seedPgliteDir(dir)
        const lockFile = path.join(dir, "kyozo.lock")
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* Layer.build(layerPglite(dir))
            expect(fs.readFileSync(lockFile, "utf8").split("\n")[0]).toBe(String(process.pid))
            const error = yield* Effect.flip(Effect.scoped(Layer.build(layerPglite(dir))))
            expect(error).toBeInstanceOf(DatabaseLocked)
            expect(error).toMatchObject({ _tag: "DatabaseLocked", path: lockFile, pid: process.pid })
            expect(error.message).toMatch(/KYOZO_DATA_DIR/)
            // The refused layer did not remove the holder's lock.
            expect(fs.existsSync(lockFile)).toBe(true)
          })
        )
        expect(fs.existsSync(lockFile)).toBe(false)
      })
  )

  it.effect("takes over a stale lock left by a dead process", () =>
    Effect.gen(function* () {
      const dir = makeTempDir("kyozo-stale-")
      yield* seedPgliteDir(dir)
      const lockFile = path.join(dir, "kyozo.lock")
      const pid = deadPid()
      fs.writeFileSync(lockFile, `${pid}\nsomeone-else\n`)
      const kinds = yield* Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        expect(fs.readFileSync(lockFile, "utf8").split("\n")[0]).toBe(String(process.pid))
        return yield* sql<{ n: number }>`SELECT 1 AS n`
      }).pipe(Effect.provide(layerPglite(dir)))
      expect(kinds).toEqual([{ n: 1 }])
      expect(fs.existsSync(lockFile)).toBe(false)
    })
  )

  it.effect("Database.layer picks PGlite under KYOZO_DATA_DIR when DATABASE_URL is unset", () =>
    Effect.gen(function* () {
      const dir = makeTempDir("kyozo-config-")
      yield* seedPgliteDir(dir)
      const config = KyozoConfig.Default.pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["KYOZO_DATA_DIR", dir]]))))
      )
      const database = yield* Database.pipe(Effect.provide(databaseLayer.pipe(Layer.provide(config))))
      expect(database).toEqual({ kind: "pglite", location: dir })
    })
  )
})

describe("PostgreSQL", () => {
  it.effect("an unreachable server fails with DatabaseUnavailable", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.scoped(Layer.build(layerPostgres("postgres://kyozo:secret@127.0.0.1:1/nowhere")))
      )
      expect(error).toBeInstanceOf(DatabaseUnavailable)
      expect(error).toMatchObject({ kind: "postgres", location: "127.0.0.1:1/nowhere" })
      expect(error.message).not.toContain("secret")
      expect(error.message).toMatch(/start-postgres\.sh/)
    })
  )

  it.effect.skipIf(databaseUrl === undefined)(
    "Database.layer picks PostgreSQL when DATABASE_URL is set",
    () =>
      Effect.gen(function* () {
        const url = databaseUrl!
        const schema = yield* Effect.promise(() => createSchema(url))
        const config = KyozoConfig.Default.pipe(
          Layer.provide(
            Layer.setConfigProvider(
              ConfigProvider.fromMap(new Map([["DATABASE_URL", withSearchPath(url, schema)]]))
            )
          )
        )
        const result = yield* Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const [row] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM kyozo_migrations`
          return { database: yield* Database, migrations: row?.n }
        }).pipe(
          Effect.provide(databaseLayer.pipe(Layer.provide(config))),
          Effect.ensuring(Effect.promise(() => dropSchema(url, schema)))
        )
        expect(result.database.kind).toBe("postgres")
        // host:port/database of the URL given (whichever database this run uses): no credentials.
        const given = new URL(url)
        expect(result.database.location).toBe(`${given.hostname}:${given.port || "5432"}${given.pathname}`)
        expect(result.database.location).not.toContain("@")
        expect(result.migrations).toBeGreaterThanOrEqual(1)
      })
  )

  it.effect.skipIf(databaseUrl === undefined)("a fresh schema gets every migration once", () =>
    Effect.gen(function* () {
      const url = databaseUrl!
      const schema = yield* Effect.promise(() => createSchema(url))
      const result = yield* migrateTwice.pipe(
        Effect.provide(layerPostgres(withSearchPath(url, schema))),
        Effect.ensuring(Effect.promise(() => dropSchema(url, schema)))
      )
      expect(result.first).toEqual(migrationFiles)
      expect(result.second).toEqual([])
      for (const table of tables) expect(result.tables).toContain(table)
    })
  )
})

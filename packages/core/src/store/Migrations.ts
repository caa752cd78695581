/**
 * Schema migrations: the numbered `migrations/NNNN_name.sql` files, applied in order by the
 * @effect/sql Migrator and recorded in `kyozo_migrations`. Files are read at run time, so adding a
 * migration needs no code change.
 */
import { existsSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option, Schema } from "effect"

export const migrationsTable = "kyozo_migrations"

/**
 * The repository's `migrations/` folder: the nearest one above this module. Found by walking up,
 * not by a fixed `../..`, because the module runs at different depths (packages/core/src/… under
 * tsx, packages/<pkg>/dist/… in a bundle). Falls back to `./migrations` of the working directory.
 */
const findMigrationsDirectory = (): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = path.join(dir, "migrations")
    if (existsSync(candidate)) return candidate + path.sep
    const parent = path.dirname(dir)
    if (parent === dir) return path.resolve("migrations") + path.sep
    dir = parent
  }
}

export const defaultMigrationsDirectory: string = findMigrationsDirectory()

export class MigrationFailed extends Schema.TaggedError<MigrationFailed>()("MigrationFailed", {
  reason: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `Database migration failed (${this.reason}): ${this.detail}. The failed migration was rolled back; fix the SQL file or the database and start again.`
  }
}

const fileName = /^(\d{4})_([A-Za-z0-9_-]+)\.sql$/

/**
 * Loads every `NNNN_name.sql` file of `directory`. Each file runs as one simple-protocol query
 * (`sql.unsafe` without parameters), so several statements and plpgsql `$$` bodies work on
 * PostgreSQL and PGlite alike.
 */
export const fromDirectory = (directory: string): Migrator.Loader =>
  Effect.tryPromise({
    try: () => fs.readdir(directory),
    catch: (cause) =>
      new Migrator.MigrationError({
        reason: "import-error",
        message: `Cannot read the migrations folder ${directory}: ${String(cause)}`,
        cause
      })
  }).pipe(
    Effect.map((names) =>
      names
        .flatMap((name) => {
          const match = fileName.exec(name)
          if (!match) return []
          const file = path.join(directory, name)
          const load = Effect.promise(() => fs.readFile(file, "utf8")).pipe(
            Effect.map((text) => Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(text).raw))
          )
          return [[Number(match[1]), match[2]!, load] as const]
        })
        .sort((a, b) => a[0] - b[0])
    )
  )

export interface RunOptions {
  /** Folder holding the SQL files; defaults to the repository's `migrations/`. */
  readonly directory?: string
}

/**
 * Applies the migrations not applied yet and returns them as `[id, name]` (empty when the
 * database is up to date). Runs in one transaction holding a lock on the migrations table, so two
 * processes starting together do not both migrate.
 */
export const run = (
  options: RunOptions = {}
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, MigrationFailed, SqlClient.SqlClient> =>
  Migrator.make({})({
    loader: fromDirectory(options.directory ?? defaultMigrationsDirectory),
    table: migrationsTable
  }).pipe(
    // The Migrator turns a failing migration into a defect; give it back a typed failure.
    Effect.catchSomeDefect((defect) =>
      defect instanceof Migrator.MigrationError ? Option.some(Effect.fail(toFailed(defect))) : Option.none()
    ),
    Effect.catchTags({
      MigrationError: (e) => Effect.fail(toFailed(e)),
      SqlError: (e: SqlError) => Effect.fail(new MigrationFailed({ reason: "sql", detail: describe(e) }))
    }),
    Effect.withSpan("Migrations.run")
  )

const describe = (e: { message: string; cause?: unknown }): string => {
  const cause = e.cause instanceof Error ? e.cause.message : e.cause === undefined ? "" : String(e.cause)
  return cause && cause !== e.message ? `${e.message}: ${cause}` : e.message
}

const toFailed = (e: Migrator.MigrationError): MigrationFailed =>
  new MigrationFailed({ reason: e.reason, detail: describe(e) })

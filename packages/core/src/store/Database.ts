/**
 * The database: PostgreSQL when DATABASE_URL is set, otherwise embedded PGlite in the data folder.
 * Both sit behind the same `@effect/sql-pg` client, so repositories, the Migrator and the cluster's
 * SQL storage see one `SqlClient` and one set of errors whichever engine runs.
 */
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

import type * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import type { PGlite } from "@electric-sql/pglite"
import { randomToken } from "@kyozo/api/domain/Ids"
import { Context, Duration, Effect, Layer, Option, Redacted, Schema, type Scope } from "effect"
import pg from "pg"

import { KyozoConfig } from "../KyozoConfig.js"
import * as Migrations from "./Migrations.js"

export type DatabaseKind = "postgres" | "pglite"

export interface DatabaseShape {
  /** Which engine runs: the durable engine picks its runner storage from it (PGlite has one session). */
  readonly kind: DatabaseKind
  /** Where the data lives, without secrets: "127.0.0.1:5432/kyozo" or a folder. */
  readonly location: string
}

export class Database extends Context.Tag("@kyozo/core/Database")<Database, DatabaseShape>() {}

/** Everything a database layer provides. */
export type DatabaseServices = Database | PgClient.PgClient | SqlClient.SqlClient

export class DatabaseLocked extends Schema.TaggedError<DatabaseLocked>()("DatabaseLocked", {
  path: Schema.String,
  pid: Schema.Number
}) {
  override get message() {
    return `The database folder is in use by another Kyozo process (pid ${this.pid}, lock file ${this.path}). Stop that process, or give this one its own KYOZO_DATA_DIR (or set DATABASE_URL): two processes on one PGlite folder silently lose writes. If pid ${this.pid} is not Kyozo, delete the lock file.`
  }
}

export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()("DatabaseUnavailable", {
  kind: Schema.Literal("postgres", "pglite"),
  location: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return this.kind === "postgres"
      ? `PostgreSQL at ${this.location} cannot be reached (${this.reason}). Check that it is running and that DATABASE_URL (user, password, database) is right, e.g. run scripts/start-postgres.sh; or unset DATABASE_URL to use the embedded database.`
      : `The embedded database in ${this.location} cannot be opened (${this.reason}). Check the folder's permissions and free space, or point KYOZO_DATA_DIR elsewhere.`
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** "host:port/database" of a connection URL, never the password. */
export const describeUrl = (url: string): string => {
  try {
    const u = new URL(url)
    return `${u.hostname}:${u.port || "5432"}${u.pathname || "/"}`
  } catch {
    return "an unparsable DATABASE_URL"
  }
}

const causeText = (cause: unknown): string => {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause
    const detail = inner instanceof Error ? inner.message : inner === undefined ? "" : String(inner)
    return detail && detail !== cause.message ? `${cause.message}: ${detail}` : cause.message
  }
  return String(cause)
}

export interface PostgresOptions {
  readonly connectTimeout?: Duration.DurationInput
  readonly maxConnections?: number
}

/** A PgClient on a PostgreSQL server; fails with DatabaseUnavailable when it does not answer. */
export const layerPostgres = (
  url: string | Redacted.Redacted<string>,
  options: PostgresOptions = {}
): Layer.Layer<DatabaseServices, DatabaseUnavailable> => {
  const secret = typeof url === "string" ? Redacted.make(url) : url
  const location = describeUrl(Redacted.value(secret))
  const client = PgClient.layer({
    url: secret,
    connectTimeout: options.connectTimeout ?? Duration.seconds(5),
    maxConnections: options.maxConnections,
    applicationName: "kyozo"
  }).pipe(
    Layer.catchAll((e) =>
      Layer.fail(new DatabaseUnavailable({ kind: "postgres", location, reason: causeText(e.cause ?? e) }))
    )
  )
  return Layer.merge(client, Layer.succeed(Database, { kind: "postgres", location }))
}

// ---------------------------------------------------------------------------------------------
// Lock file

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const readLockPid = (file: string): number | undefined => {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, "utf8").split("\n")[0] ?? "", 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

const readLockToken = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8").split("\n")[1]
  } catch {
    return undefined
  }
}

/** Creates the lock file exclusively; returns false when it already exists. */
const tryCreate = (file: string, token: string): boolean => {
  let fd: number
  try {
    fd = fs.openSync(file, "wx", 0o644)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false
    throw e
  }
  try {
    fs.writeSync(fd, `${process.pid}\n${token}\n${os.hostname()}\n${new Date().toISOString()}\n`)
  } finally {
    fs.closeSync(fd)
  }
  return true
}

const lockSync = (
  file: string,
  token: string
): { readonly locked: false } | { readonly locked: true; pid: number } => {
  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreate(file, token)) return { locked: false }
    const pid = readLockPid(file)
    if (pid === undefined) {
      // Empty: another process is between create and write, or died there. Young means the former.
      const age = Date.now() - (fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0)
      if (age < 2_000) return { locked: true, pid: 0 }
    } else if (isAlive(pid)) {
      return { locked: true, pid }
    }
    // Stale. Move it aside atomically so that of several processes taking over only one removes it,
    // and if what we moved is not the stale lock we read (someone just took it), put it back.
    const aside = `${file}.stale-${process.pid}-${randomToken(6)}`
    try {
      fs.renameSync(file, aside)
    } catch {
      continue
    }
    const moved = readLockPid(aside)
    if (moved === pid) {
      fs.rmSync(aside, { force: true })
      continue
    }
    try {
      fs.linkSync(aside, file)
    } catch {
      // Someone created a new lock meanwhile; theirs wins.
    }
    fs.rmSync(aside, { force: true })
    return { locked: true, pid: moved ?? 0 }
  }
  return { locked: true, pid: readLockPid(file) ?? 0 }
}

/**
 * Holds `<dataDir>/kyozo.lock` for the life of the scope: created exclusively with this process's
 * pid; a live holder fails with DatabaseLocked; a dead holder's lock is taken over.
 */
export const acquireLock = (
  file: string
): Effect.Effect<void, DatabaseLocked | DatabaseUnavailable, Scope.Scope> => {
  const token = randomToken(12)
  return Effect.acquireRelease(
    Effect.try({
      try: () => lockSync(file, token),
      catch: (cause) =>
        new DatabaseUnavailable({ kind: "pglite", location: path.dirname(file), reason: causeText(cause) })
    }).pipe(
      Effect.flatMap((result) =>
        result.locked ? Effect.fail(new DatabaseLocked({ path: file, pid: result.pid })) : Effect.void
      )
    ),
    () =>
      Effect.sync(() => {
        // Only remove our own lock: never one a later process took over.
        if (readLockToken(file) === token) fs.rmSync(file, { force: true })
      })
  )
}

// ---------------------------------------------------------------------------------------------
// PGlite

/**
 * PGlite's WebAssembly heap holds shared_buffers; PostgreSQL's 128 MB default doubles the idle
 * server's memory for a database that holds a few megabytes of rows.
 */
const embeddedSharedBuffers = "16MB"

/** Sets `shared_buffers` in the data folder's postgresql.conf; PGlite reads the file at start. */
const tunePgliteConf = (pgdata: string): void => {
  const file = path.join(pgdata, "postgresql.conf")
  const text = fs.readFileSync(file, "utf8")
  const line = `shared_buffers = ${embeddedSharedBuffers}\t\t\t# set by Kyozo: the embedded database is small`
  const tuned = /^\s*#?\s*shared_buffers\s*=.*$/m.test(text)
    ? text.replace(/^\s*#?\s*shared_buffers\s*=.*$/m, line)
    : `${text}\n${line}\n`
  if (tuned !== text) fs.writeFileSync(file, tuned)
}

/** The PGlite module's URL, for the initdb child (test runners may lack `import.meta.resolve`). */
const pgliteModule = (): string =>
  typeof import.meta.resolve === "function"
    ? import.meta.resolve("@electric-sql/pglite")
    : pathToFileURL(createRequire(import.meta.url).resolve("@electric-sql/pglite")).href

/** Runs initdb for `pgdata` in a child process, writing a temporary folder renamed into place. */
const initdbInChild = (pgdata: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const temporary = `${pgdata}.init-${randomToken(6)}`
    const script =
      "const { PGlite } = await import(process.argv[1]); const db = new PGlite(process.argv[2]); await db.waitReady; await db.close()"
    execFile(
      process.execPath,
      ["--input-type=module", "-e", script, pgliteModule(), temporary],
      { timeout: 120_000 },
      (error, _stdout, stderr) => {
        const fail = (cause: unknown) => {
          fs.rmSync(temporary, { recursive: true, force: true })
          reject(cause)
        }
        if (error) return fail(new Error(`initdb failed: ${stderr.trim() || error.message}`))
        try {
          fs.renameSync(temporary, pgdata)
          resolve()
        } catch (cause) {
          // Another process made the same folder meanwhile (a shared template): theirs is as good.
          if (fs.existsSync(path.join(pgdata, "PG_VERSION"))) {
            fs.rmSync(temporary, { recursive: true, force: true })
            resolve()
          } else fail(cause)
        }
      }
    )
  })

/**
 * Where the freshly initialised data folder of this PGlite build is kept, so that every new data
 * folder is a copy (~0.1 s) instead of an initdb (2–5 s of WebAssembly). Keyed by the module's
 * location, which names its version.
 */
const templateFolder = (cacheDir: string): string => {
  const key = createHash("sha256").update(pgliteModule()).digest("hex").slice(0, 12)
  return path.join(cacheDir, "kyozo", `pglite-template-${key}`)
}

/**
 * A new data folder: a copy of the template (made first if missing). initdb runs in a child
 * process because in WebAssembly it grows the heap to ~800 MB, which a long-lived server would
 * keep for good. Without a writable cache, initdb runs straight into the data folder.
 */
const createPgdata = async (pgdata: string, cacheDir: string): Promise<void> => {
  const template = templateFolder(cacheDir)
  try {
    if (!fs.existsSync(path.join(template, "PG_VERSION"))) {
      fs.mkdirSync(path.dirname(template), { recursive: true })
      await initdbInChild(template)
    }
  } catch {
    return initdbInChild(pgdata)
  }
  const temporary = `${pgdata}.copy-${randomToken(6)}`
  fs.cpSync(template, temporary, { recursive: true })
  fs.renameSync(temporary, pgdata)
}

/** Opens PGlite in `<dataDir>/pgdata` (creating it first when new), closed with the scope. */
const openPglite = (
  dataDir: string,
  cacheDir: string
): Effect.Effect<PGlite, DatabaseUnavailable, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const pgdata = path.join(dataDir, "pgdata")
        if (!fs.existsSync(path.join(pgdata, "PG_VERSION"))) await createPgdata(pgdata, cacheDir)
        tunePgliteConf(pgdata)
        // Loaded here, not at module load: a server on PostgreSQL never holds PGlite's code.
        const { PGlite } = await import("@electric-sql/pglite")
        const db = new PGlite(pgdata)
        await db.waitReady
        return db
      },
      catch: (cause) =>
        new DatabaseUnavailable({ kind: "pglite", location: dataDir, reason: causeText(cause) })
    }),
    (db) => Effect.promise(() => db.close()).pipe(Effect.catchAllDefect(() => Effect.void))
  )

/**
 * Embedded PostgreSQL (PGlite) in `<dataDir>/pgdata`, behind a one-connection `pg.Pool`: PGlite
 * has a single session, so a transaction holds the only connection until it ends.
 */
export const layerPglite = (
  dataDir: string
): Layer.Layer<DatabaseServices, DatabaseLocked | DatabaseUnavailable> => {
  const location = path.resolve(dataDir)
  const client = Layer.unwrapScoped(
    Effect.gen(function* () {
      yield* Effect.try({
        try: () => fs.mkdirSync(location, { recursive: true }),
        catch: (cause) => new DatabaseUnavailable({ kind: "pglite", location, reason: causeText(cause) })
      })
      yield* acquireLock(path.join(location, "kyozo.lock"))
      // The template cache comes from KyozoConfig (XDG_CACHE_HOME), read on its own when not provided.
      const provided = yield* Effect.serviceOption(KyozoConfig)
      const { cacheDir } = Option.isSome(provided)
        ? provided.value
        : yield* Effect.orDie(Effect.provide(KyozoConfig, KyozoConfig.Default))
      const db = yield* openPglite(location, cacheDir)
      const { createPgConfig } = yield* Effect.tryPromise({
        try: () => import("@electric-sql/pglite/node-postgres"),
        catch: (cause) => new DatabaseUnavailable({ kind: "pglite", location, reason: causeText(cause) })
      })
      return PgClient.layerFromPool({
        acquire: Effect.acquireRelease(
          Effect.sync(
            () =>
              // idleTimeoutMillis 0: keep the one client for good rather than reconnect the single session.
              new pg.Pool({ ...createPgConfig(db), max: 1, idleTimeoutMillis: 0 } as pg.PoolConfig)
          ),
          (pool) => Effect.promise(() => pool.end())
        ),
        applicationName: "kyozo"
      }).pipe(
        Layer.catchAll((e) =>
          Layer.fail(new DatabaseUnavailable({ kind: "pglite", location, reason: causeText(e.cause ?? e) }))
        )
      )
    })
  )
  return Layer.merge(client, Layer.succeed(Database, { kind: "pglite", location }))
}

// ---------------------------------------------------------------------------------------------
// From configuration

/** Applies pending migrations once the client is up, and logs what ran. */
export const migrated = <E, R>(
  base: Layer.Layer<DatabaseServices, E, R>,
  options: Migrations.RunOptions = {}
): Layer.Layer<DatabaseServices, E | Migrations.MigrationFailed, R> =>
  Layer.effectDiscard(
    Migrations.run(options).pipe(
      Effect.tap((applied) =>
        applied.length === 0
          ? Effect.logDebug("database schema is up to date")
          : Effect.logInfo(`applied migrations: ${applied.map(([id, name]) => `${id}_${name}`).join(", ")}`)
      )
    )
  ).pipe(Layer.provideMerge(base))

/**
 * The application's database: PostgreSQL when DATABASE_URL is set, else PGlite under the data
 * folder; migrated before anything else uses it.
 */
export const layer: Layer.Layer<
  DatabaseServices,
  DatabaseLocked | DatabaseUnavailable | Migrations.MigrationFailed,
  KyozoConfig
> = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* KyozoConfig
    if (config.databaseUrl !== undefined) {
      yield* Effect.logInfo(`database: PostgreSQL at ${describeUrl(Redacted.value(config.databaseUrl))}`)
      return migrated(layerPostgres(config.databaseUrl))
    }
    const dataDir = path.resolve(config.dataDir)
    yield* Effect.logInfo(
      `database: embedded PGlite in ${path.join(dataDir, "pgdata")} (set DATABASE_URL to use PostgreSQL)`
    )
    return migrated(layerPglite(dataDir))
  })
)

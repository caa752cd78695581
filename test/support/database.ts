/**
 * Databases for tests. `databases` lists PGlite and PostgreSQL so a test file runs the same tests
 * on both:
 *
 *   for (const db of databases) describe.skipIf(db.skip)(db.name, () => { it.layer(db.layer)(...) })
 *
 * PGlite: one instance per test process, shared by every `it.layer` of the process (reference
 * counted). A fresh PGlite folder costs seconds to create, so the first process of a run builds a
 * migrated template folder in the temp dir and every process copies it (keyed by the migrations'
 * content, so a new migration makes a new template).
 *
 * PostgreSQL (DATABASE_URL): each test process gets its own schema (search_path in the connection
 * URL), migrated once and dropped when the last layer using it closes. Without DATABASE_URL the
 * PostgreSQL variant is skipped with a loud warning, or fails when KYOZO_REQUIRE_POSTGRES=1.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { describe, it, type Vitest } from "@effect/vitest"
import { randomToken } from "@kyozo/api/domain/Ids"
import { type DatabaseServices, layerPglite, layerPostgres, migrated } from "@kyozo/core/store/Database"
import { defaultMigrationsDirectory } from "@kyozo/core/store/Migrations"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import pg from "pg"

export type DatabaseName = "pglite" | "postgres"

export interface TestDatabase {
  readonly name: DatabaseName
  readonly layer: Layer.Layer<DatabaseServices, unknown>
  /** True when this database cannot run here (PostgreSQL without DATABASE_URL). */
  readonly skip: boolean
}

// ---------------------------------------------------------------------------------------------
// Shared, reference-counted instances

interface Shared {
  refs: number
  ready: Promise<{ context: Context.Context<DatabaseServices>; scope: Scope.CloseableScope }>
}

/** A layer that builds `make` once per process while at least one user holds it. */
const refCounted = <E>(make: () => Layer.Layer<DatabaseServices, E>, onLastRelease?: () => Promise<void>) => {
  let shared: Shared | undefined
  const acquire = Effect.suspend(() => {
    if (!shared) {
      const ready = Effect.runPromise(
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          const context = yield* Layer.buildWithScope(make(), scope).pipe(
            Effect.tapErrorCause(() => Scope.close(scope, Exit.void))
          )
          return { context, scope }
        })
      )
      shared = { refs: 0, ready }
      // A failed build must not poison later attempts.
      ready.catch(() => {
        if (shared?.ready === ready) shared = undefined
      })
    }
    const current = shared
    current.refs++
    return Effect.promise(() => current.ready).pipe(
      Effect.onInterrupt(() => Effect.sync(() => current.refs--)),
      Effect.map(({ context }) => ({ current, context }))
    )
  })
  const release = ({ current }: { current: Shared }) =>
    Effect.promise(async () => {
      current.refs--
      if (current.refs > 0) return
      if (shared === current) shared = undefined
      const { scope } = await current.ready
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await onLastRelease?.()
    })
  return Layer.scopedContext(
    Effect.acquireRelease(acquire, release).pipe(Effect.map(({ context }) => context))
  )
}

// ---------------------------------------------------------------------------------------------
// PGlite

const migrationsHash = (): string => {
  const hash = createHash("sha256")
  for (const name of fs.readdirSync(defaultMigrationsDirectory).sort()) {
    if (!name.endsWith(".sql")) continue
    hash.update(name).update(fs.readFileSync(path.join(defaultMigrationsDirectory, name)))
  }
  return hash.digest("hex").slice(0, 16)
}

/**
 * A migrated PGlite folder to copy from, built once per machine and migrations content. Built in a
 * private folder and renamed into place, so concurrent runs never see a half-built template.
 */
export const pgliteTemplate = Effect.gen(function* () {
  const template = path.join(os.tmpdir(), `kyozo-pglite-template-${migrationsHash()}`)
  if (fs.existsSync(path.join(template, "pgdata", "PG_VERSION"))) return template
  const building = `${template}.building-${process.pid}-${randomToken(6)}`
  yield* Effect.scoped(Layer.build(migrated(layerPglite(building))))
  try {
    fs.renameSync(building, template)
  } catch {
    // Another process finished first: use theirs.
    fs.rmSync(building, { recursive: true, force: true })
  }
  return template
})

/** Copies the migrated template into `dataDir` (which must not hold a database yet). */
export const seedPgliteDir = (dataDir: string) =>
  Effect.gen(function* () {
    const template = yield* pgliteTemplate
    fs.mkdirSync(dataDir, { recursive: true })
    fs.cpSync(path.join(template, "pgdata"), path.join(dataDir, "pgdata"), { recursive: true })
  })

const tempDirs: Array<string> = []
process.once("exit", () => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
})

/** A new temp folder, removed when the process exits. */
export const makeTempDir = (prefix = "kyozo-test-"): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  tempDirs.push(dir)
  return dir
}

let pgliteDir: string | undefined

/** The process's PGlite: seeded from the template on first use, reopened after the last release. */
export const pgliteLayer: Layer.Layer<DatabaseServices, unknown> = refCounted(() =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      if (pgliteDir === undefined) {
        const dir = makeTempDir("kyozo-test-pglite-")
        yield* seedPgliteDir(dir)
        pgliteDir = dir
      }
      return migrated(layerPglite(pgliteDir))
    })
  )
)

// ---------------------------------------------------------------------------------------------
// PostgreSQL

export const databaseUrl: string | undefined = process.env.DATABASE_URL || undefined
const requirePostgres = process.env.KYOZO_REQUIRE_POSTGRES === "1"

/** The URL with `search_path` set to `schema` for every connection of the pool. */
export const withSearchPath = (url: string, schema: string): string => {
  const u = new URL(url)
  u.searchParams.set("options", `-c search_path=${schema}`)
  return u.toString()
}

const adminQuery = async (url: string, text: string): Promise<void> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(text)
  } finally {
    await client.end()
  }
}

/** Test schemas are named kyozo_t_<base36 ms>_<random>; ones older than 6 h are leftovers of crashed runs. */
const dropLeftoverSchemas = async (url: string): Promise<void> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const found = await client.query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'kyozo\\_t\\_%'"
    )
    for (const { nspname } of found.rows) {
      const born = Number.parseInt(nspname.split("_")[2] ?? "", 36)
      if (Number.isFinite(born) && Date.now() - born > 6 * 3600_000) {
        await client.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`)
      }
    }
  } finally {
    await client.end()
  }
}

/** Creates a fresh schema and returns its name. */
export const createSchema = (url: string): Promise<string> => {
  const schema = `kyozo_t_${Date.now().toString(36)}_${randomToken(8)}`
  return adminQuery(url, `CREATE SCHEMA "${schema}"`).then(() => schema)
}

export const dropSchema = (url: string, schema: string): Promise<void> =>
  adminQuery(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`)

let postgresSchema: string | undefined

const missingPostgres = (): Layer.Layer<DatabaseServices, unknown> =>
  Layer.fail(
    new Error(
      "KYOZO_REQUIRE_POSTGRES=1 but DATABASE_URL is not set. Run `bash scripts/start-postgres.sh` and export the URL it prints."
    )
  )

/** PostgreSQL in a schema of this process's own. */
export const postgresLayer: Layer.Layer<DatabaseServices, unknown> =
  databaseUrl === undefined
    ? missingPostgres()
    : refCounted(
        () =>
          Layer.unwrapEffect(
            Effect.promise(async () => {
              await dropLeftoverSchemas(databaseUrl).catch(() => undefined)
              postgresSchema = await createSchema(databaseUrl)
              return migrated(layerPostgres(withSearchPath(databaseUrl, postgresSchema)))
            })
          ),
        async () => {
          if (postgresSchema !== undefined) await dropSchema(databaseUrl, postgresSchema)
          postgresSchema = undefined
        }
      )

if (databaseUrl === undefined && !requirePostgres && !process.env.KYOZO_QUIET_POSTGRES_WARNING) {
  const line = "!".repeat(78)
  console.warn(
    `\n${line}\n!!! DATABASE_URL is not set: the PostgreSQL variants of the database tests are SKIPPED.\n` +
      `!!! Run \`bash scripts/start-postgres.sh\` and set DATABASE_URL to the URL it prints\n` +
      `!!! (set KYOZO_REQUIRE_POSTGRES=1 to make this a failure).\n${line}\n`
  )
}

export const databases: ReadonlyArray<TestDatabase> = [
  { name: "pglite", layer: pgliteLayer, skip: false },
  { name: "postgres", layer: postgresLayer, skip: databaseUrl === undefined && !requirePostgres }
]

/**
 * Runs `body` once per database, each inside its own `describe` with the database's layer. A
 * database that cannot run here shows up as a skipped test instead (its layer is never built).
 */
export const describeEachDatabase = (
  title: string,
  body: (it: Vitest.MethodsNonLive<DatabaseServices>, db: TestDatabase) => void
): void => {
  for (const db of databases) {
    if (db.skip) {
      // Reason: PostgreSQL is not configured (no DATABASE_URL) on this machine. It shows as a skipped
      // suite rather than vanishing; CI sets DATABASE_URL and KYOZO_REQUIRE_POSTGRES=1, so it never skips there.
      describe.skip(`${title} on ${db.name} (skipped: DATABASE_URL unset, no PostgreSQL here)`, () => {
        it(`needs DATABASE_URL (run scripts/start-postgres.sh)`, () => undefined)
      })
    } else {
      describe(`${title} on ${db.name}`, () => {
        it.layer(db.layer, { timeout: "120 seconds" })((it) => body(it, db))
      })
    }
  }
}

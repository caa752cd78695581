/**
 * A real Kyozo server (mock runtime) on its own PostgreSQL schema, plus a handle on the same
 * database from the test process, so tests can create teams, keys, services and events directly
 * (the API has no "create team" operation yet) and watch what the server makes of them.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import * as Credentials from "@kyozo/api/Credentials"
import { randomToken, type TeamId, type UserId } from "@kyozo/api/domain/Ids"
import type { Role } from "@kyozo/api/domain/Membership"
import { ApiKeyRepo } from "@kyozo/core/store/ApiKeyRepo"
import { layerPostgres } from "@kyozo/core/store/Database"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { UserRepo } from "@kyozo/core/store/UserRepo"
import { Effect, Layer, ManagedRuntime, Option } from "effect"
import pg from "pg"

import { type ServerProcess, type StartOptions, startServer, waitFor } from "./server.js"

/** DATABASE_URL, or the cluster `scripts/start-postgres.sh` starts on this machine. */
export const postgresUrl = process.env.DATABASE_URL || "postgres://kyozo:kyozo@127.0.0.1:5432/kyozo_test"

// Same naming as support/database.ts (its leftover sweep recognises kyozo_t_*), without importing
// vitest, so benchmarks can use this module too.
const withSearchPath = (url: string, schema: string): string => {
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

const createSchema = async (url: string): Promise<string> => {
  const schema = `kyozo_t_${Date.now().toString(36)}_${randomToken(8)}`
  await adminQuery(url, `CREATE SCHEMA "${schema}"`)
  return schema
}

const dropSchema = (url: string, schema: string) =>
  adminQuery(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`)

const Repos = Layer.mergeAll(
  TeamRepo.Default,
  UserRepo.Default,
  ApiKeyRepo.Default,
  ServiceRepo.Default,
  DeploymentEventRepo.Default
)

export type TestRepos = TeamRepo | UserRepo | ApiKeyRepo | ServiceRepo | DeploymentEventRepo

export interface Tenant {
  readonly teamId: TeamId
  readonly userId: UserId
  readonly token: string
}

export interface TenantServer {
  readonly server: ServerProcess
  readonly base: string
  readonly dataDir: string
  /** The test's database (its own schema), as the test process reaches it. */
  readonly databaseUrl: string
  /** The bootstrap owner's credentials. */
  readonly owner: Tenant
  readonly run: <A, E>(effect: Effect.Effect<A, E, TestRepos>) => Promise<A>
  /** A new team with one user of the given role and a key. */
  readonly newTenant: (name: string, role?: Role) => Promise<Tenant>
  readonly close: () => Promise<void>
}

let counter = 0

export interface TenantServerOptions {
  /** The URL the server process is given for the test's database (e.g. through a statement log). */
  readonly serverDatabaseUrl?: (url: string) => Promise<string>
  /** How the server process is run (built bundle, node flags). */
  readonly start?: StartOptions
}

export const startTenantServer = async (
  env: Record<string, string> = {},
  options: TenantServerOptions = {}
): Promise<TenantServer> => {
  const schema = await createSchema(postgresUrl)
  const url = withSearchPath(postgresUrl, schema)
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-tenants-"))
  const server = await startServer(
    {
      KYOZO_RUNTIME: "mock",
      KYOZO_DATA_DIR: dataDir,
      DATABASE_URL: options.serverDatabaseUrl === undefined ? url : await options.serverDatabaseUrl(url),
      ...env
    },
    options.start
  )
  const close = async () => {
    await server.stop()
    await runtime?.dispose().catch(() => undefined)
    fs.rmSync(dataDir, { recursive: true, force: true })
    await dropSchema(postgresUrl, schema).catch(() => undefined)
  }
  let runtime: ManagedRuntime.ManagedRuntime<TestRepos, unknown> | undefined
  try {
    await waitFor("server /healthz", 60_000, async () => {
      const r = await server.get("/healthz")
      return r.status === 200 ? true : undefined
    })
    const creds = await Effect.runPromise(Credentials.read(dataDir)).then(Option.getOrThrow)
    runtime = ManagedRuntime.make(Repos.pipe(Layer.provide(layerPostgres(url))))
    const rt = runtime
    const run = <A, E>(effect: Effect.Effect<A, E, TestRepos>) => rt.runPromise(effect)
    const owner: Tenant = {
      teamId: creds.teamId as TeamId,
      userId: await run(
        Effect.flatMap(UserRepo, (u) => u.findByEmail("admin@kyozo.local")).pipe(
          Effect.map((o) => Option.getOrThrow(o).id)
        )
      ),
      token: creds.token
    }
    const newTenant = (name: string, role: Role = "owner") =>
      run(
        Effect.gen(function* () {
          const n = `${name}-${process.pid}-${++counter}`
          const team = yield* (yield* TeamRepo).create({ name: n })
          const user = yield* (yield* UserRepo).create({ email: `${n}@example.test`, name: n })
          yield* (yield* TeamRepo).addMember(team.id, user.id, role)
          const { key } = yield* (yield* ApiKeyRepo).issue({ teamId: team.id, userId: user.id, name: n })
          return { teamId: team.id, userId: user.id, token: key }
        })
      )
    return {
      server,
      base: `http://127.0.0.1:${server.port}`,
      dataDir,
      databaseUrl: url,
      owner,
      run,
      newTenant,
      close
    }
  } catch (e) {
    const log = server.log()
    await close()
    throw new Error(`${e}\n${log}`)
  }
}

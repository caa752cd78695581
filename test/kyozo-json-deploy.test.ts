/**
 * kyozo.json's settings take effect on the REAL engine: a folder whose kyozo.json asks for two
 * replicas, an HTTP health check on /ready and env values deploys two containers with that env,
 * gated on /ready (the app fails `/`, so the default probe would refuse it); a changed file
 * rolls out on redeploy (new env served, replicas follow); more replicas than the team's quota
 * allow are refused and change nothing.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { makeTeamId, type TeamId } from "@kyozo/api/domain/Ids"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { Effect, Either, Option } from "effect"

import { bodyOf, deployFolder, deployStack, workspace } from "./support/deployer.js"
import {
  dockerSuite,
  NodeImage,
  removeTeamAfterAll,
  requireBaseImages,
  StaticImage
} from "./support/docker.js"

const docker = await dockerSuite("kyozo-json-deploy")
if (docker.available) await requireBaseImages(docker.client)

process.env.KYOZO_BASE_IMAGES = JSON.stringify({ node: NodeImage, static: StaticImage })

const ws = workspace("kyozo-json-ws-")
const teamId: TeamId = makeTeamId()
removeTeamAfterAll(docker, teamId)

const TestLayer = deployStack({ workspaces: ws.root, team: { id: teamId, name: `kjson-${teamId}` } })

/** `/` fails (500), `/ready` is healthy, anything else shows $GREETING. */
const files = (config: unknown) => ({
  "package.json": JSON.stringify({ name: "cfg-app", version: "1.0.0", main: "server.js" }),
  "server.js": `const http = require("node:http")
http.createServer((req, res) => {
  if (req.url === "/") { res.statusCode = 500; return res.end("not here") }
  if (req.url === "/ready") return res.end("ready")
  res.end("greeting=" + (process.env.GREETING ?? "none"))
}).listen(Number(process.env.PORT) || 8080)
`,
  "kyozo.json": JSON.stringify(config, null, 2)
})

/** Env of the service's running containers (one entry per container). */
const runningEnv = (serviceId: string) =>
  Effect.promise(async () => {
    const list = await docker.client.listContainers({
      filters: JSON.stringify({ label: [`kyozo.service=${serviceId}`], status: ["running"] })
    })
    return Promise.all(list.map(async (c) => (await docker.client.getContainer(c.Id).inspect()).Config.Env))
  })

/** Until the service runs `n` containers (the previous deployment retires in the background). */
const settledAt = (serviceId: string, n: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < 150; i++) {
      const envs = yield* runningEnv(serviceId)
      if (envs.length === n) return envs
      yield* Effect.sleep("100 millis")
    }
    return yield* runningEnv(serviceId)
  })

describe.skipIf(!docker.available)("kyozo.json on the real engine", () => {
  layer(TestLayer, { excludeTestServices: true, timeout: "300 seconds" })((it) => {
    it.effect(
      "replicas, health check and env from kyozo.json deploy; a change rolls out; quotas gate replicas",
      () =>
        Effect.gen(function* () {
          const repo = yield* ServiceRepo
          const folder = ws.write(
            "cfg",
            files({
              services: [
                {
                  name: "cfg",
                  replicas: 2,
                  healthCheck: { type: "http", path: "/ready" },
                  env: { GREETING: "hello" }
                }
              ]
            })
          )
          const [first] = yield* deployFolder(teamId, folder)
          expect(first!.status).toBe("succeeded")
          const row = Option.getOrThrow(yield* repo.findByName(teamId, "cfg").pipe(Effect.orDie))
          expect(row.replicas).toBe(2)
          expect(row.healthConfig).toMatchObject({ type: "http", path: "/ready" })
          expect(row.env).toEqual({ GREETING: "hello" })
          const envs = yield* settledAt(row.id, 2)
          expect(envs).toHaveLength(2)
          for (const env of envs) expect(env).toContain("GREETING=hello")
          expect(yield* bodyOf(`${first!.url}/hi`)).toBe("greeting=hello")

          // A secret set on the service (not in the file) survives the file's redeploy.
          yield* repo.update(teamId, row.id, { env: { ...row.env, SECRET: "s3" } }).pipe(Effect.orDie)
          ws.write(
            "cfg",
            files({
              services: [
                { name: "cfg", replicas: 1, healthCheck: { path: "/ready" }, env: { GREETING: "bye" } }
              ]
            })
          )
          const [second] = yield* deployFolder(teamId, folder)
          expect(second!.status).toBe("succeeded")
          const after = Option.getOrThrow(yield* repo.findByName(teamId, "cfg").pipe(Effect.orDie))
          expect(after.replicas).toBe(1)
          expect(after.env).toEqual({ GREETING: "bye", SECRET: "s3" })
          expect(yield* bodyOf(`${second!.url}/hi`)).toBe("greeting=bye")
          const now = yield* settledAt(row.id, 1)
          expect(now).toHaveLength(1)
          expect(now[0]).toContain("GREETING=bye")

          // Four replicas of 500 millicores do not fit 1500: refused, nothing written.
          const sql = yield* SqlClient.SqlClient
          yield* sql`UPDATE teams SET quota_cpu_millis = 1500 WHERE id = ${teamId}`.pipe(Effect.orDie)
          ws.write("cfg", files({ services: [{ name: "cfg", replicas: 4, env: { GREETING: "many" } }] }))
          const refused = yield* Effect.either(deployFolder(teamId, folder))
          expect(Either.isLeft(refused) && refused.left._tag).toBe("QuotaExceeded")
          const kept = Option.getOrThrow(yield* repo.findByName(teamId, "cfg").pipe(Effect.orDie))
          expect(kept.replicas).toBe(1)
          expect(kept.env.GREETING).toBe("bye")
        })
    )
  })
})

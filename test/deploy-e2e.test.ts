/**
 * Deploys on the REAL Docker engine: folders become images (generated or own Dockerfiles, FROM the
 * local base images), containers are health-gated on their 127.0.0.1-published ports and served
 * behind the service's stable proxy port. The durable engine runs on PGlite as in production.
 */
import { describe, expect, layer } from "@effect/vitest"
import { makeTeamId, type TeamId } from "@kyozo/api/domain/Ids"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { Deployer } from "@kyozo/workers/deploy/Deployer"
import { Effect } from "effect"

import { bodyOf as body, deployFolder, deployStack, httpGet as get, workspace } from "./support/deployer.js"
import {
  dockerSuite,
  NodeImage,
  removeTeamAfterAll,
  requireBaseImages,
  StaticImage
} from "./support/docker.js"

const docker = await dockerSuite("deploy-e2e")
if (docker.available) await requireBaseImages(docker.client)

// Generated Dockerfiles take FROM lines from here (read when the layer is built).
process.env.KYOZO_BASE_IMAGES = JSON.stringify({ node: NodeImage, static: StaticImage })

const ws = workspace("kyozo-e2e-ws-")
const write = ws.write
const teamId: TeamId = makeTeamId()
removeTeamAfterAll(docker, teamId)

const E2ELayer = deployStack({
  workspaces: ws.root,
  team: { id: teamId, name: `e2e-${teamId}` },
  settings: { healthTimeout: "30 seconds", drainTimeout: "2 seconds", stopTimeoutSeconds: 2 }
})

const deploy = (folder: string, name?: string) => deployFolder(teamId, folder, name ? { name } : {})

const site = (text: string) => ({ "index.html": `${text}\n` })

/** Each test that redeploys starts from its own service, first deployed with `text`. */
const siteServing = (name: string, text: string) =>
  Effect.gen(function* () {
    const [d] = yield* deploy(write(name, site(text)), name)
    expect(yield* body(d!.url!)).toBe(`${text}\n`)
    return d!
  })

describe.skipIf(!docker.available)("Deploys on the real engine", () => {
  layer(E2ELayer, { excludeTestServices: true, timeout: "300 seconds" })((it) => {
    it.effect("a static folder is served at its URL", () =>
      Effect.gen(function* () {
        const [d] = yield* deploy(write("site", site("static v1")), "site")
        expect(d!.built).toBe(true)
        expect(d!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
        expect(yield* body(d!.url!)).toBe("static v1\n")
        console.log(`[deploy-e2e] static first deploy: ${d!.durationMs} ms`)
      })
    )

    it.effect("a Node folder without a Dockerfile gets a generated one and answers", () =>
      Effect.gen(function* () {
        const folder = write("nodeapp", {
          "package.json": JSON.stringify({
            name: "nodeapp",
            version: "1.0.0",
            main: "server.js",
            scripts: { start: "node server.js" }
          }),
          "server.js": [
            "const http = require('node:http')",
            "const port = Number(process.env.PORT) || 3000",
            "http.createServer((req, res) => res.end('node says hi on ' + port)).listen(port)",
            ""
          ].join("\n")
        })
        const [d] = yield* deploy(folder)
        expect(d!.serviceName).toBe("nodeapp")
        expect(yield* body(d!.url!)).toMatch(/^node says hi on \d+$/)
      })
    )

    it.effect("a folder with its own Dockerfile is built from it", () =>
      Effect.gen(function* () {
        const folder = write("own", {
          Dockerfile: [
            `FROM ${StaticImage}`,
            "COPY www /www",
            "EXPOSE 8000",
            'CMD ["httpd", "-f", "-p", "8000", "-h", "/www"]',
            ""
          ].join("\n"),
          "www/index.html": "own dockerfile\n"
        })
        const [d] = yield* deploy(folder, "own")
        expect(yield* body(d!.url!)).toBe("own dockerfile\n")
      })
    )

    it.effect("an unchanged redeploy builds nothing and is quick", () =>
      Effect.gen(function* () {
        yield* siteServing("unchanged", "static v1")
        const started = Date.now()
        const [d] = yield* deploy("unchanged", "unchanged")
        const ms = Date.now() - started
        const events = yield* DeploymentEventRepo
        const steps = (yield* events.listByService(teamId, d!.serviceId, { limit: 100 })).filter(
          (e) => e.deploymentId === d!.deploymentId
        )
        const timeline = steps.map((e) => `${e.type}+${e.createdAt.getTime() - started}`).join(" ")
        console.log(`[deploy-e2e] unchanged redeploy: ${ms} ms (built: ${d!.built}) ${timeline}`)
        expect(d!.built).toBe(false)
        // ~0.8 s on an idle machine, most of it the engine starting the container; the bound leaves
        // room for a loaded 2-core CI box. A rebuild would take several seconds.
        expect(ms).toBeLessThan(2500)
        expect(yield* body(d!.url!)).toBe("static v1\n")
      })
    )

    it.effect("a changed redeploy while a client polls: zero failed requests", () =>
      Effect.gen(function* () {
        const url = (yield* siteServing("rolling", "static v1")).url!
        let stop = false
        const seen = { ok: 0, failed: 0, v1: 0, v2: 0, errors: [] as Array<string> }
        const poller = (async () => {
          while (!stop) {
            const r = await get(url)
            if ("body" in r && r.status === 200) {
              seen.ok++
              if (r.body.includes("v1")) seen.v1++
              if (r.body.includes("v2")) seen.v2++
            } else {
              seen.failed++
              seen.errors.push("error" in r ? r.error : `status ${r.status}`)
            }
          }
        })()
        write("rolling", site("static v2"))
        const [d] = yield* deploy("rolling", "rolling")
        // Keep polling a moment after the switch, while the old container drains and stops.
        yield* Effect.sleep("1500 millis")
        stop = true
        yield* Effect.promise(() => poller)
        console.log(
          `[deploy-e2e] zero-downtime: ${seen.ok} ok, ${seen.failed} failed (v1 ${seen.v1}, v2 ${seen.v2}) ${seen.errors.slice(0, 3).join("; ")}`
        )
        expect(d!.built).toBe(true)
        expect(d!.url).toBe(url)
        expect(seen.failed).toBe(0)
        expect(seen.v1).toBeGreaterThan(0)
        expect(seen.v2).toBeGreaterThan(0)
        expect(yield* body(url)).toBe("static v2\n")
      })
    )

    it.effect("rollback returns the previous content", () =>
      Effect.gen(function* () {
        yield* siteServing("rollback", "rollback v1")
        yield* siteServing("rollback", "rollback v2")
        const deployer = yield* Deployer
        const summary = yield* deployer.rollback(teamId, "rollback")
        expect(summary.built).toBe(false)
        expect(yield* body(summary.url!)).toBe("rollback v1\n")
      })
    )

    it.effect("a failing health gate leaves the old version serving", () =>
      Effect.gen(function* () {
        yield* siteServing("gated", "gated v1")
        const deployer = yield* Deployer
        const before = yield* deployer.get(teamId, "gated")
        const folder = write("broken", {
          Dockerfile: [`FROM ${StaticImage}`, "EXPOSE 8080", 'CMD ["sh", "-c", "sleep 1; exit 3"]', ""].join(
            "\n"
          )
        })
        const error = yield* Effect.flip(deploy(folder, "gated"))
        expect(error._tag).toBe("DeployFailed")
        if (error._tag === "DeployFailed") {
          expect(error.compensated).toBe(true)
          expect(error.reason).toMatch(/exited with code 3/)
        }
        const after = yield* deployer.get(teamId, "gated")
        expect(after.containerId).toBe(before.containerId)
        expect(yield* body(after.url!)).toBe("gated v1\n")
        const owned = yield* Effect.promise(async () => {
          // The failed deploy's container is removed in the background: wait for it to go.
          for (let i = 0; ; i++) {
            const list = await docker.client.listContainers({
              all: true,
              filters: JSON.stringify({ label: [`kyozo.service=${after.id}`] })
            })
            if (list.length === 1 || i >= 100) return list
            await new Promise((r) => setTimeout(r, 100))
          }
        })
        expect(owned.map((c) => c.Id)).toEqual([before.containerId])
      })
    )

    it.effect("a compose folder with two built services starts them in order on the team network", () =>
      Effect.gen(function* () {
        const folder = write("stack", {
          "compose.yaml": [
            "services:",
            "  web:",
            "    build: ./web",
            "    ports: ['8080:3000']",
            "    depends_on: [api]",
            "  api:",
            "    build: ./api",
            "    ports: ['8081:8080']",
            ""
          ].join("\n"),
          "api/Dockerfile": [
            `FROM ${StaticImage}`,
            "COPY index.html /www/index.html",
            "EXPOSE 8080",
            'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
            ""
          ].join("\n"),
          "api/index.html": "from api\n",
          "web/Dockerfile": [
            `FROM ${NodeImage}`,
            "COPY server.js /app/server.js",
            "EXPOSE 3000",
            'CMD ["node", "/app/server.js"]',
            ""
          ].join("\n"),
          "web/server.js": [
            "const http = require('node:http')",
            "http.createServer(async (req, res) => {",
            "  try { const r = await fetch('http://api:8080/'); res.end('web+' + (await r.text())) }",
            "  catch (e) { res.statusCode = 502; res.end(String(e)) }",
            "}).listen(Number(process.env.PORT) || 3000)",
            ""
          ].join("\n")
        })
        const deployed = yield* deploy(folder)
        expect(deployed.map((d) => d.serviceName)).toEqual(["api", "web"])
        const web = deployed[1]!
        expect(yield* body(web.url!)).toBe("web+from api\n")
      })
    )
  })
})

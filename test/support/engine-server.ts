/**
 * Shared set-up of the suites that run a real Kyozo server process on the real engine (and, with
 * KYOZO_EDGE=caddy, a real Caddy): the environment, booting until /healthz answers and the
 * bootstrap owner's credentials exist, deploying a workspace folder through REST, requests through
 * a service's URL, and the tear-down (server, its Caddy, the team's Docker objects, the data dir).
 */
import * as fs from "node:fs"
import * as path from "node:path"

import type { DockerSuite } from "./docker.js"
import { NodeImage, removeTeamObjects, StaticImage } from "./docker.js"
import { type Call, caller, doc, expectStatus } from "./rest.js"
import { type ServerProcess, startServer, stopEdge, waitFor } from "./server.js"

/** The environment of a server on the real engine with the local base images, rate limit off. */
export const engineEnv = (dataDir: string, env: Record<string, string> = {}): Record<string, string> => ({
  KYOZO_RUNTIME: "docker",
  KYOZO_DATA_DIR: dataDir,
  KYOZO_RATE_LIMIT: "off",
  KYOZO_BASE_IMAGES: JSON.stringify({ node: NodeImage, static: StaticImage }),
  ...env
})

export interface BootedServer {
  readonly server: ServerProcess
  /** REST calls as the bootstrap owner. */
  readonly call: Call
  readonly token: string
  readonly teamId: string
}

/** Starts a server and waits until it answers /healthz and has written the owner's credentials. */
export const bootServer = async (env: Record<string, string>): Promise<BootedServer> => {
  const dataDir = env.KYOZO_DATA_DIR!
  const server = await startServer(env)
  await waitFor("server /healthz", 60_000, async () =>
    fs.existsSync(path.join(dataDir, "credentials.json")) && (await server.get("/healthz")).status === 200
      ? true
      : undefined
  ).catch((e) => {
    throw new Error(`${e}\n${server.log()}`)
  })
  const creds = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
  return { server, call: caller(server.port, creds.token), token: creds.token, teamId: creds.teamId }
}

/** Stops the server and its Caddy, removes the team's Docker objects and the data dir. */
export const tearDown = async (
  docker: DockerSuite,
  dataDir: string,
  booted: Partial<BootedServer> | undefined
): Promise<void> => {
  await booted?.server?.stop()
  await stopEdge(dataDir)
  if (booted?.teamId) await removeTeamObjects(docker.client, booted.teamId)
  fs.rmSync(dataDir, { recursive: true, force: true })
}

/** One request through a URL on a fresh connection: the body of a 200, else `HTTP <status>` or `ERROR <why>`. */
export const hit = async (url: string, timeoutMs = 3000): Promise<string> => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { connection: "close" } })
    const text = await res.text()
    return res.status === 200 ? text : `HTTP ${res.status}`
  } catch (e) {
    return `ERROR ${(e as Error).message}`
  }
}

/** A Dockerfile serving `index.html` with busybox httpd on 8080. */
export const staticSiteDockerfile = [
  `FROM ${StaticImage}`,
  "COPY index.html /site/index.html",
  "EXPOSE 8080",
  `CMD ["httpd", "-f", "-p", "8080", "-h", "/site"]`,
  ""
].join("\n")

/** A Dockerfile running `server.js` with node, listening on 8080. */
export const nodeServerDockerfile = [
  `FROM ${NodeImage}`,
  "COPY server.js /app/server.js",
  "EXPOSE 8080",
  'CMD ["node", "/app/server.js"]',
  ""
].join("\n")

/**
 * A node app whose image declares `VOLUME /data`: each start appends its container's host name to
 * /data/boots.txt, and every request is answered with the file (every start so far).
 */
export const bootCounterFiles: Record<string, string> = {
  "server.js": `const fs = require("node:fs")
fs.appendFileSync("/data/boots.txt", process.env.HOSTNAME + "\\n")
require("node:http").createServer((req, res) => res.end(fs.readFileSync("/data/boots.txt", "utf8"))).listen(8080)
`,
  Dockerfile: [
    `FROM ${NodeImage}`,
    "COPY server.js /app/server.js",
    "VOLUME /data",
    "EXPOSE 8080",
    'CMD ["node", "/app/server.js"]',
    ""
  ].join("\n")
}

/** Writes a folder of the team's workspace (`<dataDir>/workspaces/<teamId>/<name>`); returns its path. */
export const workspaceFolder = (
  dataDir: string,
  teamId: string,
  name: string,
  files: Record<string, string>
): string => {
  const dir = path.join(dataDir, "workspaces", teamId, name)
  fs.mkdirSync(dir, { recursive: true })
  for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), content)
  return dir
}

/**
 * Deploys a workspace folder by path and waits until the deployment finished; its ids and
 * attributes. `attributes`: more of the service document's (e.g. `{ force: true }`).
 */
export const deployFolder = async (
  call: Call,
  folder: string,
  name: string,
  timeoutMs = 120_000,
  attributes: Record<string, unknown> = {}
) => {
  const created = expectStatus(
    await call("POST", "/v1/services", doc("services", { source: { path: folder }, name, ...attributes })),
    202,
    `deploy ${name}`
  )
  const deploymentId: string = created.body.data[0].id
  const serviceId: string = created.body.data[0].relationships.service.data.id
  const finished = await waitFor(`deployment ${deploymentId}`, timeoutMs, async () => {
    const r = await call("GET", `/v1/deployments/${deploymentId}`)
    return r.body?.data?.attributes?.finishedAt ? r.body.data.attributes : undefined
  })
  return { serviceId, deploymentId, attributes: finished }
}

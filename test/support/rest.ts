/**
 * REST helpers for tests against a real server (mock runtime): JSON:API calls, and a fixture of two
 * teams with members of every role, each with its own key.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { type ServerProcess, startServer, waitFor } from "./server.js"

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly body: any
}

export type Call = (
  method: string,
  route: string,
  body?: unknown,
  headers?: Record<string, string>
) => Promise<Reply>

export const caller =
  (port: number, token: string | undefined): Call =>
  async (method, route, body, headers = {}) => {
    const res = await fetch(`http://127.0.0.1:${port}${route}`, {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { "content-type": "application/vnd.api+json" }),
        ...headers
      },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000)
    })
    const text = await res.text()
    let parsed: any = text
    try {
      parsed = JSON.parse(text)
    } catch {
      /* not JSON */
    }
    return { status: res.status, headers: res.headers, text, body: parsed }
  }

export const doc = (type: string, attributes: Record<string, unknown>) => ({ data: { type, attributes } })

export interface Started {
  readonly server: ServerProcess
  readonly dataDir: string
  readonly ownerToken: string
  readonly teamId: string
  readonly stop: () => Promise<void>
}

/** A small node app in a team's own workspace folder (`<dataDir>/workspaces/<teamId>/<name>`). */
export const workspaceApp = (dataDir: string, teamId: string, name: string): string => {
  const dir = path.join(dataDir, "workspaces", teamId, name)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(
    path.join(dir, "package.json"),
    JSON.stringify({ name, scripts: { start: "node index.js" } })
  )
  fs.writeFileSync(
    path.join(dir, "index.js"),
    'require("http").createServer((q,r)=>r.end("ok")).listen(3000)\n'
  )
  return name
}

/** A server on the mock runtime with a fresh data dir; `app` and `app2` in the bootstrap team's workspace. */
export const start = async (prefix: string, env: Record<string, string> = {}): Promise<Started> => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  // No rate limit: the matrices send hundreds of requests.
  const server = await startServer({
    KYOZO_RUNTIME: "mock",
    KYOZO_DATA_DIR: dataDir,
    KYOZO_RATE_LIMIT: "off",
    ...env
  })
  await waitFor("server /healthz", 60_000, async () =>
    (await server.get("/healthz")).status === 200 ? true : undefined
  ).catch((e) => {
    throw new Error(`${e}\n${server.log()}`)
  })
  const creds = JSON.parse(fs.readFileSync(path.join(dataDir, "credentials.json"), "utf8"))
  for (const name of ["app", "app2"]) workspaceApp(dataDir, creds.teamId, name)
  return {
    server,
    dataDir,
    ownerToken: creds.token,
    teamId: creds.teamId,
    stop: async () => {
      await server.stop()
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

export const expectStatus = (reply: Reply, status: number, what: string): Reply => {
  if (reply.status !== status)
    throw new Error(`${what}: expected ${status}, got ${reply.status}: ${reply.text}`)
  return reply
}

/** Adds a member with a role and issues a key for them (by an owner or admin). */
export const memberWithKey = async (admin: Call, email: string, role: string) => {
  // A new person is a member at once (the answer is an invitation, as for anyone): find their id.
  expectStatus(await admin("POST", "/v1/members", doc("members", { email, role })), 202, `add ${email}`)
  const members = expectStatus(await admin("GET", "/v1/members"), 200, "members").body.data as Array<any>
  const userId: string = members.find((m) => m.attributes.email === email)!.id
  const key = expectStatus(
    await admin("POST", "/v1/api-keys", doc("api-keys", { name: email, userId })),
    201,
    `key for ${email}`
  )
  return { userId, token: key.body.data.attributes.key as string, keyId: key.body.data.id as string }
}

/** Deploys a workspace folder and waits until its deployment finished; returns service and deployment ids. */
export const deployService = async (call: Call, folder: string, name: string) => {
  const created = expectStatus(
    await call("POST", "/v1/services", doc("services", { source: { path: folder }, name })),
    202,
    `deploy ${name}`
  )
  const deploymentId: string = created.body.data[0].id
  const serviceId: string = created.body.data[0].relationships.service.data.id
  await waitFor(`deployment ${deploymentId}`, 30_000, async () => {
    const r = await call("GET", `/v1/deployments/${deploymentId}`)
    return r.body?.data?.attributes?.finishedAt ? true : undefined
  })
  return { serviceId, deploymentId }
}

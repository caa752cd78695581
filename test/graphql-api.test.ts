/**
 * The GraphQL read API of a real server process (mock runtime, PostgreSQL): `POST /graphql` with
 * the same bearer keys as REST, the schema at `/graphql/schema.graphql`, team scoping (another
 * team's ids answer null or NOT_FOUND, exactly like made-up ones), depth and cost limits, bad
 * documents answered as GraphQL errors (never a 500), and the number of SQL statements a list of
 * 100 services with their last deployments costs, counted on the wire between server and database.
 */
import type { TeamId } from "@kyozo/api/domain/Ids"
import { ApiKeyRepo } from "@kyozo/core/store/ApiKeyRepo"
import { layerPostgres } from "@kyozo/core/store/Database"
import { DeploymentEventRepo } from "@kyozo/core/store/DeploymentEventRepo"
import { DeploymentRepo } from "@kyozo/core/store/DeploymentRepo"
import { HealthCheckRepo } from "@kyozo/core/store/HealthCheckRepo"
import { MetricSampleRepo } from "@kyozo/core/store/MetricSampleRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { UserRepo } from "@kyozo/core/store/UserRepo"
import { WebhookRepo } from "@kyozo/core/store/WebhookRepo"
import { Effect, Layer, ManagedRuntime, Option } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { startStatementLog, type StatementLog } from "./support/pg-statements.js"
import { startTenantServer, type Tenant, type TenantServer } from "./support/tenants.js"

const SERVICES = 100

let s: TenantServer
let statements: StatementLog
let repos: ManagedRuntime.ManagedRuntime<
  ServiceRepo | DeploymentRepo | HealthCheckRepo | WebhookRepo | MetricSampleRepo,
  unknown
>
let b: Tenant
const A = { serviceIds: [] as Array<string>, deploymentIds: [] as Array<string>, webhookId: "", eventId: "" }
const B = { serviceId: "", deploymentId: "" }

interface Reply {
  readonly status: number
  readonly text: string
  readonly body: any
}

const post = async (body: string, headers: Record<string, string>): Promise<Reply> => {
  const res = await fetch(`${s.base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...headers },
    body,
    signal: AbortSignal.timeout(30_000)
  })
  const text = await res.text()
  let parsed: any = text
  try {
    parsed = JSON.parse(text)
  } catch {
    /* not JSON */
  }
  return { status: res.status, text, body: parsed }
}

const gql = (token: string, query: string, variables?: Record<string, unknown>) =>
  post(JSON.stringify({ query, ...(variables === undefined ? {} : { variables }) }), {
    authorization: `Bearer ${token}`
  })

/** Team `teamId` gets a stopped service with one finished deployment (stopped: no loop acts on it). */
const serviceWithDeployment = (teamId: TeamId, name: string) =>
  repos.runPromise(
    Effect.gen(function* () {
      const service = yield* (yield* ServiceRepo).create({ teamId, name, desiredState: "stopped" })
      const deployments = yield* DeploymentRepo
      const created = yield* deployments.create({ teamId, serviceId: service.id, image: `img/${name}` })
      const deployment = Option.getOrThrow(created)
      yield* deployments.updateStatus(deployment.id, { status: "succeeded" })
      return { serviceId: service.id as string, deploymentId: deployment.id as string }
    })
  )

beforeAll(async () => {
  s = await startTenantServer(
    { KYOZO_RATE_LIMIT: "off" },
    {
      serverDatabaseUrl: async (url) => {
        statements = await startStatementLog(url)
        return statements.url
      }
    }
  )
  repos = ManagedRuntime.make(
    Layer.mergeAll(
      ServiceRepo.Default,
      DeploymentRepo.Default,
      HealthCheckRepo.Default,
      WebhookRepo.Default,
      MetricSampleRepo.Default
    ).pipe(Layer.provide(layerPostgres(s.databaseUrl)))
  )
  b = await s.newTenant("gql-b")
  for (let i = 0; i < SERVICES; i++) {
    const { serviceId, deploymentId } = await serviceWithDeployment(s.owner.teamId, `gql-a-${i}`)
    A.serviceIds.push(serviceId)
    A.deploymentIds.push(deploymentId)
  }
  Object.assign(B, await serviceWithDeployment(b.teamId, "gql-b-only"))
  await repos.runPromise(
    Effect.gen(function* () {
      yield* (yield* HealthCheckRepo).record({
        serviceId: A.serviceIds[0]!,
        containerId: null,
        checkType: "http",
        status: "healthy",
        latencyMs: 3,
        detail: "200 OK"
      })
      yield* (yield* MetricSampleRepo).insertMany([
        {
          serviceId: A.serviceIds[0]!,
          containerId: "c1",
          cpuPercent: 12.5,
          memoryBytes: 5_000_000_000,
          memoryLimitBytes: 8_000_000_000,
          pids: 7
        }
      ])
      const hooks = yield* WebhookRepo
      // Disabled: nothing is delivered anywhere by this test.
      const hook = yield* hooks.create({ teamId: s.owner.teamId, url: "http://127.0.0.1:9/hook" })
      yield* hooks.setEnabled(s.owner.teamId, hook.id, false)
      A.webhookId = hook.id
    })
  )
  A.eventId = String(
    await s.run(
      Effect.flatMap(DeploymentEventRepo, (e) =>
        e.append({
          teamId: s.owner.teamId,
          serviceId: A.serviceIds[0]! as never,
          deploymentId: A.deploymentIds[0]! as never,
          type: "deploy.succeeded",
          message: "alpha-secret-event"
        })
      )
    )
  )
}, 120_000)

afterAll(async () => {
  if (process.env.GQL_DEBUG) console.log(s?.server.log())
  await repos?.dispose()
  await s?.close()
  await statements?.close()
})

describe("POST /graphql", () => {
  it("answers { services { name status } } with the team's services and REST's status values", async () => {
    const r = await gql(s.owner.token, "{ services { name status } }")
    expect(r.status).toBe(200)
    expect(r.body.errors).toBeUndefined()
    expect(r.body.data.services).toHaveLength(50)
    const rest = await fetch(`${s.base}/v1/services`, {
      headers: { authorization: `Bearer ${s.owner.token}` }
    }).then((res) => res.json() as Promise<any>)
    expect(r.body.data.services).toEqual(
      rest.data.map((d: any) => ({ name: d.attributes.name, status: d.attributes.status }))
    )
    // GraphQL over HTTP's GET form answers queries too.
    const viaGet = await fetch(
      `${s.base}/graphql?query=${encodeURIComponent("{ services(first: 1) { name } }")}`,
      {
        headers: { authorization: `Bearer ${s.owner.token}`, accept: "application/json" }
      }
    )
    expect(viaGet.status).toBe(200)
    expect(await viaGet.json()).toEqual({ data: { services: [{ name: "gql-a-0" }] } })
    const all = await gql(s.owner.token, "{ services(first: 100) { id name } }")
    expect(all.body.data.services.map((x: any) => x.id)).toEqual(A.serviceIds)
  })

  it("pages with first/after like REST, and refuses a foreign or unknown cursor", async () => {
    const page = await gql(s.owner.token, "query($after: ID) { services(first: 2, after: $after) { id } }", {
      after: A.serviceIds[1]
    })
    expect(page.body.data.services.map((x: any) => x.id)).toEqual(A.serviceIds.slice(2, 4))
    for (const after of [B.serviceId, "svc_made_up"]) {
      const r = await gql(s.owner.token, "query($after: ID) { services(after: $after) { id } }", { after })
      expect(r.status).toBe(200)
      expect(r.body.data).toBeNull()
      expect(r.body.errors[0].extensions.code).toBe("BAD_USER_INPUT")
    }
    const tooMany = await gql(s.owner.token, "{ services(first: 1000) { id } }")
    expect(tooMany.body.errors[0].message).toMatch(/first.*1 to 100/)
  })

  it("reads deployments, events, health history, metrics, members and webhooks through the application", async () => {
    const r = await gql(
      s.owner.token,
      `query($id: ID!) {
        service(id: $id) { id name hostUrl lastDeployment { id status image } }
        deployments(service: $id) { id status service { name } }
        events { id type message service { id } }
        healthHistory(service: $id) { checkType status latencyMs detail }
        metrics(service: $id, window: day) { resolution cpuPercent memoryBytes memoryLimitBytes pids }
        members { email role }
        webhooks { id url enabled eventTypes }
      }`,
      { id: A.serviceIds[0] }
    )
    expect(r.body.errors).toBeUndefined()
    const d = r.body.data
    expect(d.service).toEqual({
      id: A.serviceIds[0],
      name: "gql-a-0",
      hostUrl: null,
      lastDeployment: { id: A.deploymentIds[0], status: "succeeded", image: "img/gql-a-0" }
    })
    expect(d.deployments).toEqual([
      { id: A.deploymentIds[0], status: "succeeded", service: { name: "gql-a-0" } }
    ])
    expect(d.events).toContainEqual({
      id: A.eventId,
      type: "deploy.succeeded",
      message: "alpha-secret-event",
      service: { id: A.serviceIds[0] }
    })
    expect(d.healthHistory).toEqual([
      { checkType: "http", status: "healthy", latencyMs: 3, detail: "200 OK" }
    ])
    expect(d.metrics).toEqual([
      {
        resolution: "1m",
        cpuPercent: 12.5,
        memoryBytes: 5_000_000_000,
        memoryLimitBytes: 8_000_000_000,
        pids: 7
      }
    ])
    expect(d.members).toContainEqual({ email: "admin@kyozo.local", role: "owner" })
    expect(d.webhooks).toEqual([
      { id: A.webhookId, url: "http://127.0.0.1:9/hook", enabled: false, eventTypes: expect.any(Array) }
    ])
    // By name too, as REST resolves services.
    const byName = await gql(s.owner.token, '{ service(id: "gql-a-1") { id } }')
    expect(byName.body.data.service.id).toBe(A.serviceIds[1])
  })
})

describe("roles", () => {
  it("a viewer of the team reads what an owner reads (every role reads; only writes need more)", async () => {
    const viewer = await s.run(
      Effect.gen(function* () {
        const user = yield* (yield* UserRepo).create({ email: "gql-viewer@a.example", name: "viewer" })
        yield* (yield* TeamRepo).addMember(s.owner.teamId, user.id, "viewer")
        return (yield* (yield* ApiKeyRepo).issue({ teamId: s.owner.teamId, userId: user.id, name: "v" })).key
      })
    )
    const query = `query($id: ID!) { services(first: 3) { id name } service(id: $id) { name }
      deployments(service: $id) { id } healthHistory(service: $id) { status } webhooks { id } }`
    const [asViewer, asOwner] = await Promise.all([
      gql(viewer, query, { id: A.serviceIds[0] }),
      gql(s.owner.token, query, { id: A.serviceIds[0] })
    ])
    expect(asViewer.body.errors).toBeUndefined()
    expect(asViewer.body).toEqual(asOwner.body)
  })
})

describe("team scoping", () => {
  it("another team's ids answer exactly what made-up ids answer, and its lists hold nothing of A", async () => {
    const foreign = { service: A.serviceIds[0]!, deployment: A.deploymentIds[0]! }
    const madeUp = { service: "svc_made_up_id", deployment: "dep_made_up_id" }
    // One case per query that takes an id; the lists are the rest. A new query without a case fails below.
    const byId: Record<string, (ids: { service: string; deployment: string }) => Promise<Reply>> = {
      service: (ids) => gql(b.token, "query($id: ID!) { service(id: $id) { id name } }", { id: ids.service }),
      deployment: (ids) =>
        gql(b.token, "query($id: ID!) { deployment(id: $id) { id } }", { id: ids.deployment }),
      deployments: (ids) =>
        gql(b.token, "query($id: ID!) { deployments(service: $id) { id } }", { id: ids.service }),
      events: (ids) => gql(b.token, "query($id: ID!) { events(service: $id) { id } }", { id: ids.service }),
      healthHistory: (ids) =>
        gql(b.token, "query($id: ID!) { healthHistory(service: $id) { status } }", { id: ids.service }),
      metrics: (ids) =>
        gql(b.token, "query($id: ID!) { metrics(service: $id) { cpuPercent } }", { id: ids.service })
    }
    const listQueries = ["services", "deployments", "events", "members", "webhooks"]
    const fields = await gql(b.token, "{ __schema { queryType { fields { name } } } }")
    const queryFields: Array<string> = fields.body.data.__schema.queryType.fields.map((f: any) => f.name)
    expect(new Set(queryFields)).toEqual(new Set([...Object.keys(byId), ...listQueries]))
    const ask = (ids: { service: string; deployment: string }) =>
      Promise.all(Object.values(byId).map((f) => f(ids)))
    const [forForeign, forMadeUp] = await Promise.all([ask(foreign), ask(madeUp)])
    expect(forForeign.map((r) => r.body)).toEqual(forMadeUp.map((r) => r.body))
    const [service, deployment, deployments] = forForeign
    expect(service!.body).toEqual({ data: { service: null } })
    expect(deployment!.body).toEqual({ data: { deployment: null } })
    expect(deployments!.body.errors[0].extensions.code).toBe("NOT_FOUND")
    for (const r of forForeign) {
      expect(r.status).toBe(200)
      expect(r.text).not.toContain(foreign.service)
      expect(r.text).not.toContain(foreign.deployment)
    }

    const lists = await gql(
      b.token,
      `{ services(first: 100) { id name lastDeployment { id } }
         deployments(first: 100) { id service { id } }
         events(first: 100) { id message }
         members { email }
         webhooks { id } }`
    )
    expect(lists.body.errors).toBeUndefined()
    expect(lists.body.data.services).toEqual([
      { id: B.serviceId, name: "gql-b-only", lastDeployment: { id: B.deploymentId } }
    ])
    expect(lists.body.data.deployments).toEqual([{ id: B.deploymentId, service: { id: B.serviceId } }])
    expect(lists.body.data.webhooks).toEqual([])
    for (const secret of ["alpha-secret-event", "admin@kyozo.local", "gql-a-", A.webhookId])
      expect(lists.text).not.toContain(secret)
    // From the start of the event log, B sees none of A's events.
    const after = await gql(b.token, `{ events(after: "0") { id } }`)
    expect(after.body.data.events.map((e: any) => e.id)).not.toContain(A.eventId)
  })

  it("refuses a missing, malformed or unknown key with 401 before any GraphQL runs", async () => {
    const query = JSON.stringify({ query: "{ services { name } }" })
    for (const headers of [
      {} as Record<string, string>,
      { authorization: "Bearer " },
      { authorization: "Basic abc" },
      { authorization: "Bearer kz_nope_nope" }
    ]) {
      const r = await post(query, headers)
      expect(r.status).toBe(401)
      expect(r.body.errors[0].extensions.code).toBe("UNAUTHENTICATED")
      expect(r.body.data).toBeUndefined()
    }
  })
})

describe("the dashboard's session cookie", () => {
  it("reads with the cookie and its CSRF token; without the token the POST is refused", async () => {
    const signIn = await fetch(`${s.base}/v1/session`, {
      method: "POST",
      headers: { "content-type": "application/vnd.api+json" },
      body: JSON.stringify({ data: { type: "sessions", attributes: { apiKey: b.token } } })
    })
    expect(signIn.status).toBe(201)
    const cookie = /kyozo_session=([^;]*)/.exec(signIn.headers.get("set-cookie") ?? "")?.[1] ?? ""
    const csrf = ((await signIn.json()) as any).data.attributes.csrfToken as string
    const query = JSON.stringify({ query: "{ services { name } }" })
    const withToken = await post(query, { cookie: `kyozo_session=${cookie}`, "x-csrf-token": csrf })
    expect(withToken.status).toBe(200)
    expect(withToken.body.data.services).toEqual([{ name: "gql-b-only" }])
    const withoutToken = await post(query, { cookie: `kyozo_session=${cookie}` })
    expect(withoutToken.status).toBe(403)
    expect(withoutToken.text).not.toContain("gql-b-only")
  })
})

describe("batching", () => {
  it(`lists ${SERVICES} services with their last deployments in a bounded number of SQL statements`, async () => {
    const query = `{ services(first: ${SERVICES}) { id name status lastDeployment { id status } } }`
    // The server's own loops also talk to the database: the least of a few runs is the request's cost.
    const cost = async (q: string) => {
      const runs: Array<ReadonlyArray<string>> = []
      // (The first run also reads the page of services; later ones find it in the Services cache.)
      for (let i = 0; i < 3; i++) {
        const { value, statements: sent } = await statements.during(() => gql(s.owner.token, q))
        expect(value.body.errors).toBeUndefined()
        runs.push(sent)
      }
      console.log(`statements per run: ${runs.map((r) => r.length).join(", ")} for ${q.slice(0, 60)}…`)
      return runs.reduce((a, b) => (b.length < a.length ? b : a))
    }
    const one = await cost(`{ services(first: 1) { id name status lastDeployment { id status } } }`)
    const hundred = await cost(query)
    const full = await gql(s.owner.token, query)
    expect(full.body.data.services).toHaveLength(SERVICES)
    expect(full.body.data.services.every((x: any) => x.lastDeployment?.status === "succeeded")).toBe(true)
    console.log(
      `GraphQL ${SERVICES} services + last deployment: ${hundred.length} SQL statement(s) (1 service: ${one.length})`,
      hundred.map((q) => q.replace(/\s+/g, " ").slice(0, 90))
    )
    // One read of the deployments for the whole page (the service page itself may be cached).
    expect(hundred.length).toBeLessThanOrEqual(3)
    expect(hundred.filter((q) => /from deployments/i.test(q))).toHaveLength(1)
    expect(hundred.length - one.length).toBeLessThanOrEqual(1)

    // The counter sees per-service reads: 20 services asked one by one cost at least 20 statements.
    const oneByOne = A.serviceIds
      .slice(0, 20)
      .map((id, i) => `s${i}: deployments(service: "${id}", first: 1) { id }`)
      .join("\n")
    const naive = await cost(`{ ${oneByOne} }`)
    console.log(`baseline, 20 services asked one by one: ${naive.length} SQL statements`)
    expect(naive.length).toBeGreaterThanOrEqual(20)

    // The reverse direction too: deployments with their services, one read of the services.
    const back = await cost(`{ deployments(first: ${SERVICES}) { id service { name } } }`)
    expect(back.filter((q) => /from container_service_instances/i.test(q)).length).toBeLessThanOrEqual(1)
    expect(back.length).toBeLessThanOrEqual(4)
  })
})

describe("limits and bad documents", () => {
  it("refuses a query nested deeper than the limit with a GraphQL error, before it runs", async () => {
    let selection = "id"
    for (let i = 0; i < 6; i++) selection = `lastDeployment { service { ${selection} } }`
    const { value: r, statements: sent } = await statements.during(() =>
      gql(s.owner.token, `{ services { ${selection} } }`)
    )
    expect([200, 400]).toContain(r.status)
    expect(r.body.data).toBeUndefined()
    expect(r.body.errors[0].message).toMatch(/depth limit/i)
    expect(r.body.errors[0].extensions.code).toBe("QUERY_LIMIT_EXCEEDED")
    expect(sent.filter((q) => /from deployments/i.test(q))).toEqual([])
  })

  it("refuses a query whose cost is over the limit (aliases multiply it) with a GraphQL error", async () => {
    const fields = "id name status kind image url cpuMillis memoryMb lastDeployment { id status image error }"
    const aliases = Array.from({ length: 10 }, (_, i) => `a${i}: services(first: 100) { ${fields} }`).join(
      "\n"
    )
    const r = await gql(s.owner.token, `{ ${aliases} }`)
    expect([200, 400]).toContain(r.status)
    expect(r.body.data).toBeUndefined()
    expect(r.body.errors[0].message).toMatch(/cost limit/i)
    expect(r.body.errors[0].extensions.code).toBe("QUERY_LIMIT_EXCEEDED")
  })

  it("refuses more aliases than the limit (one list asked for many times) with a GraphQL error", async () => {
    const aliases = Array.from({ length: 50 }, (_, i) => `m${i}: members { email }`).join("\n")
    const { value: r, statements: sent } = await statements.during(() => gql(s.owner.token, `{ ${aliases} }`))
    expect([200, 400]).toContain(r.status)
    expect(r.body.data).toBeUndefined()
    expect(r.body.errors[0].message).toMatch(/aliases limit of 20/i)
    expect(r.body.errors[0].extensions.code).toBe("QUERY_LIMIT_EXCEEDED")
    expect(sent.filter((q) => /from memberships/i.test(q))).toEqual([])
  })

  it("answers syntax errors, unknown fields and bodies that are not GraphQL requests with 4xx GraphQL errors", async () => {
    const auth = { authorization: `Bearer ${s.owner.token}` }
    // GraphQL over HTTP: with `accept: application/json` a document error is a 200 with errors and
    // no data; with `application/graphql-response+json` it is a 400.
    const syntax = await gql(s.owner.token, "{ services { name ")
    expect(syntax.status).toBe(200)
    expect(syntax.body.data).toBeUndefined()
    expect(syntax.body.errors[0].message).toMatch(/Syntax Error/)
    const strict = await post(JSON.stringify({ query: "{ services { name " }), {
      ...auth,
      accept: "application/graphql-response+json"
    })
    expect(strict.status).toBe(400)
    expect(strict.body.errors[0].message).toMatch(/Syntax Error/)
    const unknown = await gql(s.owner.token, "{ services { password } }")
    expect([200, 400]).toContain(unknown.status)
    expect(unknown.body.errors[0].message).toMatch(/Cannot query field "password"/)
    for (const body of ["not json", "{}", '{"query": 42}', "[]"]) {
      const r = await post(body, auth)
      expect(r.status).toBeGreaterThanOrEqual(400)
      expect(r.status).toBeLessThan(500)
      expect(r.text).not.toBe("")
    }
    const nul = await gql(s.owner.token, "query($id: ID!) { service(id: $id) { id } }", { id: "a\u0000b" })
    expect(nul.status).toBe(200)
    expect(nul.body.errors[0].extensions.code).toBe("BAD_USER_INPUT")
    const huge = await post(JSON.stringify({ query: `{ services { name } } #${"x".repeat(300_000)}` }), auth)
    expect(huge.status).toBe(413)
  })
})

describe("GET /graphql/schema.graphql", () => {
  it("publishes the schema as SDL", async () => {
    const res = await fetch(`${s.base}/graphql/schema.graphql`)
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/^application\/graphql/)
    const sdl = await res.text()
    expect(sdl).toContain("services(first: Int = 50, after: ID): [Service!]!")
    expect(sdl).toContain("service(id: ID!): Service")
    for (const field of ["deployments(", "events(", "healthHistory(", "metrics(", "members:", "webhooks:"])
      expect(sdl).toContain(`  ${field}`)
    expect(sdl).toMatch(/type Service \{[^}]*\bstatus: String!/)
    // Introspection answers too (within the limits: they ignore introspection fields).
    const intro = await gql(s.owner.token, "{ __schema { queryType { name } } }")
    expect(intro.body).toEqual({ data: { __schema: { queryType: { name: "Query" } } } })
  })
})

describe("rate limit", () => {
  it("takes from the key's bucket like every other front door: over it, 429 with Retry-After", async () => {
    const limited = await startTenantServer({ KYOZO_RATE_LIMIT: "1/3" })
    try {
      const statuses: Array<number> = []
      let retryAfter: string | null = null
      for (let i = 0; i < 6; i++) {
        const res = await fetch(`${limited.base}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${limited.owner.token}` },
          body: JSON.stringify({ query: "{ services { name } }" })
        })
        statuses.push(res.status)
        if (res.status === 429) {
          retryAfter = res.headers.get("retry-after")
          expect(((await res.json()) as any).errors[0].extensions.code).toBe("RATE_LIMITED")
        } else await res.text()
      }
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200])
      expect(statuses).toContain(429)
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1)
    } finally {
      await limited.close()
    }
  }, 90_000)
})

/**
 * Custom domains as a user meets them, on the real engine with a real Caddy as the edge (issue
 * 10): a team adds a domain to a running service (REST, then the CLI), and at once, with no
 * redeploy, a request to the edge's shared port with that Host reaches the service, and so does
 * HTTPS with SNI = the domain, under a certificate of Caddy's internal CA (from the data dir).
 * The name is one service's across all teams (409), other teams' services are 404, viewers 403,
 * bad names 422; removing the domain stops the routing; deleting the service frees its names.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import * as CaddyAdmin from "@kyozo/core/edge/CaddyAdmin"
import { Either, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { buildCli, runKyozo } from "./support/cli.js"
import { dockerSuite, requireBaseImages } from "./support/docker.js"
import { caddySuite, httpGet, httpsGet } from "./support/edge.js"
import {
  type BootedServer,
  bootServer,
  deployFolder,
  engineEnv,
  staticSiteDockerfile,
  tearDown,
  workspaceFolder
} from "./support/engine-server.js"
import { type Call, caller, doc, expectStatus, memberWithKey } from "./support/rest.js"
import { rpcAt, tagOf } from "./support/rpc.js"
import { freePort, waitFor } from "./support/server.js"

const docker = await dockerSuite("domains")
const caddy = caddySuite("domains")
if (docker.available) await requireBaseImages(docker.client)

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-dom-"))
let booted: BootedServer | undefined
let edgePort = 0
let tlsPort = 0
let shopId = ""
let rivalId = ""
let teamB: Call
let teamBToken = ""
let viewer: Call
let viewerToken = ""
// Unique per run: a name is global, and a Caddy left by a crashed run must not answer for it.
const domain = `shop-${Date.now().toString(36)}.example.test`

/** One GET to the edge's shared port with `Host: name`, on a fresh connection. */
const viaHost = async (name: string) => {
  const { body, status } = await httpGet(edgePort, { host: name }, 5000)
  return { status, body }
}

/** One HTTPS GET with SNI and Host `name`, verified against `ca`. */
const viaTls = (name: string, ca: Buffer) => httpsGet(tlsPort, name, ca, 5000)

/** The shop's domain, as the first test adds it (idempotent: each test also runs alone). */
const withShopDomain = async () =>
  expectStatus(
    await booted!.call("POST", `/v1/services/${shopId}/domains`, doc("domains", { hostname: domain })),
    201,
    "the shop's domain"
  )

const site = (text: string) => ({ "index.html": `${text}\n`, Dockerfile: staticSiteDockerfile })

describe.skipIf(!docker.available || !caddy.available)("custom domains on the real engine and Caddy", () => {
  beforeAll(async () => {
    edgePort = await freePort()
    tlsPort = await freePort()
    booted = await bootServer(
      engineEnv(dataDir, {
        KYOZO_EDGE: "caddy",
        KYOZO_EDGE_PORT: String(edgePort),
        KYOZO_EDGE_TLS_PORT: String(tlsPort)
      })
    )
    const { call, teamId, server } = booted
    workspaceFolder(dataDir, teamId, "shop", site("the shop"))
    const shop = await deployFolder(call, "shop", "shop")
    expect(shop.attributes.status).toBe("succeeded")
    shopId = shop.serviceId
    viewerToken = (await memberWithKey(call, "viewer@a.example", "viewer")).token
    viewer = caller(server.port, viewerToken)
    // Team B, with a service of its own (it need not answer: only the names are at stake).
    const made = expectStatus(
      await call("POST", "/v1/teams", doc("teams", { name: "rivals" })),
      201,
      "team b"
    )
    teamBToken = made.body.meta.ownerKey.attributes.key
    teamB = caller(server.port, teamBToken)
    workspaceFolder(dataDir, made.body.data.id, "rival", site("the rival"))
    rivalId = (await deployFolder(teamB, "rival", "rival")).serviceId
    buildCli()
  }, 240_000)

  afterAll(() => tearDown(docker, dataDir, booted), 60_000)

  it("a domain added to a running service answers by Host and over HTTPS at once; the view lists it", async () => {
    const { call } = booted!
    expect((await viaHost(domain)).status).toBe(404)
    const added = expectStatus(
      await call(
        "POST",
        `/v1/services/${shopId}/domains`,
        doc("domains", { hostname: domain.toUpperCase() })
      ),
      201,
      "add domain"
    )
    expect(added.body.data).toMatchObject({ type: "domains", id: domain, attributes: { hostname: domain } })
    // No redeploy, no wait for a sync pass: the route changed with the answer.
    expect(await viaHost(domain)).toEqual({ status: 200, body: "the shop\n" })
    const view = expectStatus(await call("GET", `/v1/services/${shopId}`), 200, "service").body.data
      .attributes
    expect(view.domains).toEqual([domain])
    expect(view.httpsUrl).toBe(
      String(view.hostUrl).replace("http://", "https://").replace(`:${edgePort}`, `:${tlsPort}`)
    )
    const listed = expectStatus(await call("GET", `/v1/services/${shopId}/domains`), 200, "list").body
    expect(listed.data.map((d: any) => d.id)).toEqual([domain])

    const root = CaddyAdmin.internalCaRoot(dataDir)
    const ca = await waitFor("Caddy's internal CA root", 15_000, async () =>
      fs.existsSync(root) ? fs.readFileSync(root) : undefined
    )
    const secure = await waitFor("the HTTPS answer for the domain", 20_000, async () => {
      const r = await viaTls(domain, ca)
      return r.status === 200 ? r : undefined
    })
    expect(secure.body).toBe("the shop\n")
    expect(secure.issuer).toMatch(/Caddy Local Authority/)
    expect(secure.subjectAltName).toContain(`DNS:${domain}`)
  }, 60_000)

  it("one service per name across teams (409); other teams 404, viewers 403, bad names 422", async () => {
    const { call } = booted!
    expectStatus(
      await call("POST", `/v1/services/${shopId}/domains`, doc("domains", { hostname: domain })),
      201,
      "add again (idempotent)"
    )
    const taken = expectStatus(
      await teamB("POST", `/v1/services/${rivalId}/domains`, doc("domains", { hostname: domain })),
      409,
      "another team takes the name"
    )
    expect(taken.body.errors[0]).toMatchObject({
      code: "domain_taken",
      source: { pointer: "/data/attributes/hostname" }
    })
    // Two teams racing for one fresh name: exactly one wins.
    const fresh = `race-${Date.now().toString(36)}.example.test`
    const race = await Promise.all([
      call("POST", `/v1/services/${shopId}/domains`, doc("domains", { hostname: fresh })),
      teamB("POST", `/v1/services/${rivalId}/domains`, doc("domains", { hostname: fresh }))
    ])
    expect(race.map((r) => r.status).sort()).toEqual([201, 409])

    // Another team's service is as unknown as a made-up one, for reading and for writing.
    expectStatus(await teamB("GET", `/v1/services/${shopId}/domains`), 404, "B lists A's")
    expectStatus(
      await teamB("POST", `/v1/services/${shopId}/domains`, doc("domains", { hostname: "b.example.test" })),
      404,
      "B adds to A's"
    )
    expectStatus(await teamB("DELETE", `/v1/services/${shopId}/domains/${domain}`), 404, "B removes A's")
    expectStatus(await viewer("GET", `/v1/services/${shopId}/domains`), 200, "a viewer reads")
    const denied = expectStatus(
      await viewer("POST", `/v1/services/${shopId}/domains`, doc("domains", { hostname: "v.example.test" })),
      403,
      "a viewer adds"
    )
    expect(denied.body.errors[0].code).toBe("forbidden")

    for (const [bad, code] of [
      ["1.2.3.4", "invalid_domain_ip_address"],
      ["shop example.test", "invalid_domain_syntax"],
      ["shop.example.test.", "invalid_domain_trailing_dot"],
      ["intranet", "invalid_domain_single_label"],
      ["x.rival.rivals.localhost", "invalid_domain_reserved"]
    ] as const) {
      const r = expectStatus(
        await call("POST", `/v1/services/${shopId}/domains`, doc("domains", { hostname: bad })),
        422,
        `bad name ${bad}`
      )
      expect(r.body.errors[0].code).toBe(code)
      expect(r.body.errors[0].detail.length).toBeGreaterThan(20)
    }
    // Nothing was stored by the refusals.
    const names = (await call("GET", `/v1/services/${shopId}/domains`)).body.data.map((d: any) => d.id)
    expect(names.sort()).toEqual([domain, ...(race[0]!.status === 201 ? [fresh] : [])].sort())
  }, 60_000)

  it("over RPC: the same rule, as typed errors; GetService lists the domains and the HTTPS URL", async () => {
    const { server, token } = booted!
    await withShopDomain()
    const url = `http://127.0.0.1:${server.port}`
    const view = await rpcAt(url, token, (c) => c.GetService({ service: "shop" }))
    expect(Either.getOrThrow(view)).toMatchObject({
      domains: expect.arrayContaining([domain]),
      httpsUrl: expect.stringMatching(new RegExp(`^https://shop\\..+:${tlsPort}$`))
    })
    const taken = await rpcAt(url, teamBToken, (c) => c.AddDomain({ service: rivalId, hostname: domain }))
    expect(tagOf(taken)).toBe("DomainTaken")
    const bad = await rpcAt(url, token, (c) =>
      c.AddDomain({ service: "shop", hostname: "shop.example.test." })
    )
    expect(Either.isLeft(bad) && bad.left).toMatchObject({ _tag: "InvalidDomain", reason: "trailing-dot" })
    expect(tagOf(await rpcAt(url, teamBToken, (c) => c.ListDomains({ service: shopId })))).toBe(
      "ServiceNotFound"
    )
    expect(
      tagOf(
        await rpcAt(url, viewerToken, (c) => c.AddDomain({ service: "shop", hostname: "v.example.test" }))
      )
    ).toBe("Forbidden")
    expect(
      tagOf(
        await rpcAt(url, token, (c) => c.RemoveDomain({ service: "shop", hostname: "never.example.test" }))
      )
    ).toBe("DomainNotFound")
    const listed = Either.getOrThrow(await rpcAt(url, token, (c) => c.ListDomains({ service: "shop" })))
    expect(listed.map((d) => d.hostname)).toContain(domain)
    // Each change is an event of the service.
    const events = Either.getOrThrow(
      await rpcAt(url, token, (c) => Stream.runCollect(c.Events({ service: "shop" })))
    )
    expect([...events].some((e) => e.type === "service.domain-added" && e.message.includes(domain))).toBe(
      true
    )
    // GraphQL reads the same names.
    const gql = await booted!.call(
      "POST",
      "/graphql",
      JSON.stringify({ query: `{ service(id: "${shopId}") { domains httpsUrl } }` }),
      { "content-type": "application/json" }
    )
    expect(gql.body.data.service.domains).toContain(domain)
    expect(gql.body.data.service.httpsUrl).toMatch(/^https:\/\/shop\./)
  }, 60_000)

  it("through the CLI: ls and ps --json show the domains; rm stops the routing at once", async () => {
    await withShopDomain()
    const extra = `cli-${Date.now().toString(36)}.example.test`
    const add = await runKyozo(dataDir, ["domains", "add", "shop", extra, "--json"])
    expect(add.code, add.stderr).toBe(0)
    expect(JSON.parse(add.stdout)).toMatchObject({ hostname: extra, serviceId: shopId })
    expect(await viaHost(extra)).toEqual({ status: 200, body: "the shop\n" })

    const ls = await runKyozo(dataDir, ["domains", "ls", "shop", "--json"])
    expect(JSON.parse(ls.stdout).map((d: any) => d.hostname)).toContain(extra)
    const ps = await runKyozo(dataDir, ["ps", "--json"])
    const shop = JSON.parse(ps.stdout).find((s: any) => s.id === shopId)
    expect(shop.domains).toEqual(expect.arrayContaining([domain, extra]))
    expect(shop.httpsUrl).toMatch(new RegExp(`^https://shop\\..+:${tlsPort}$`))

    const taken = await runKyozo(dataDir, ["domains", "add", "shop", "10.1.2.3"])
    expect(taken.code).not.toBe(0)
    expect(taken.stderr).toMatch(/IP address/)

    const rm = await runKyozo(dataDir, ["domains", "rm", "shop", extra])
    expect(rm.code, rm.stderr).toBe(0)
    expect((await viaHost(extra)).status).toBe(404)
    expect(await viaHost(domain)).toEqual({ status: 200, body: "the shop\n" })
    const again = await runKyozo(dataDir, ["domains", "rm", "shop", extra])
    expect(again.code).not.toBe(0)
    expect(again.stderr).toMatch(/has no domain/)
  }, 90_000)

  it("deleting a service frees its names for anyone", async () => {
    const { call } = booted!
    const mine = `gone-${Date.now().toString(36)}.example.test`
    expectStatus(
      await teamB("POST", `/v1/services/${rivalId}/domains`, doc("domains", { hostname: mine })),
      201,
      "B adds"
    )
    expectStatus(await teamB("DELETE", `/v1/services/${rivalId}`), 204, "B deletes its service")
    expectStatus(
      await call("POST", `/v1/services/${shopId}/domains`, doc("domains", { hostname: mine })),
      201,
      "A takes the freed name"
    )
    expect(await viaHost(mine)).toEqual({ status: 200, body: "the shop\n" })
  }, 60_000)
})

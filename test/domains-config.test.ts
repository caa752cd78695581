/**
 * Custom domains without any process: the hostname rule of the Domains application service, and
 * the Caddy config the edge pushes for a service with domains (host matchers on the shared and
 * the HTTPS servers), read back from a running Caddy's config as it was made.
 */
import {
  buildConfig,
  HOSTS_SERVER,
  HOSTS_TLS_SERVER,
  isLocalName,
  parseRoutes,
  type RouteEntry
} from "@kyozo/core/edge/CaddyConfig"
import { parseHostname } from "@kyozo/server/application/Domains"
import { Either } from "effect"
import { describe, expect, it } from "vitest"

const ns = { domain: "localhost", teamLabel: "acme" }
const reasonOf = (raw: string, namespace = ns) => {
  const r = parseHostname(raw, namespace)
  return Either.isLeft(r) ? r.left.reason : `ok:${r.right}`
}

describe("custom domain hostnames", () => {
  it("accepts DNS names, lower-cased", () => {
    expect(reasonOf("App.Example.COM")).toBe("ok:app.example.com")
    expect(reasonOf("a-b.c1.example.org")).toBe("ok:a-b.c1.example.org")
    expect(reasonOf(`${"a".repeat(63)}.example.com`)).toBe(`ok:${"a".repeat(63)}.example.com`)
    expect(reasonOf("xn--bcher-kva.example")).toBe("ok:xn--bcher-kva.example")
    expect(reasonOf("Bücher.Example")).toBe("ok:xn--bcher-kva.example")
  })

  it("refuses what is no host name, each with its reason", () => {
    expect(reasonOf("exa mple.com")).toBe("syntax")
    expect(reasonOf("-app.example.com")).toBe("syntax")
    expect(reasonOf("app-.example.com")).toBe("syntax")
    expect(reasonOf("app..example.com")).toBe("syntax")
    expect(reasonOf("app_1.example.com")).toBe("syntax")
    expect(reasonOf("*.example.com")).toBe("syntax")
    expect(reasonOf("")).toBe("syntax")
    expect(reasonOf(`${"a".repeat(64)}.example.com`)).toBe("syntax")
    expect(reasonOf("app.example.com.")).toBe("trailing-dot")
    expect(reasonOf("10.0.0.1")).toBe("ip-address")
    expect(reasonOf("::1")).toBe("ip-address")
    expect(reasonOf("[::1]")).toBe("ip-address")
    expect(reasonOf("app.123")).toBe("ip-address")
    expect(reasonOf("intranet")).toBe("single-label")
    expect(reasonOf(`${"abcdefghi.".repeat(26)}com`)).toBe("too-long")
  })

  it("keeps the instance's <service>.<team>.<domain> names to their team", () => {
    // Another team's namespace, the team level itself and the service names are Kyozo's.
    expect(reasonOf("x.web.other.localhost")).toBe("reserved")
    expect(reasonOf("web.acme.localhost")).toBe("reserved")
    expect(reasonOf("acme.localhost")).toBe("reserved")
    expect(reasonOf("localhost")).toBe("single-label")
    // Deeper than a service name of the caller's own team: theirs.
    expect(reasonOf("api.web.acme.localhost")).toBe("ok:api.web.acme.localhost")
    // With a public KYOZO_DOMAIN, the rule follows it; other names are free.
    const pub = { domain: "apps.example.net", teamLabel: "acme" }
    expect(reasonOf("x.web.other.apps.example.net", pub)).toBe("reserved")
    expect(reasonOf("v2.web.acme.apps.example.net", pub)).toBe("ok:v2.web.acme.apps.example.net")
    expect(reasonOf("shop.example.net", pub)).toBe("ok:shop.example.net")
    expect(reasonOf("web.acme.localhost", pub)).toBe("ok:web.acme.localhost")
  })
})

const admin = { _tag: "Socket" as const, path: "/tmp/kyozo-test-admin.sock" }
const route = (over: Partial<RouteEntry>): RouteEntry => ({
  serviceId: "svc_a",
  hostPort: 41001,
  hostName: "web.acme.localhost",
  domains: [],
  simulated: false,
  label: "web",
  upstreams: [{ host: "127.0.0.1", port: 32001 }],
  ...over
})

type HostRoute = { "@id"?: string; match?: Array<{ host: Array<string> }>; handle: Array<any> }
const serverRoutes = (config: any, server: string): Array<HostRoute> =>
  config.apps.http.servers[server].routes

describe("Caddy config of custom domains", () => {
  const routes = [
    route({ domains: ["shop.example.com", "www.shop.example.com"] }),
    route({ serviceId: "svc_b", hostPort: 41002, hostName: null, domains: ["b.example.org"], label: "b" }),
    route({ serviceId: "svc_c", hostPort: 41003, hostName: "c.acme.localhost", label: "c" })
  ]
  const config = buildConfig(
    admin,
    "127.0.0.1",
    routes,
    { host: "127.0.0.1", port: 4080 },
    { host: "127.0.0.1", port: 4443 }
  )

  it("matches the domains by Host next to the host name, to the same upstreams, on both servers", () => {
    for (const server of [HOSTS_SERVER, HOSTS_TLS_SERVER]) {
      const [a, b, c, fallback] = serverRoutes(config, server)
      expect(a!.match).toEqual([
        { host: ["web.acme.localhost"] },
        { host: ["shop.example.com", "www.shop.example.com"] }
      ])
      expect(a!.handle[0].upstreams).toEqual([{ dial: "127.0.0.1:32001" }])
      expect(b!.match).toEqual([{ host: ["b.example.org"] }])
      expect(c!.match).toEqual([{ host: ["c.acme.localhost"] }])
      expect(fallback!.match).toBeUndefined()
      expect(fallback!.handle[0].status_code).toBe(404)
    }
    // Certificates from the internal CA, for every name the TLS server matches.
    expect((config.apps as any).tls.automation.policies[0].issuers).toEqual([{ module: "internal" }])
  })

  it("reads host names and domains back apart from a running Caddy's config", () => {
    const parsed = new Map(parseRoutes(JSON.parse(JSON.stringify(config))).map((r) => [r.serviceId, r]))
    expect(parsed.get("svc_a")).toMatchObject({
      hostName: "web.acme.localhost",
      domains: ["shop.example.com", "www.shop.example.com"]
    })
    expect(parsed.get("svc_b")).toMatchObject({ hostName: null, domains: ["b.example.org"], hostPort: 41002 })
    expect(parsed.get("svc_c")).toMatchObject({ hostName: "c.acme.localhost", domains: [] })
  })

  it("serves no host routes when neither a host name nor a domain is set", () => {
    const plain = buildConfig(admin, "127.0.0.1", [route({ hostName: null })], {
      host: "127.0.0.1",
      port: 4080
    })
    expect(serverRoutes(plain, HOSTS_SERVER)).toHaveLength(1)
  })
})

describe("Caddy config of certificates", () => {
  const routes = [
    route({ domains: ["shop.example.com", "intranet.corp.internal"] }),
    route({ serviceId: "svc_b", hostPort: 41002, hostName: "b.acme.localhost", label: "b" })
  ]
  const shared = { host: "0.0.0.0", port: 80 }
  const tls = { host: "0.0.0.0", port: 443 }

  it("uses only the internal CA unless ACME is configured", () => {
    const config: any = buildConfig(admin, "127.0.0.1", routes, shared, tls)
    expect(config.apps.tls.automation.policies).toEqual([{ issuers: [{ module: "internal" }] }])
    expect(config.apps.http.http_port).toBeUndefined()
  })

  it("with ACME: public names from the ACME CA, local names from the internal CA, challenges on the edge ports", () => {
    const config: any = buildConfig(admin, "127.0.0.1", routes, shared, tls, {
      email: "ops@example.com",
      ca: "https://acme-staging-v02.api.letsencrypt.org/directory"
    })
    const [local, pub, rest] = config.apps.tls.automation.policies
    expect(new Set(local.subjects)).toEqual(
      new Set(["web.acme.localhost", "intranet.corp.internal", "b.acme.localhost"])
    )
    expect(local.issuers).toEqual([{ module: "internal" }])
    expect(pub).toEqual({
      subjects: ["shop.example.com"],
      issuers: [
        {
          module: "acme",
          email: "ops@example.com",
          ca: "https://acme-staging-v02.api.letsencrypt.org/directory"
        }
      ]
    })
    expect(rest).toEqual({ issuers: [{ module: "internal" }] })
    expect(config.apps.http.http_port).toBe(80)
    expect(config.apps.http.https_port).toBe(443)
  })

  it("tells local names from public ones", () => {
    for (const n of [
      "localhost",
      "a.b.localhost",
      "x.local",
      "svc.internal",
      "a.test",
      "nas.home.arpa",
      "box"
    ])
      expect(isLocalName(n)).toBe(true)
    for (const n of ["example.com", "shop.example.net", "localhost.example.com", "a.testing.io"])
      expect(isLocalName(n)).toBe(false)
  })
})

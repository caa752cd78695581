/**
 * Dashboard sessions over HTTP against a real server (mock runtime, PostgreSQL): an API key is
 * exchanged for an HttpOnly SameSite=Strict cookie; writes with the cookie need the CSRF token; the
 * session ends with its key, with its lifetime, and at sign-out; a bearer header ignores the cookie.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { caller, doc, expectStatus } from "./support/rest.js"
import { sleep } from "./support/server.js"
import { startTenantServer, type TenantServer } from "./support/tenants.js"

let ts: TenantServer

const signIn = async (apiKey: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${ts.base}/v1/session`, {
    method: "POST",
    headers: { "content-type": "application/vnd.api+json", ...headers },
    body: JSON.stringify(doc("sessions", { apiKey }))
  })
  const body = (await res.json()) as any
  const setCookie = res.headers.get("set-cookie") ?? ""
  const cookie = /kyozo_session=([^;]*)/.exec(setCookie)?.[1] ?? ""
  return { status: res.status, body, setCookie, cookie, csrf: body?.data?.attributes?.csrfToken as string }
}

const withCookie = (cookie: string, method: string, route: string, headers: Record<string, string> = {}) =>
  fetch(`${ts.base}${route}`, { method, headers: { cookie: `kyozo_session=${cookie}`, ...headers } }).then(
    async (r) => ({ status: r.status, text: await r.text(), headers: r.headers })
  )

describe("dashboard sessions", () => {
  beforeAll(async () => {
    ts = await startTenantServer({ KYOZO_RATE_LIMIT: "off", KYOZO_SESSION_TTL: "3 seconds" })
  }, 120_000)
  afterAll(async () => {
    await ts?.close()
  })

  it("exchanges a key for an HttpOnly, SameSite=Strict, expiring cookie; Secure behind HTTPS", async () => {
    const plain = await signIn(ts.owner.token)
    expect(plain.status).toBe(201)
    expect(plain.setCookie).toMatch(/HttpOnly/i)
    expect(plain.setCookie).toMatch(/SameSite=Strict/i)
    expect(plain.setCookie).toMatch(/Expires=/i)
    expect(plain.setCookie).not.toMatch(/Secure/i)
    expect(plain.cookie).toMatch(/^kzs_/)
    expect(plain.body.data.attributes).toMatchObject({ role: "owner", teamId: ts.owner.teamId })
    const tls = await signIn(ts.owner.token, { "x-forwarded-proto": "https" })
    expect(tls.setCookie).toMatch(/; Secure/i)
    const who = await withCookie(plain.cookie, "GET", "/v1/session")
    expect(JSON.parse(who.text).data.attributes.csrfToken).toBe(plain.csrf)
  })

  it("refuses bad sign-ins with JSON:API errors", async () => {
    const bad = await signIn("kz_nope")
    expect(bad.status).toBe(401)
    expect(bad.body.errors[0].detail).toContain("Invalid, revoked or expired API key")
    expect(bad.setCookie).toBe("")
    const form = await fetch(`${ts.base}/v1/session`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `apiKey=${ts.owner.token}`
    })
    expect(form.status).toBe(415)
    const garbage = await fetch(`${ts.base}/v1/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"data":'
    })
    expect(garbage.status).toBe(400)
    expect(((await garbage.json()) as any).errors[0].code).toBe("invalid")
    const nobody = await fetch(`${ts.base}/v1/session`)
    expect(await nobody.json()).toEqual({ data: null })
  })

  it("needs the CSRF token for writes made with the cookie; reads need none", async () => {
    const s = await signIn(ts.owner.token)
    expect((await withCookie(s.cookie, "GET", "/v1/services")).status).toBe(200)
    const forged = await withCookie(s.cookie, "POST", "/v1/api-keys", { "content-type": "application/json" })
    expect(forged.status).toBe(403)
    expect(JSON.parse(forged.text).errors[0].code).toBe("csrf_failed")
    const wrong = await withCookie(s.cookie, "DELETE", "/v1/services/x", { "x-csrf-token": "nope" })
    expect(wrong.status).toBe(403)
    // With the token the request reaches the API, which answers as it would a bearer call.
    const right = await withCookie(s.cookie, "DELETE", "/v1/services/svc_missing", { "x-csrf-token": s.csrf })
    expect(right.status).toBe(404)
    // The CSRF token of another session does not fit.
    const other = await signIn(ts.owner.token)
    expect(
      (await withCookie(s.cookie, "DELETE", "/v1/services/x", { "x-csrf-token": other.csrf })).status
    ).toBe(403)
  })

  it("ends with its key: revoking the key signs the session out at once", async () => {
    const owner = caller(ts.server.port, ts.owner.token)
    const issued = expectStatus(
      await owner("POST", "/v1/api-keys", doc("api-keys", { name: "s" })),
      201,
      "key"
    )
    const s = await signIn(issued.body.data.attributes.key)
    expect((await withCookie(s.cookie, "GET", "/v1/services")).status).toBe(200)
    expectStatus(await owner("DELETE", `/v1/api-keys/${issued.body.data.id}`), 204, "revoke")
    expect((await withCookie(s.cookie, "GET", "/v1/services")).status).toBe(401)
    expect(JSON.parse((await withCookie(s.cookie, "GET", "/v1/session")).text)).toEqual({ data: null })
  })

  it("expires after KYOZO_SESSION_TTL, and sign-out ends it at once", async () => {
    const s = await signIn(ts.owner.token)
    const out = await withCookie(s.cookie, "DELETE", "/v1/session", { "x-csrf-token": s.csrf })
    expect(out.status).toBe(204)
    expect(out.headers.get("set-cookie")).toMatch(/kyozo_session=;/)
    expect((await withCookie(s.cookie, "GET", "/v1/services")).status).toBe(401)
    const t = await signIn(ts.owner.token)
    expect((await withCookie(t.cookie, "GET", "/v1/services")).status).toBe(200)
    await sleep(3500)
    const late = await withCookie(t.cookie, "GET", "/v1/services")
    expect(late.status).toBe(401)
    expect(JSON.parse(late.text).errors[0].detail).toContain("sign in again")
  })

  it("a bearer header wins over the cookie (another team's cookie changes nothing)", async () => {
    const other = await ts.newTenant("sess-other")
    const s = await signIn(other.token)
    const res = await fetch(`${ts.base}/v1/teams/current`, {
      headers: { authorization: `Bearer ${ts.owner.token}`, cookie: `kyozo_session=${s.cookie}` }
    })
    expect(((await res.json()) as any).data.id).toBe(ts.owner.teamId)
    // And a bearer write needs no CSRF token.
    const owner = caller(ts.server.port, ts.owner.token)
    expect((await owner("POST", "/v1/api-keys", doc("api-keys", { name: "b" }))).status).toBe(201)
  })
})

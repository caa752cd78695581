/**
 * The dashboard in a real browser (headless Chromium via playwright-core) against a real Kyozo
 * server process on the real Docker engine and PostgreSQL: sign-in with a key, live services,
 * guided deploy of a folder from the browser until healthy, its chart, rollback, scaling to two
 * replicas, an invitation sent and accepted, tenant isolation,
 * a viewer's view and a forged request, accessibility (axe-core) and screenshots of every main view
 * at laptop and phone width (under artifacts/dashboard, gitignored).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"

import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { Effect } from "effect"
import type { Browser, Page } from "playwright-core"
import * as tar from "tar-stream"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { artifactsDir, browserAvailable, launch } from "./support/browser.js"
import {
  dockerSuite,
  NodeImage,
  removeTeamObjects,
  requireBaseImages,
  StaticImage
} from "./support/docker.js"
import { caller, doc, expectStatus, memberWithKey } from "./support/rest.js"
import { repoRoot, waitFor } from "./support/server.js"
import { startTenantServer, type TenantServer } from "./support/tenants.js"

const hasBrowser = browserAvailable("dashboard")
const docker = await dockerSuite("dashboard")
if (docker.available) await requireBaseImages(docker.client)
const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8")
const shots = artifactsDir(repoRoot)
const fixture = path.join(repoRoot, "test", "fixtures", "dashboard-site")

const LAPTOP = { width: 1366, height: 860 }
const PHONE = { width: 390, height: 844 }

let ts: TenantServer
let browser: Browser
const base = () => ts.base

/** A copy of the fixture folder (the browser uploads it), optionally with another page. */
const fixtureCopy = (body?: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-dash-site-"))
  const site = path.join(dir, "site")
  fs.cpSync(fixture, site, { recursive: true })
  if (body)
    fs.writeFileSync(path.join(site, "index.html"), `<!doctype html><title>v2</title><h1>${body}</h1>\n`)
  return site
}

const tarOf = (dir: string): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const pack = tar.pack()
    for (const name of fs.readdirSync(dir)) pack.entry({ name }, fs.readFileSync(path.join(dir, name)))
    pack.finalize()
    const chunks: Array<Buffer> = []
    pack.on("data", (c) => chunks.push(c as Buffer))
    pack.on("end", () => resolve(Buffer.concat(chunks)))
    pack.on("error", reject)
  })

interface Watched {
  readonly page: Page
  readonly errors: Array<string>
}

/** A new page (own cookie jar) that records console errors, page errors and CSP violations. */
const newPage = async (viewport = LAPTOP): Promise<Watched> => {
  const context = await browser.newContext({ viewport })
  const page = await context.newPage()
  const errors: Array<string> = []
  page.on("console", (m) => {
    // Docker adding a container's veth interface makes Chromium abort requests in flight with
    // ERR_NETWORK_CHANGED: a host event, not a page error (the event stream reconnects by itself).
    if (m.type() === "error" && !m.text().includes("ERR_NETWORK_CHANGED")) errors.push(`console: ${m.text()}`)
  })
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`))
  return { page, errors }
}

const signIn = async (page: Page, token: string) => {
  await page.goto(base() + "/")
  await page.getByLabel("API key").fill(token)
  await page.getByLabel("API key").press("Enter")
  await page.getByRole("heading", { name: "Services", level: 1 }).waitFor({ timeout: 15_000 })
}

/** axe-core on the current view: no serious or critical violation. */
const axe = async (page: Page, view: string) => {
  // Evaluated through the DevTools protocol, so the page's strict CSP needs no exception for it.
  await page.evaluate(axeSource)
  const result = (await page.evaluate(() =>
    (globalThis as any).axe.run((globalThis as any).document, { resultTypes: ["violations"] })
  )) as { violations: Array<{ id: string; impact: string; help: string; nodes: Array<{ target: unknown }> }> }
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
  expect(
    bad.map(
      (v) =>
        `${view}: ${v.id} (${v.impact}) ${v.help} at ${JSON.stringify(v.nodes.slice(0, 3).map((n) => n.target))}`
    )
  ).toEqual([])
}

/** Screenshots of the current view at laptop and phone width. */
const shoot = async (page: Page, name: string) => {
  await page.setViewportSize(LAPTOP)
  await page.screenshot({ path: path.join(shots, `${name}-laptop.png`), fullPage: true })
  await page.setViewportSize(PHONE)
  // Charts follow their box through a ResizeObserver: give them a few frames.
  await page.waitForTimeout(400)
  // Usable at phone width: nothing makes the page scroll sideways.
  const { scrollWidth, wide } = await page.evaluate((limit) => {
    const d = (globalThis as any).document
    const wide = [...d.querySelectorAll("body *")]
      .filter((e: any) => e.getBoundingClientRect().right > limit + 0.5)
      .slice(0, 5)
      .map((e: any) => `${e.tagName}.${e.className} → ${Math.round(e.getBoundingClientRect().right)}`)
    return { scrollWidth: d.documentElement.scrollWidth as number, wide: wide as Array<string> }
  }, PHONE.width)
  expect(scrollWidth, `${name} at phone width; too wide: ${wide.join(", ")}`).toBeLessThanOrEqual(PHONE.width)
  await page.screenshot({ path: path.join(shots, `${name}-phone.png`), fullPage: true })
  await page.setViewportSize(LAPTOP)
}

describe.skipIf(!hasBrowser)("dashboard in a real browser", () => {
  beforeAll(async () => {
    ts = await startTenantServer({
      KYOZO_RUNTIME: docker.available ? "docker" : "mock",
      KYOZO_RATE_LIMIT: "off",
      KYOZO_METRICS_INTERVAL: "2 seconds",
      KYOZO_BASE_IMAGES: JSON.stringify({ node: NodeImage, static: StaticImage })
    })
    browser = await launch()
  }, 120_000)

  afterAll(async () => {
    await browser?.close().catch(() => undefined)
    if (ts && docker.available) await removeTeamObjects(docker.client, ts.owner.teamId)
    await ts?.close()
  }, 120_000)

  it("serves the app at / with a strict CSP, cached hashed assets and an uncached index", async () => {
    const index = await fetch(base() + "/")
    expect(index.status).toBe(200)
    expect(index.headers.get("cache-control")).toBe("no-cache")
    const csp = index.headers.get("content-security-policy") ?? ""
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("default-src 'none'")
    expect(csp).not.toContain("unsafe-inline")
    const html = await index.text()
    const scripts = [...html.matchAll(/src="(\/assets\/[^"]+\.js)"/g)].map((m) => m[1]!)
    expect(scripts.length).toBeGreaterThan(0)
    let gzipped = 0
    for (const src of scripts) {
      const res = await fetch(base() + src, { headers: { "accept-encoding": "gzip" } })
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable")
      // fetch decodes gzip; the compressed size is the content-length of the raw answer.
      gzipped += Number(res.headers.get("content-length"))
      await res.arrayBuffer()
    }
    console.log(`dashboard first-load JavaScript: ${(gzipped / 1024).toFixed(1)} KiB gzip (budget 200 KiB)`)
    expect(gzipped).toBeGreaterThan(1000)
    expect(gzipped).toBeLessThanOrEqual(200 * 1024)
  })

  it("signs in with an API key (Enter submits), refuses a bad key as the API says, signs out", async () => {
    const { page, errors } = await newPage()
    await page.goto(base() + "/")
    await axe(page, "sign-in")
    await shoot(page, "01-sign-in")
    await page.getByLabel("API key").fill("kz_notakey")
    await page.getByLabel("API key").press("Enter")
    await expect
      .poll(() => page.getByRole("alert").first().textContent(), { timeout: 15_000 })
      .toContain("Invalid, revoked or expired API key")
    errors.length = 0 // the refused sign-in is a 401 the browser logs: expected here
    await signIn(page, ts.owner.token)
    const cookies = await page.context().cookies()
    const session = cookies.find((c) => c.name === "kyozo_session")!
    expect(session.httpOnly).toBe(true)
    expect(session.sameSite).toBe("Strict")
    expect(session.expires).toBeGreaterThan(Date.now() / 1000)
    // The cookie is not readable by script.
    expect(await page.evaluate(() => (globalThis as any).document.cookie as string)).not.toContain(
      "kyozo_session"
    )
    await page.getByRole("button", { name: "Sign out" }).click()
    await page.getByLabel("API key").waitFor()
    expect((await page.context().cookies()).find((c) => c.name === "kyozo_session")).toBeUndefined()
    expect(errors).toEqual([])
    await page.context().close()
  })

  it.skipIf(!docker.available)(
    "shows a service deployed from the CLI live, without a reload",
    async () => {
      const { page, errors } = await newPage()
      await signIn(page, ts.owner.token)
      // `kyozo deploy` in a terminal, while the page stays open.
      const cli = new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          ["--import", "tsx", "packages/cli/src/main.ts", "deploy", fixture, "--name", "api-site", "--json"],
          { cwd: repoRoot, env: { ...process.env, KYOZO_URL: base(), KYOZO_TOKEN: ts.owner.token } }
        )
        let out = ""
        child.stdout.on("data", (d) => (out += d))
        child.stderr.on("data", (d) => (out += d))
        child.on("exit", (code) => resolve({ code, out }))
      })
      const row = page.locator('tr[data-service="api-site"]')
      await row.waitFor({ timeout: 20_000 })
      // A failed deploy ends the wait at once, with what the CLI said (engine faults show there).
      let failed = false
      await expect
        .poll(
          async () => {
            const text = (await row.textContent()) ?? ""
            failed = text.includes("failed")
            return failed || text.includes("running")
          },
          { timeout: 60_000 }
        )
        .toBe(true)
      const done = await cli
      expect(failed, `the CLI deploy failed:\n${done.out}`).toBe(false)
      expect(done.code, done.out).toBe(0)
      await axe(page, "services")
      await shoot(page, "02-services")
      expect(errors).toEqual([])
      await page.context().close()
    },
    120_000
  )

  it.skipIf(!docker.available)(
    "guided deploy with an adjusted port: the service listens and is checked on it",
    async () => {
      const { page, errors } = await newPage()
      await signIn(page, ts.owner.token)
      await page.goto(base() + "/#/deploy")
      await page.getByRole("heading", { name: "Deploy a folder" }).waitFor()
      await page.locator("input[type=file]").setInputFiles(fixtureCopy("On another port"))
      await page.getByRole("heading", { name: "2. What Kyozo found" }).waitFor({ timeout: 30_000 })
      const detected = await page.getByLabel("Port").inputValue()
      expect(detected).toMatch(/^\d+$/)
      await page.getByLabel("Service name").fill("site-port")
      await page.getByLabel("Port").fill("9191")
      await page.getByRole("button", { name: "Deploy", exact: true }).click()
      await page.waitForURL(/#\/services\/svc_/, { timeout: 120_000 })
      const serviceId = /#\/services\/([^/?]+)/.exec(page.url())![1]!
      await page.getByRole("heading", { name: "site-port", level: 1 }).waitFor()
      const url = await page.locator("a.url-link").getAttribute("href")
      const served = await waitFor("the service's URL", 30_000, async () => {
        const r = await fetch(url!)
        return r.status === 200 ? await r.text() : undefined
      })
      expect(served).toContain("On another port")
      // The container serves on the adjusted port, not the detected one.
      const [container] = await docker.client.listContainers({
        filters: { label: [`kyozo.service=${serviceId}`] }
      })
      expect(container?.Ports.map((p) => p.PrivatePort)).toContain(9191)
      expect(detected).not.toBe("9191")
      expect(errors).toEqual([])
      await page.context().close()
    },
    180_000
  )

  it.skipIf(!docker.available)(
    "guided deploy of a folder from the browser until healthy, its chart, then a rollback",
    async () => {
      const { page, errors } = await newPage()
      await signIn(page, ts.owner.token)
      const deployFolder = async (folder: string, name: string) => {
        await page.goto(base() + "/#/deploy")
        await page.getByRole("heading", { name: "Deploy a folder" }).waitFor()
        await page.locator("input[type=file]").setInputFiles(folder)
        await page.getByRole("heading", { name: "2. What Kyozo found" }).waitFor({ timeout: 30_000 })
        await expect
          .poll(() => page.locator(".detected").first().textContent(), { timeout: 15_000 })
          .toContain("confidence")
        await expect
          .poll(() => page.locator(".evidence").first().textContent(), { timeout: 15_000 })
          .toContain("index.html")
        await page.getByLabel("Service name").fill(name)
        return page
      }
      await deployFolder(fixtureCopy(), "site")
      await axe(page, "guided deploy: detection")
      await shoot(page, "03-deploy-detected")
      await page.getByRole("button", { name: "Deploy", exact: true }).click()
      await page.getByRole("heading", { name: "3. Build and health gate" }).waitFor()
      // The build and the health gate, live, until the service is healthy (then the page moves on).
      await page.getByText("Opening the service").waitFor({ timeout: 90_000 })
      const steps = (await page.locator("ol.deploy-steps").textContent()) ?? ""
      expect(steps.length).toBeGreaterThan(0)
      expect(await page.locator("ol.deploy-steps li").count()).toBeGreaterThan(1)
      await shoot(page, "03b-deploy-healthy")
      await page.waitForURL(/#\/services\/svc_/, { timeout: 90_000 })
      await page.getByRole("heading", { name: "site", level: 1 }).waitFor()
      await expect
        .poll(() => page.locator(".page-head .status").first().textContent(), { timeout: 30_000 })
        .toBe("running")
      const url = await page.locator("a.url-link").getAttribute("href")
      expect(url).toMatch(/^http/)
      const served = await waitFor("the service's URL", 30_000, async () => {
        const r = await fetch(url!)
        const t = await r.text()
        return r.status === 200 ? t : undefined
      })
      expect(served).toContain("Hello from a folder deployed in the browser")

      // The chart: metrics samples arrive every 2 s on this server; switching windows re-reads them.
      await expect
        .poll(
          async () => {
            await page.getByRole("radio", { name: "Day" }).click()
            await page.getByRole("radio", { name: "Hour" }).click()
            const label = await page.locator("figure.chart [role=img]").first().getAttribute("aria-label")
            return Number(/(\d+) samples/.exec(label ?? "")?.[1] ?? 0)
          },
          { timeout: 30_000, interval: 1500 }
        )
        .toBeGreaterThan(0)
      await expect
        .poll(async () => (await page.locator("figure.chart canvas").count()) >= 2, { timeout: 10_000 })
        .toBe(true)
      await page.getByRole("radio", { name: "Day" }).click()
      await expect
        .poll(() => page.getByRole("radio", { name: "Day" }).getAttribute("aria-checked"))
        .toBe("true")
      await page.getByRole("radio", { name: "Hour" }).click()
      // Live logs stream (the CLI's logs -f) without an error.
      const logAlerts = page.locator("section", { has: page.locator("#logs") }).getByRole("alert")
      expect(await logAlerts.allTextContents()).toEqual([])
      await axe(page, "service")
      await shoot(page, "04-service")
      const firstImage = (await page.locator(".page-head .mono").first().textContent())!.trim()

      // A second version under the same name, then back to the first.
      await deployFolder(fixtureCopy("Version two"), "site")
      await page.getByRole("button", { name: "Deploy", exact: true }).click()
      await page.waitForURL(/#\/services\/svc_/, { timeout: 90_000 })
      await expect
        .poll(async () => (await page.locator(".page-head .mono").first().textContent())?.trim(), {
          timeout: 30_000
        })
        .not.toBe(firstImage)
      await page.getByRole("button", { name: "Roll back" }).click()
      const dialog = page.getByRole("dialog")
      const target = await dialog.locator("option", { hasText: firstImage }).first().getAttribute("value")
      await dialog.getByLabel("Image to roll back to").selectOption(target!)
      await axe(page, "rollback dialog")
      await dialog.getByRole("button", { name: "Roll back" }).click()
      await expect
        .poll(async () => (await page.locator(".page-head .mono").first().textContent())?.trim(), {
          timeout: 60_000
        })
        .toBe(firstImage)
      await waitFor("the first version served again", 30_000, async () => {
        const t = await (await fetch(url!)).text()
        return t.includes("Hello from a folder") ? true : undefined
      })
      await page.locator("details summary").first().click()
      await shoot(page, "05-service-after-rollback")
      expect(errors).toEqual([])
      await page.context().close()
    },
    240_000
  )

  it.skipIf(!docker.available)(
    "scales a deployed service to 2 replicas from its page, on the real engine",
    async () => {
      const owner = caller(ts.server.port, ts.owner.token)
      const name = `scaled-${Date.now().toString(36)}`
      const up = await fetch(base() + "/v1/uploads", {
        method: "POST",
        headers: { authorization: `Bearer ${ts.owner.token}`, "content-type": "application/x-tar" },
        body: await tarOf(fixture)
      })
      const { uploadId } = (await up.json()) as { uploadId: string }
      expectStatus(
        await owner("POST", "/v1/services", doc("services", { source: { uploadId }, name })),
        202,
        "deploy"
      )
      const id = await waitFor("the service to run", 90_000, async () => {
        const list = await owner("GET", "/v1/services?page[size]=100")
        const s = (list.body?.data ?? []).find((x: any) => x.attributes.name === name)
        if (s?.attributes.status === "failed") throw new Error(`deploy failed: ${JSON.stringify(s)}`)
        return s?.attributes.status === "running" ? (s.id as string) : undefined
      })
      const { page, errors } = await newPage()
      await signIn(page, ts.owner.token)
      const row = page.locator(`tr[data-service="${name}"] td[data-replicas]`)
      await expect.poll(() => row.textContent(), { timeout: 15_000 }).toBe("1/1")
      await page.goto(base() + `/#/services/${id}`)
      await page.getByRole("heading", { name, level: 1 }).waitFor()
      const input = page.getByLabel("Replicas (1–20)")
      expect(await input.inputValue()).toBe("1")
      // A change whose answer is lost (the connection cut): never retried behind the user's back;
      // the page says the outcome is unknown and shows what the server has (still 1 replica).
      const resource = `**/v1/services/${id}`
      await page.route(resource, (route) =>
        route.request().method() === "PATCH" ? route.abort("connectionreset") : route.continue()
      )
      const seen = errors.length
      await input.fill("2")
      await page.getByRole("button", { name: "Scale", exact: true }).click()
      const lost = page.locator('[role="alert"]').first()
      await expect
        .poll(() => lost.textContent({ timeout: 5_000 }).catch(() => null), { timeout: 15_000 })
        .toContain("the change may or may not have been made")
      await page.unroute(resource)
      // The browser logs the cut request itself; nothing else may have been logged meanwhile.
      expect(errors.splice(seen).filter((e) => !e.includes("ERR_CONNECTION_RESET"))).toEqual([])
      expect((await owner("GET", `/v1/services/${id}`)).body.data.attributes.replicas).toBe(1)
      await expect.poll(() => page.locator("[data-replicas]").first().getAttribute("data-replicas")).toBe("1")
      await input.fill("2")
      await page.getByRole("button", { name: "Scale", exact: true }).click()
      // The notice, or the error the page shows instead (so a failure says what the API answered).
      const outcome = page.locator('[role="status"], [role="alert"]').first()
      await expect
        .poll(() => outcome.textContent({ timeout: 5_000 }).catch(() => null), { timeout: 60_000 })
        .toContain("Scaled to 2 replicas")
      await expect.poll(() => page.locator("[data-replicas]").first().getAttribute("data-replicas")).toBe("2")
      // The API and the engine agree: two running containers of this service.
      expect((await owner("GET", `/v1/services/${id}`)).body.data.attributes.replicas).toBe(2)
      await waitFor("two running replicas", 30_000, async () => {
        const running = await docker.client.listContainers({
          filters: JSON.stringify({ label: [`kyozo.service=${id}`], status: ["running"] })
        })
        return running.length === 2 ? true : undefined
      })
      await axe(page, "service (scaled)")
      await shoot(page, "04c-service-scaled")
      await page.goto(base() + "/#/services")
      await expect.poll(() => row.textContent(), { timeout: 15_000 }).toBe("2/2")
      await shoot(page, "02c-services-replicas")
      // The server carries out a change whose answer is then lost: the page reads the service,
      // sees the change made and says so (nothing sent twice, no error for a change that happened).
      await page.goto(base() + `/#/services/${id}`)
      await page.getByRole("heading", { name, level: 1 }).waitFor()
      await page.route(resource, async (route) => {
        if (route.request().method() !== "PATCH") return route.continue()
        const answered = await route.fetch()
        expect(answered.status()).toBe(200)
        return route.abort("connectionreset")
      })
      const before = errors.length
      await input.fill("1")
      await page.getByRole("button", { name: "Scale", exact: true }).click()
      await expect
        .poll(() => outcome.textContent({ timeout: 5_000 }).catch(() => null), { timeout: 15_000 })
        .toContain("Scaled to 1 replica. (The server's answer was lost on the way")
      await page.unroute(resource)
      expect(errors.splice(before).filter((e) => !e.includes("ERR_CONNECTION_RESET"))).toEqual([])
      expect((await owner("GET", `/v1/services/${id}`)).body.data.attributes.replicas).toBe(1)
      expect(errors).toEqual([])
      await page.context().close()
    },
    180_000
  )

  it("adding a user of another team sends an invitation; they accept it and see their new key once", async () => {
    // The inviting team's owner is not the instance admin (who adds existing users at once).
    const host = await ts.newTenant("dash-host")
    const guest = await ts.newTenant("dash-guest")
    // The guest is the only member of its own team.
    const guestEmail = (await caller(ts.server.port, guest.token)("GET", "/v1/members")).body.data[0]
      .attributes.email as string
    const admin = await newPage()
    await signIn(admin.page, host.token)
    await admin.page.goto(base() + "/#/admin")
    await admin.page.getByRole("heading", { name: "Members" }).waitFor()
    await admin.page.getByLabel("Email").fill(guestEmail)
    const addForm = admin.page.locator("form", {
      has: admin.page.getByRole("button", { name: "Add member" })
    })
    await addForm.locator("select").selectOption("member")
    await addForm.getByRole("button", { name: "Add member" }).click()
    await expect
      .poll(() => admin.page.locator("section", { has: admin.page.locator("#members") }).textContent())
      .toContain(`Invitation sent to ${guestEmail}`)
    // Listed at once, as invited (with a Withdraw control, not Remove).
    const guestRow = admin.page.locator("tr", { hasText: guestEmail })
    await expect.poll(() => guestRow.textContent()).toContain("invited, joins on accepting")
    expect(
      await guestRow.getByRole("button", { name: `Withdraw the invitation of ${guestEmail}` }).count()
    ).toBe(1)
    expect(await admin.page.locator("#main").getByRole("alert").count()).toBe(0)
    await axe(admin.page, "admin (invitation sent)")
    await shoot(admin.page, "08c-admin-invitation-sent")
    expect(admin.errors).toEqual([])
    await admin.page.context().close()

    const { page, errors } = await newPage()
    await signIn(page, guest.token)
    const banner = page.getByRole("region", { name: "Invitations" })
    await expect.poll(() => banner.textContent(), { timeout: 15_000 }).toContain("You are invited to")
    await axe(page, "invitations banner")
    await shoot(page, "10-invitation")
    await banner.getByRole("button", { name: /^Accept the invitation/ }).click()
    const keyField = banner.getByLabel(/^Your API key for /)
    await keyField.waitFor({ timeout: 15_000 })
    const key = await keyField.inputValue()
    expect(key).toMatch(/^kz_[0-9a-z]{8}_[0-9a-z]{32}$/)
    expect(await banner.textContent()).toContain("as member")
    expect(await banner.textContent()).toContain("shown once")
    await axe(page, "invitation accepted")
    await shoot(page, "11-invitation-accepted")
    // The key is for the inviting team: it signs in there as a member.
    const withKey = caller(ts.server.port, key)
    expect((await withKey("GET", "/v1/teams/current")).body.data.id).toBe(host.teamId)
    const members = (await withKey("GET", "/v1/members")).body.data as Array<any>
    expect(members.find((m) => m.id === guest.userId)?.attributes.role).toBe("member")
    // Switching signs this page in with the new key: the header names the team and the role; the
    // key is gone from the page, and the invitation is no longer pending.
    const hostTeam = (await withKey("GET", "/v1/teams/current")).body.data.attributes.name as string
    await banner.getByRole("button", { name: `Switch to ${hostTeam}` }).click()
    await expect
      .poll(() => page.locator("header .team").textContent(), { timeout: 15_000 })
      .toContain(`${hostTeam} · member`)
    expect(await page.locator("body").textContent()).not.toContain(key)
    expect((await caller(ts.server.port, guest.token)("GET", "/v1/invitations")).body.data).toEqual([])
    expect(errors).toEqual([])
    await page.context().close()
  })

  it("another team sees none of the first team's services", async () => {
    const owner = caller(ts.server.port, ts.owner.token)
    // Make sure the first team has at least one service, whatever ran before.
    const up = await fetch(base() + "/v1/uploads", {
      method: "POST",
      headers: { authorization: `Bearer ${ts.owner.token}`, "content-type": "application/x-tar" },
      body: await tarOf(fixture)
    })
    const { uploadId } = (await up.json()) as { uploadId: string }
    expectStatus(
      await owner("POST", "/v1/services", doc("services", { source: { uploadId }, name: "private-site" })),
      202,
      "deploy"
    )
    const other = await ts.newTenant("dash-other")
    const { page, errors } = await newPage()
    await signIn(page, other.token)
    await page.getByRole("heading", { name: "No services yet" }).waitFor()
    expect(await page.locator("body").textContent()).not.toContain("private-site")
    // Its id is not found for this team either.
    const firstList = await owner("GET", "/v1/services")
    const foreignId = firstList.body.data[0].id as string
    await page.goto(base() + `/#/services/${foreignId}`)
    await expect
      .poll(() => page.getByRole("alert").first().textContent(), { timeout: 15_000 })
      .toContain("No such service")
    errors.length = 0 // that 404 is the point here
    await page.goto(base() + "/#/services")
    await page.getByRole("heading", { name: "No services yet" }).waitFor()
    await axe(page, "services (empty)")
    await shoot(page, "06-other-team")
    await page.context().close()
  })

  it("a viewer sees no Deploy, Redeploy, Scale or Delete control; a forged request is refused", async () => {
    const owner = caller(ts.server.port, ts.owner.token)
    const email = `viewer-${Date.now()}@example.test`
    const viewer = { ...(await memberWithKey(owner, email, "viewer")), email }
    // A service of the team to look at, whatever ran before.
    const stored = await ts.run(
      Effect.flatMap(ServiceRepo, (repo) =>
        repo.create({ teamId: ts.owner.teamId, name: `viewed-${Date.now()}`, kind: "static" })
      )
    )
    const { page, errors } = await newPage()
    await signIn(page, viewer.token)
    const forbidden = /^(deploy|deploy a folder|redeploy|scale|delete|new service|admin)$/i
    const controls = async () =>
      (await page.locator("button, a[href^='#/deploy'], a[href^='#/admin']").allTextContents()).map((t) =>
        t.trim()
      )
    expect((await controls()).filter((t) => forbidden.test(t))).toEqual([])
    await axe(page, "services (viewer)")
    {
      const id = stored.id as string
      await page.goto(base() + `/#/services/${id}`)
      await page.locator(".page-head h1").waitFor()
      expect(
        (await controls()).filter((t) => forbidden.test(t) || /^(stop|start|restart|roll back)$/i.test(t))
      ).toEqual([])
      // The replica count is shown, the control to change it is not.
      expect(await page.locator(".page-head [data-replicas]").count()).toBe(1)
      expect(await page.getByLabel("Replicas (1–20)").count()).toBe(0)
      await shoot(page, "07-viewer-service")
      // Forged: the viewer's own session, with and without the CSRF token.
      const forged = await page.evaluate(async (serviceId) => {
        const s = (await (await fetch("/v1/session")).json()) as any
        const withToken = await fetch(`/v1/services/${serviceId}/deployments`, {
          method: "POST",
          headers: { "x-csrf-token": s.data.attributes.csrfToken }
        })
        const withoutToken = await fetch(`/v1/services/${serviceId}`, { method: "DELETE" })
        return {
          withToken: [withToken.status, await withToken.text()],
          withoutToken: [withoutToken.status, await withoutToken.text()]
        }
      }, id)
      expect(forged.withToken[0]).toBe(403)
      expect(forged.withoutToken[0]).toBe(403)
      expect(forged.withoutToken[1]).toContain("csrf_failed")
      expect((await owner("GET", `/v1/services/${id}`)).status).toBe(200)
      errors.length = 0 // the two refusals are logged by the browser as failed requests

      // An admin grants this viewer `deploy` on the service from its page; the API records it.
      const admin = await newPage()
      await signIn(admin.page, ts.owner.token)
      await admin.page.goto(base() + `/#/services/${id}`)
      await admin.page.getByRole("heading", { name: "Access to this service" }).waitFor()
      const member = admin.page.getByLabel("Member")
      const option = await member.locator("option", { hasText: viewer.email }).getAttribute("value")
      await member.selectOption(option!)
      await admin.page.getByLabel("Permission").selectOption("deploy")
      await admin.page.getByRole("button", { name: "Grant" }).click()
      await expect
        .poll(() => admin.page.locator("section", { has: admin.page.locator("#access") }).textContent())
        .toContain("may deploy")
      const grants = await owner("GET", `/v1/services/${id}/permissions`)
      expect(grants.body.data.map((g: any) => [g.attributes.userId, g.attributes.permission])).toContainEqual(
        [viewer.userId, "deploy"]
      )
      expect(admin.errors).toEqual([])
      await admin.page.context().close()

      // The viewer's controls follow the grant (the service document's meta.can): deploy controls
      // on this service, still no Scale or Delete (those need manage), and none on another one.
      const other = await ts.run(
        Effect.flatMap(ServiceRepo, (repo) =>
          repo.create({ teamId: ts.owner.teamId, name: `other-${Date.now()}`, kind: "static" })
        )
      )
      await page.goto(base() + `/#/services/${other.id}`)
      await page.locator(".page-head h1").waitFor()
      await page.goto(base() + `/#/services/${id}`)
      await page.getByRole("button", { name: "Redeploy" }).waitFor()
      expect(await page.getByRole("button", { name: "Restart" }).count()).toBe(1)
      expect(await page.getByRole("button", { name: "Delete" }).count()).toBe(0)
      expect(await page.getByLabel("Replicas (1–20)").count()).toBe(0)
      await page.goto(base() + `/#/services/${other.id}`)
      await page.locator(".page-head h1").filter({ hasText: "other-" }).waitFor()
      expect(
        (await controls()).filter((t) => forbidden.test(t) || /^(stop|start|restart|roll back)$/i.test(t))
      ).toEqual([])
    }
    expect(errors).toEqual([])
    await page.context().close()
  })

  it("the service page shows volumes, edits autoscaling and limits; the live stream starts at the newest event", async () => {
    const stored = await ts.run(
      Effect.flatMap(ServiceRepo, (repo) =>
        repo.create({
          teamId: ts.owner.teamId,
          name: `scaled-${Date.now()}`,
          kind: "static",
          volumes: [{ name: "pgdata", target: "/var/lib/data" }]
        })
      )
    )
    const { page, errors } = await newPage()
    const streams: Array<string> = []
    page.on("request", (r) => {
      if (r.url().includes("/v1/events")) streams.push(r.url())
    })
    await signIn(page, ts.owner.token)
    await page.goto(base() + `/#/services/${stored.id}`)
    await page.getByRole("heading", { name: "Volumes" }).waitFor()
    await expect
      .poll(() => page.locator("section", { has: page.locator("#volumes") }).textContent())
      .toContain("pgdata → /var/lib/data")
    await page.getByLabel("Min replicas").fill("1")
    await page.getByLabel("Max replicas").fill("4")
    await page.getByLabel("Target CPU (%)").fill("55")
    await page.getByRole("button", { name: "Save autoscaling" }).click()
    await page.getByText("Autoscaling saved.").waitFor()
    const owner = caller(ts.server.port, ts.owner.token)
    const doc = (await owner("GET", `/v1/services/${stored.id}`)).body.data.attributes
    expect(doc.autoscale).toMatchObject({ minReplicas: 1, maxReplicas: 4, targetCpuPercent: 55 })
    await expect.poll(() => page.locator(".autoscale").first().textContent()).toContain("On: 1–4 replicas")
    // Limits take effect at once (a rollout when something runs); this one has nothing running yet.
    await page.getByLabel("CPU (millicores)").fill("300")
    await page.getByRole("button", { name: "Save limits" }).click()
    await page.getByText("Saved; nothing running had to change").waitFor()
    expect(await page.getByText("applies at the next deploy").count()).toBe(0)
    expect((await owner("GET", `/v1/services/${stored.id}`)).body.data.attributes.cpuMillis).toBe(300)
    await axe(page, "service (autoscale, volumes)")
    // The first connection asks for events from now on, not the team's history.
    expect(streams.length).toBeGreaterThan(0)
    expect(streams[0]).toContain("after=latest")
    expect(errors).toEqual([])
    await page.context().close()
  })

  it("admin: members, keys (shown once), webhooks and runtime status", async () => {
    const { page, errors } = await newPage()
    await signIn(page, ts.owner.token)
    await page.getByRole("link", { name: "Admin" }).click()
    await page.getByRole("heading", { name: "Runtime" }).waitFor()
    await expect
      .poll(() => page.locator("#main").first().textContent(), { timeout: 15_000 })
      .toContain(docker.available ? "Docker" : "Mock")
    // The edge router that serves the URLs, as /readyz names it.
    const readyz = (await (await fetch(`${ts.base}/readyz`)).json()) as { edge: { kind: string } }
    const edgeKind = readyz.edge.kind
    await expect
      .poll(() => page.locator("#main").first().textContent(), { timeout: 15_000 })
      .toContain(
        edgeKind === "caddy"
          ? "URLs keep answering while Kyozo is down"
          : "URLs stop answering while Kyozo is down"
      )
    await page.getByLabel("Key name").fill("from-dashboard")
    await page.getByRole("button", { name: "Issue key" }).click()
    const issued = await page.getByLabel("The new API key").inputValue()
    expect(issued).toMatch(/^kz_[0-9a-z]{8}_[0-9a-z]{32}$/)
    // The issued key works, and is gone from the page once dismissed.
    expect((await caller(ts.server.port, issued)("GET", "/v1/services")).status).toBe(200)
    await page.getByRole("button", { name: "Done" }).click()
    expect(await page.locator("body").textContent()).not.toContain(issued)

    // A session signed in with that key ends when the key is revoked here.
    const second = await newPage()
    await signIn(second.page, issued)
    await page.getByRole("button", { name: `Revoke ${issued.slice(0, 11)}` }).click()
    await page.getByRole("dialog").getByRole("button", { name: "Revoke key" }).click()
    await expect
      .poll(() => page.locator("tr", { hasText: "from-dashboard" }).textContent())
      .toContain("revoked")
    await second.page.reload()
    await second.page.getByLabel("API key").waitFor({ timeout: 10_000 })
    // Calls the page made between the revocation and the reload were refused (401): that is the point.
    expect(second.errors.filter((e) => !e.includes("401"))).toEqual([])
    await second.page.context().close()

    await page.getByLabel("Webhook URL").fill("https://hooks.example.test/kyozo")
    await page.getByRole("button", { name: "Add webhook" }).click()
    await expect.poll(() => page.locator("#main").textContent()).toContain("Signing secret (shown once)")
    await page.getByRole("button", { name: "Deliveries" }).click()
    await expect.poll(() => page.locator("#main").textContent()).toContain("No deliveries yet.")
    await axe(page, "admin")
    await shoot(page, "08-admin")
    expect(errors).toEqual([])
    await page.context().close()
  })

  it("works from the keyboard alone, with a visible focus on every stop", async () => {
    const { page, errors } = await newPage()
    await page.goto(base() + "/")
    // The key field has the focus on arrival: type, Enter.
    await page.getByLabel("API key").waitFor()
    await expect
      .poll(() => page.evaluate(() => (globalThis as any).document.activeElement?.name as string | undefined))
      .toBe("apiKey")
    await page.keyboard.type(ts.owner.token)
    await page.keyboard.press("Enter")
    await page.getByRole("heading", { name: "Services", level: 1 }).waitFor()
    const focused = () =>
      page.evaluate(() => {
        const el = (globalThis as any).document.activeElement
        const style = (globalThis as any).getComputedStyle(el)
        return {
          text: (el.textContent ?? "").trim(),
          outline: style.outlineStyle as string,
          width: style.outlineWidth as string
        }
      })
    const stops: Array<string> = []
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press("Tab")
      const f = await focused()
      stops.push(f.text)
      expect(f.outline, `focus ring on "${f.text}"`).not.toBe("none")
      if (f.text === "Admin") break
    }
    expect(stops[0]).toBe("Skip to content")
    expect(stops).toContain("Admin")
    await page.keyboard.press("Enter")
    await page.getByRole("heading", { name: "Admin", level: 1 }).waitFor()
    expect(errors).toEqual([])
    await page.context().close()
  })

  it("renders 100 services in under 100 ms after the data arrives", async () => {
    const { page, errors } = await newPage()
    await signIn(page, ts.owner.token)
    const now = new Date().toISOString()
    const data = Array.from({ length: 100 }, (_, i) => ({
      type: "services",
      id: `svc_bench${String(i).padStart(8, "0")}`,
      attributes: {
        name: `bench-${i}`,
        kind: "static",
        framework: null,
        status: i % 7 === 0 ? "degraded" : "running",
        desiredState: "running",
        image: `kyozo/bench-${i}:abc123`,
        url: `http://127.0.0.1:${20000 + i}`,
        cpuMillis: 250,
        memoryMb: 256,
        envKeys: [],
        healthConfig: null,
        restartPolicy: { _tag: "OnFailure" },
        restartCount: 0,
        createdAt: now,
        updatedAt: now
      }
    }))
    await page.route("**/v1/services?*", (route) =>
      route.fulfill({
        status: 200,
        contentType: "application/vnd.api+json",
        body: JSON.stringify({ data, links: { self: "/v1/services", next: null } })
      })
    )
    await page.evaluate(() => performance.clearMeasures())
    await page.reload()
    await page.waitForFunction(
      () => (globalThis as any).document.body.dataset.servicesRendered === "100",
      undefined,
      {
        timeout: 15_000
      }
    )
    const ms = await page.evaluate(() => performance.getEntriesByName("services:render").at(-1)!.duration)
    expect(await page.locator("table.services tbody tr").count()).toBe(100)
    console.log(
      `services page: 100 services rendered in ${ms.toFixed(1)} ms after the data arrived (budget 100 ms)`
    )
    expect(ms).toBeLessThan(100)
    expect(errors).toEqual([])
    await page.context().close()
  })
})

describe.skipIf(!hasBrowser)("dashboard while the Docker engine is down", () => {
  let down: TenantServer
  let b: Browser
  beforeAll(async () => {
    // A dead engine endpoint: the first failed call opens the circuit, which stays open for a minute.
    down = await startTenantServer({
      KYOZO_RUNTIME: "docker",
      DOCKER_HOST: "unix:///nonexistent/kyozo-test/docker.sock",
      KYOZO_DOCKER_TIMEOUT: "1 second",
      KYOZO_BREAKER_THRESHOLD: "1",
      KYOZO_BREAKER_RESET: "60 seconds",
      KYOZO_HEALTH_INTERVAL: "1 second",
      KYOZO_METRICS_INTERVAL: "1 second"
    })
    b = await launch()
  }, 120_000)
  afterAll(async () => {
    await b?.close().catch(() => undefined)
    await down?.close()
  }, 60_000)

  it("shows a banner, disables engine actions with the reason, and never shows env values", async () => {
    const owner = caller(down.server.port, down.owner.token)
    await waitFor("the circuit to open", 30_000, async () => {
      const r = await owner("GET", "/v1/runtime")
      return r.body?.data?.attributes?.circuit_breaker_status?.state === "open" ? true : undefined
    })
    const service = await down.run(
      Effect.flatMap(ServiceRepo, (repo) =>
        repo.create({
          teamId: down.owner.teamId,
          name: "stored-site",
          kind: "static",
          image: "kyozo/stored-site:1",
          env: { SECRET_TOKEN: "hunter2-do-not-show", PUBLIC_NAME: "x" }
        })
      )
    )
    const context = await b.newContext({ viewport: LAPTOP })
    const page = await context.newPage()
    const errors: Array<string> = []
    page.on("pageerror", (e) => errors.push(e.message))
    await page.goto(down.base + "/")
    await page.getByLabel("API key").fill(down.owner.token)
    await page.getByLabel("API key").press("Enter")
    await page.getByRole("heading", { name: "Services", level: 1 }).waitFor()
    await expect
      .poll(() => page.getByRole("alert").first().textContent(), { timeout: 20_000 })
      .toContain("Docker is down")
    await page.goto(down.base + `/#/services/${service.id}`)
    await page.getByRole("heading", { name: "stored-site", level: 1 }).waitFor()
    for (const name of ["Redeploy", "Stop", "Restart"]) {
      const button = page.getByRole("button", { name, exact: true })
      expect(await button.isDisabled()).toBe(true)
      expect(await button.getAttribute("title")).toContain("circuit open")
    }
    await expect.poll(() => page.locator("#main").textContent()).toContain("Actions are disabled")
    const text = (await page.locator("body").textContent()) ?? ""
    expect(text).toContain("SECRET_TOKEN")
    expect(text).not.toContain("hunter2-do-not-show")
    await axe(page, "service (engine down)")
    await shoot(page, "09-engine-down")
    await page.goto(down.base + "/#/deploy")
    await page.getByRole("heading", { name: "Deploy a folder" }).waitFor()
    expect(await page.locator("input[type=file]").isDisabled()).toBe(true)
    expect(await page.locator("#main").textContent()).toContain("Deploys are paused")
    expect(errors).toEqual([])
    await context.close()
  })
})

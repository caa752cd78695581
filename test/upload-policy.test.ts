/**
 * The upload door (real server, mock runtime): uploads need the deploy right (a viewer gets 403,
 * unless the upload names a service it holds a deploy grant on),
 * an empty body is a 400 and a non-tar content type a 415, a team's uploads are capped by its
 * upload quota (413), and uploads no service was deployed from expire after KYOZO_UPLOAD_TTL.
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

import { pack } from "tar-stream"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { caller, doc, expectStatus, memberWithKey, start, type Started } from "./support/rest.js"
import { waitFor } from "./support/server.js"

let s: Started
let viewerToken: string
let memberToken: string

/** A tar of one index.html plus `padding` random bytes (random: gzip cannot shrink it). */
const tarOf = (padding: number): Promise<Uint8Array> =>
  new Promise((resolve, reject) => {
    const p = pack()
    const chunks: Array<Buffer> = []
    p.on("data", (c: unknown) => chunks.push(c as Buffer))
    p.on("end", () => resolve(new Uint8Array(Buffer.concat(chunks))))
    p.on("error", reject)
    p.entry({ name: "index.html" }, "<h1>hi</h1>\n")
    if (padding > 0) p.entry({ name: "blob.bin" }, randomBytes(padding))
    p.finalize()
  })

const upload = (token: string, body: Uint8Array, contentType = "application/x-tar", query = "") =>
  fetch(`http://127.0.0.1:${s.server.port}/v1/uploads${query}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": contentType },
    body
  }).then(async (r) => ({ status: r.status, body: (await r.json().catch(() => undefined)) as any }))

beforeAll(async () => {
  s = await start("kyozo-upload-policy-", {
    KYOZO_UPLOAD_QUOTA_MB: "1",
    KYOZO_UPLOAD_TTL: "2 seconds",
    KYOZO_UPLOAD_SWEEP_INTERVAL: "300 millis"
  })
  const owner = caller(s.server.port, s.ownerToken)
  viewerToken = (await memberWithKey(owner, "vi@uploads.example", "viewer")).token
  memberToken = (await memberWithKey(owner, "me@uploads.example", "member")).token
}, 120_000)

afterAll(async () => {
  await s?.stop()
})

describe("uploads", () => {
  it("a viewer may not upload; a member may", async () => {
    const tar = await tarOf(0)
    expect((await upload(viewerToken, tar)).status).toBe(403)
    expect((await upload(memberToken, tar)).status).toBe(201)
  })

  it("a viewer with a deploy grant on a service may upload for that service, and deploy it", async () => {
    const owner = caller(s.server.port, s.ownerToken)
    const grantee = await memberWithKey(owner, "granted@uploads.example", "viewer")
    const first = (await upload(s.ownerToken, await tarOf(0))).body.uploadId as string
    const created = expectStatus(
      await owner("POST", "/v1/services", doc("services", { source: { uploadId: first }, name: "granted" })),
      202,
      "deploy granted"
    )
    const serviceId: string = created.body.data[0].relationships.service.data.id
    expectStatus(
      await owner(
        "POST",
        `/v1/services/${serviceId}/permissions`,
        doc("service-permissions", { userId: grantee.userId, permission: "deploy" })
      ),
      201,
      "grant deploy"
    )
    const tar = await tarOf(0)
    // Team-wide, a viewer still may not; the refusal says how to name the service.
    const teamWide = await upload(grantee.token, tar)
    expect(teamWide.status).toBe(403)
    expect(teamWide.body.errors[0].detail).toContain("POST /v1/uploads?service=<name>")
    // Another service (or one that does not exist): refused, naming the grant it needs.
    const other = await upload(grantee.token, tar, undefined, "?service=someone-else")
    expect(other.status).toBe(403)
    expect(other.body.errors[0].detail).toContain("deploy grant on that service")
    // A plain viewer naming the service: refused.
    expect((await upload(viewerToken, tar, undefined, "?service=granted")).status).toBe(403)
    // The grantee naming it: stored, and deployable to that service.
    const ok = await upload(grantee.token, tar, undefined, "?service=granted")
    expect(ok.status).toBe(201)
    const viewer = caller(s.server.port, grantee.token)
    expectStatus(
      await viewer(
        "POST",
        "/v1/services",
        doc("services", { source: { uploadId: ok.body.uploadId }, name: "granted" })
      ),
      202,
      "the grantee's deploy"
    )
    // Removed, so its uploads are unused again and expire like the others.
    expectStatus(await owner("DELETE", `/v1/services/${serviceId}`), 204, "delete granted")
  })

  it("an empty body is a 400, a content type that is not a tar a 415", async () => {
    const empty = await upload(memberToken, new Uint8Array(0))
    expect(empty.status).toBe(400)
    expect(empty.body.errors[0].code).toBe("EmptyUpload")
    for (const type of ["application/json", "text/plain", "multipart/form-data; boundary=x"]) {
      const r = await upload(memberToken, await tarOf(0), type)
      expect(r.status, type).toBe(415)
    }
  })

  it("the team's uploads are capped by its upload quota", async () => {
    const big = await tarOf(600 * 1024)
    const first = await upload(s.ownerToken, big)
    expect(first.status).toBe(201)
    const second = await upload(s.ownerToken, big)
    expect(second.status).toBe(413)
    expect(second.body.errors[0].code).toBe("UploadQuotaExceeded")
  })

  it("concurrent uploads at the limit cannot overshoot the quota", async () => {
    const teamDir = path.join(s.dataDir, "uploads", s.teamId)
    await waitFor("earlier uploads expire", 10_000, async () =>
      !fs.existsSync(teamDir) ||
      fs.readdirSync(teamDir).filter((n) => n.startsWith("upl_") && !n.endsWith(".size")).length === 0
        ? true
        : undefined
    )
    // Six at once of ~400 KB each against 1 MB: two fit, the others must be refused.
    const tar = await tarOf(400 * 1024)
    const answers = await Promise.all(Array.from({ length: 6 }, () => upload(s.ownerToken, tar)))
    const statuses = answers.map((a) => a.status).sort()
    expect(statuses.filter((x) => x === 201).length).toBeGreaterThanOrEqual(1)
    expect(statuses.filter((x) => x === 201).length).toBeLessThanOrEqual(2)
    expect(statuses.filter((x) => x === 413)).toHaveLength(6 - statuses.filter((x) => x === 201).length)
    const stored = fs
      .readdirSync(teamDir)
      .filter((n) => n.endsWith(".size"))
      .reduce((sum, n) => sum + Number(fs.readFileSync(path.join(teamDir, n), "utf8")), 0)
    expect(stored).toBeLessThanOrEqual(1024 * 1024)
  })

  it("an upload no service uses expires; one a service was deployed from stays", async () => {
    const owner = caller(s.server.port, s.ownerToken)
    // Wait out earlier tests' uploads, so the quota is free again.
    const teamDir = path.join(s.dataDir, "uploads", s.teamId)
    await waitFor("earlier uploads expire", 10_000, async () =>
      !fs.existsSync(teamDir) ||
      fs.readdirSync(teamDir).filter((n) => n.startsWith("upl_") && !n.endsWith(".size")).length === 0
        ? true
        : undefined
    )
    const unused = (await upload(s.ownerToken, await tarOf(0))).body.uploadId as string
    const used = (await upload(s.ownerToken, await tarOf(0))).body.uploadId as string
    expectStatus(
      await owner(
        "POST",
        "/v1/services",
        doc("services", { source: { uploadId: used }, name: "from-upload" })
      ),
      202,
      "deploy"
    )
    await waitFor("unused upload expires", 10_000, async () =>
      fs.existsSync(path.join(teamDir, unused)) ? undefined : true
    )
    expect(fs.existsSync(path.join(teamDir, used))).toBe(true)
    const late = await owner("POST", "/v1/services", doc("services", { source: { uploadId: unused } }))
    expect(late.status).toBe(422)
    expect(late.body.errors[0].code).toBe("invalid_source")
  })
})

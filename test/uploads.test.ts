/**
 * `POST /v1/uploads` against a real server: hostile tarballs are refused with 400 naming the entry
 * and leave nothing behind; a good one is extracted under `<dataDir>/uploads/<teamId>/<uploadId>`;
 * an upload over the (lowered) size limit is a 413.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"

import * as Credentials from "@kyozo/api/Credentials"
import { Effect, Option } from "effect"
import * as tar from "tar-stream"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

import { type ServerProcess, startServer, waitFor } from "./support/server.js"

const MAX_BYTES = 64 * 1024

let server: ServerProcess
let dataDir: string
let creds: Credentials.Credentials

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-upl-"))
  server = await startServer({
    KYOZO_RUNTIME: "mock",
    KYOZO_DATA_DIR: dataDir,
    KYOZO_UPLOAD_MAX_BYTES: String(MAX_BYTES)
  })
  await waitFor("server /healthz", 60_000, async () =>
    (await server.get("/healthz")).status === 200 ? true : undefined
  ).catch((e) => {
    throw new Error(`${e}\n${server.log()}`)
  })
  creds = await Effect.runPromise(Credentials.read(dataDir)).then(Option.getOrThrow)
})

afterAll(async () => {
  await server?.stop()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

interface Entry {
  readonly name: string
  readonly type?: "file" | "directory" | "symlink" | "character-device"
  readonly linkname?: string
  readonly devmajor?: number
  readonly devminor?: number
  readonly content?: string | Buffer
}

const tarball = (entries: ReadonlyArray<Entry>): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const pack = tar.pack()
    const chunks: Array<Buffer> = []
    pack.on("data", (c: unknown) => void chunks.push(c as Buffer))
    pack.on("end", () => resolve(Buffer.concat(chunks)))
    pack.on("error", reject)
    for (const { content, ...header } of entries) {
      if (content === undefined) pack.entry(header as tar.Header)
      else pack.entry(header as tar.Header, content)
    }
    pack.finalize()
  })

const post = async (body: Buffer) => {
  const res = await fetch(`http://127.0.0.1:${server.port}/v1/uploads`, {
    method: "POST",
    headers: { authorization: `Bearer ${creds.token}`, "content-type": "application/x-tar" },
    body
  })
  return { status: res.status, body: (await res.json()) as any }
}

/** Every regular file under the uploads folder (directories may exist, files must not). */
const filesUnderUploads = (): Array<string> => {
  const root = path.join(dataDir, "uploads")
  if (!fs.existsSync(root)) return []
  return (fs.readdirSync(root, { recursive: true }) as Array<string>).filter(
    (p) => !fs.statSync(path.join(root, p)).isDirectory()
  )
}

describe("POST /v1/uploads", () => {
  const hostile: ReadonlyArray<[string, ReadonlyArray<Entry>, string]> = [
    ["absolute path", [{ name: "/etc/cron.d/evil", content: "x" }], "/etc/cron.d/evil"],
    [
      "parent traversal",
      [
        { name: "ok.txt", content: "fine" },
        { name: "../evil.txt", content: "x" }
      ],
      "../evil.txt"
    ],
    ["symlink leaving the folder", [{ name: "escape", type: "symlink", linkname: "../../../etc" }], "escape"],
    ["absolute symlink", [{ name: "abs", type: "symlink", linkname: "/etc/passwd" }], "abs"],
    ["device", [{ name: "null", type: "character-device", devmajor: 1, devminor: 3 }], "null"],
    [
      "write through a symlink",
      [
        { name: "dir", type: "symlink", linkname: "." },
        { name: "dir/../../x", content: "x" }
      ],
      "dir"
    ]
  ]

  for (const [what, entries, entry] of hostile) {
    it(`refuses ${what} with 400 naming the entry, writing nothing`, async () => {
      const res = await post(await tarball(entries))
      expect(res.status).toBe(400)
      expect(res.body.errors[0]).toMatchObject({ status: "400", code: "UploadRejected" })
      expect(res.body.errors[0].detail).toContain(entry)
      expect(filesUnderUploads()).toEqual([])
    })
  }

  it("accepts a good folder (gzipped too) with 201 and extracts it under the team", async () => {
    const good = await tarball([
      { name: "index.html", content: "<h1>hi</h1>" },
      { name: "assets/", type: "directory" },
      { name: "assets/app.js", content: "console.log(1)" },
      { name: "link.html", type: "symlink", linkname: "index.html" }
    ])
    for (const body of [good, zlib.gzipSync(good)]) {
      const res = await post(body)
      expect(res.status).toBe(201)
      expect(res.body.uploadId).toMatch(/^upl_[0-9a-z]{16}$/)
      expect(res.body.files).toBeGreaterThanOrEqual(3)
      const dir = path.join(dataDir, "uploads", creds.teamId, res.body.uploadId)
      expect(fs.readFileSync(path.join(dir, "assets", "app.js"), "utf8")).toBe("console.log(1)")
      expect(fs.readlinkSync(path.join(dir, "link.html"))).toBe("index.html")
    }
  })

  it("answers 413 over the size limit and keeps nothing of it", async () => {
    const before = filesUnderUploads()
    const res = await post(await tarball([{ name: "big.bin", content: Buffer.alloc(MAX_BYTES + 1, 1) }]))
    expect(res.status).toBe(413)
    expect(res.body.errors[0]).toMatchObject({ status: "413", code: "UploadTooLarge" })
    expect(res.body.errors[0].detail).toContain("big.bin")
    expect(filesUnderUploads()).toEqual(before)
  })

  it("answers 400 for a body that is not a tar", async () => {
    const res = await post(Buffer.from("this is not a tarball at all".repeat(40)))
    expect(res.status).toBe(400)
    expect(res.body.errors[0].code).toBe("UploadRejected")
  })
})

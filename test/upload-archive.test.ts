import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"

import { describe, expect, it } from "@effect/vitest"
import { extract, UploadRejected } from "@kyozo/core/sources/UploadArchive"
import { Data, Effect, Stream } from "effect"
import * as tar from "tar-stream"
import { afterAll } from "vitest"

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-upload-"))
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }))

type Item = Partial<tar.Header> & { name: string; body?: string | Buffer }

/** A tar built entry by entry with tar-stream, hostile ones included. */
const tarball = (items: ReadonlyArray<Item>): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const pack = tar.pack()
    const chunks: Array<Buffer> = []
    pack.on("data", (c: unknown) => void chunks.push(c as Buffer))
    pack.on("end", () => resolve(Buffer.concat(chunks)))
    pack.on("error", reject)
    for (const { body, ...header } of items) {
      if (body !== undefined) pack.entry({ mode: 0o644, ...header }, body)
      else pack.entry({ mode: 0o644, ...header })
    }
    pack.finalize()
  })

/** Emits the buffer in small chunks, as a network upload would. */
const chunked = (buffer: Buffer, size = 700): Stream.Stream<Uint8Array> =>
  Stream.fromIterable(
    Array.from({ length: Math.ceil(buffer.length / size) }, (_, i) =>
      buffer.subarray(i * size, (i + 1) * size)
    )
  )

let n = 0
const freshDest = () => path.join(tmpRoot, `parent${n}`, `upload-${n++}`)

/** Nothing left behind: no destination, and no temp dir beside it. */
const expectNothingLeft = (dest: string) => {
  expect(fs.existsSync(dest)).toBe(false)
  const parent = path.dirname(dest)
  expect(fs.existsSync(parent) ? fs.readdirSync(parent) : []).toEqual([])
}

const rejected = (items: ReadonlyArray<Item>, limits?: Parameters<typeof extract>[2]) =>
  Effect.gen(function* () {
    const dest = freshDest()
    const archive = yield* Effect.promise(() => tarball(items))
    const error = yield* Effect.flip(extract(chunked(archive), dest, limits))
    expectNothingLeft(dest)
    return error
  })

const GOOD_FILE: Item = { name: "index.html", body: "<h1>ok</h1>" }

describe("UploadArchive.extract", () => {
  it.effect("a good tarball extracts exactly: files, folders, modes, links inside", () =>
    Effect.gen(function* () {
      const dest = freshDest()
      const archive = yield* Effect.promise(() =>
        tarball([
          { name: "./", type: "directory", mode: 0o755 },
          { name: "./package.json", body: '{"name":"x"}' },
          { name: "src/", type: "directory", mode: 0o700 },
          { name: "src/server.js", body: "require('http')" },
          { name: "bin/run.sh", body: "#!/bin/sh\necho hi\n", mode: 0o4755 },
          { name: "empty/", type: "directory" },
          { name: "src/alias.js", type: "symlink", linkname: "server.js" },
          { name: "root-link", type: "symlink", linkname: "src/../package.json" },
          { name: "hard.js", type: "link", linkname: "src/server.js" }
        ])
      )
      const result = yield* extract(chunked(archive), dest)
      expect(result).toEqual({ files: 8, bytes: 12 + 15 + 18 })
      expect(fs.readFileSync(path.join(dest, "package.json"), "utf8")).toBe('{"name":"x"}')
      expect(fs.readFileSync(path.join(dest, "src/server.js"), "utf8")).toBe("require('http')")
      expect(fs.readFileSync(path.join(dest, "hard.js"), "utf8")).toBe("require('http')")
      expect(fs.statSync(path.join(dest, "hard.js")).ino).toBe(
        fs.statSync(path.join(dest, "src/server.js")).ino
      )
      expect(fs.readlinkSync(path.join(dest, "src/alias.js"))).toBe("server.js")
      expect(fs.readFileSync(path.join(dest, "root-link"), "utf8")).toBe('{"name":"x"}')
      expect(fs.statSync(path.join(dest, "empty")).isDirectory()).toBe(true)
      // The executable bit stays, setuid goes.
      expect(fs.statSync(path.join(dest, "bin/run.sh")).mode & 0o7777).toBe(0o755)
      expect(fs.statSync(path.join(dest, "package.json")).mode & 0o111).toBe(0)
      const all = fs.readdirSync(dest, { recursive: true }).map(String).sort()
      expect(all).toEqual(
        [
          "bin",
          "bin/run.sh",
          "empty",
          "hard.js",
          "package.json",
          "root-link",
          "src",
          "src/alias.js",
          "src/server.js"
        ].sort()
      )
      // Only the destination appears in its parent: the temp dir was renamed, not copied.
      expect(fs.readdirSync(path.dirname(dest))).toEqual([path.basename(dest)])
    })
  )

  it.effect("a gzipped tarball extracts too", () =>
    Effect.gen(function* () {
      const dest = freshDest()
      const archive = zlib.gzipSync(yield* Effect.promise(() => tarball([GOOD_FILE])))
      expect(yield* extract(chunked(archive, 3), dest)).toEqual({ files: 1, bytes: 11 })
      expect(fs.readFileSync(path.join(dest, "index.html"), "utf8")).toBe("<h1>ok</h1>")
    })
  )

  const hostile: Array<[string, ReadonlyArray<Item>, string, RegExp]> = [
    ["traversal ../x", [GOOD_FILE, { name: "../x", body: "pwned" }], "../x", /\.\./],
    ["nested traversal", [{ name: "a/../../x", body: "pwned" }], "a/../../x", /\.\./],
    ["absolute /etc/x", [GOOD_FILE, { name: "/etc/x", body: "pwned" }], "/etc/x", /absolute/],
    [
      "symlink to /etc/passwd",
      [GOOD_FILE, { name: "passwd", type: "symlink", linkname: "/etc/passwd" }],
      "passwd",
      /absolute/
    ],
    [
      "symlink to ../../x",
      [GOOD_FILE, { name: "sub/link", type: "symlink", linkname: "../../x" }],
      "sub/link",
      /leaves the folder/
    ],
    [
      "symlink escaping through another link",
      [
        { name: "here", type: "symlink", linkname: "." },
        { name: "escape", type: "symlink", linkname: "here/.." }
      ],
      "escape",
      /passes through/
    ],
    [
      "file written through a symlinked folder",
      [
        { name: "dir", type: "symlink", linkname: "." },
        { name: "dir/x", body: "through the link" }
      ],
      "dir/x",
      /not a directory/
    ],
    [
      "hardlink escaping",
      [GOOD_FILE, { name: "shadow", type: "link", linkname: "../../etc/shadow" }],
      "shadow",
      /\.\./
    ],
    [
      "hardlink to an absolute path",
      [GOOD_FILE, { name: "shadow", type: "link", linkname: "/etc/shadow" }],
      "shadow",
      /absolute/
    ],
    [
      "character device",
      [GOOD_FILE, { name: "null", type: "character-device", devmajor: 1, devminor: 3 }],
      "null",
      /character-device/
    ],
    ["block device", [GOOD_FILE, { name: "sda", type: "block-device", devmajor: 8 }], "sda", /block-device/],
    ["fifo", [GOOD_FILE, { name: "pipe", type: "fifo" }], "pipe", /fifo/]
  ]
  for (const [title, items, entry, reason] of hostile) {
    it.effect(`rejects ${title}, naming the entry, leaving nothing behind`, () =>
      Effect.gen(function* () {
        const error = yield* rejected(items)
        expect(error).toBeInstanceOf(UploadRejected)
        expect(error.entry).toBe(entry)
        expect(error.reason).toMatch(reason)
      })
    )
  }

  it.effect("rejects oversize uploads by bytes, counted from the data", () =>
    Effect.gen(function* () {
      const error = yield* rejected(
        [GOOD_FILE, { name: "big.bin", body: Buffer.alloc(5000, 1) }, { name: "after.txt", body: "x" }],
        { maxBytes: 4096 }
      )
      expect(error).toMatchObject({ _tag: "UploadRejected", entry: "big.bin" })
      expect(error.reason).toMatch(/larger than 4096 bytes/)
      // Many small files add up as well.
      const many = yield* rejected(
        Array.from({ length: 10 }, (_, i) => ({ name: `f${i}.txt`, body: "x".repeat(500) })),
        { maxBytes: 4096 }
      )
      expect(many).toMatchObject({ _tag: "UploadRejected", entry: "f8.txt" })
    })
  )

  it.effect("rejects too many entries and overlong paths", () =>
    Effect.gen(function* () {
      const files = yield* rejected(
        Array.from({ length: 6 }, (_, i) => ({ name: `f${i}.txt`, body: "x" })),
        { maxFiles: 5 }
      )
      expect(files).toMatchObject({ _tag: "UploadRejected", entry: "f5.txt" })
      expect(files.reason).toMatch(/more than 5 entries/)
      const long = yield* rejected([{ name: `${"d/".repeat(40)}x.txt`, body: "x" }], { maxPathLength: 50 })
      expect(long.reason).toMatch(/longer than 50/)
    })
  )

  it.effect("a truncated or garbage archive is rejected as a whole", () =>
    Effect.gen(function* () {
      const dest = freshDest()
      const archive = yield* Effect.promise(() => tarball([{ name: "a.bin", body: Buffer.alloc(3000, 7) }]))
      const error = yield* Effect.flip(extract(chunked(archive.subarray(0, 1500)), dest))
      expect(error).toMatchObject({ _tag: "UploadRejected", entry: "(archive)" })
      expectNothingLeft(dest)
      const gz = freshDest()
      const garbage = Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(100, 9)])
      const gzError = yield* Effect.flip(extract(chunked(garbage), gz))
      expect(gzError).toMatchObject({ _tag: "UploadRejected", entry: "(archive)" })
      expectNothingLeft(gz)
    })
  )

  it.effect("a failing upload stream fails with its own error and leaves nothing behind", () =>
    Effect.gen(function* () {
      class ClientGone extends Data.TaggedError("ClientGone")<{}> {}
      const dest = freshDest()
      const archive = yield* Effect.promise(() =>
        tarball([GOOD_FILE, { name: "big.bin", body: Buffer.alloc(20_000, 1) }])
      )
      const source = Stream.concat(chunked(archive.subarray(0, 4000)), Stream.fail(new ClientGone()))
      const error = yield* Effect.flip(extract(source, dest))
      expect(error).toBeInstanceOf(ClientGone)
      expectNothingLeft(dest)
    })
  )

  it.effect("an existing destination is never overwritten", () =>
    Effect.gen(function* () {
      const dest = freshDest()
      fs.mkdirSync(dest, { recursive: true })
      fs.writeFileSync(path.join(dest, "mine.txt"), "keep")
      const archive = yield* Effect.promise(() => tarball([GOOD_FILE]))
      const error = yield* Effect.flip(extract(chunked(archive), dest))
      expect(error).toMatchObject({ _tag: "UploadRejected" })
      expect(fs.readdirSync(path.dirname(dest))).toEqual([path.basename(dest)])
      expect(fs.readFileSync(path.join(dest, "mine.txt"), "utf8")).toBe("keep")
    })
  )
})

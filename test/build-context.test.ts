import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { describe, expect, it } from "@effect/vitest"
import { fromFolder } from "@kyozo/core/build/BuildContext"
import { InvalidWorkspacePath, resolveInside, Workspaces } from "@kyozo/core/sources/Workspaces"
import { ConfigProvider, Effect, Exit, Layer, Stream } from "effect"
import * as tar from "tar-stream"
import { afterAll } from "vitest"

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-ctx-"))
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }))

let counter = 0
/** Writes `files` (path → content) into a fresh folder, in the given order. */
const folder = (files: Record<string, string>, order: ReadonlyArray<string> = Object.keys(files)): string => {
  const dir = path.join(tmpRoot, `f${counter++}`)
  fs.mkdirSync(dir)
  for (const name of order) {
    const p = path.join(dir, name)
    fs.mkdirSync(path.dirname(p), { recursive: true })
    fs.writeFileSync(p, files[name]!)
  }
  return dir
}

const BASE = {
  Dockerfile: "FROM scratch\nCOPY . /\n",
  "index.js": "console.log('hi')\n",
  "lib/util.js": "module.exports = 1\n",
  "public/a.css": "body{}\n"
}

/** The entries of a context's tar: name → { type, mode, content or link target }. */
const entriesOf = (archive: Stream.Stream<Uint8Array>) =>
  Effect.gen(function* () {
    const chunks = yield* Stream.runCollect(archive)
    const buffer = Buffer.concat([...chunks].map((c) => Buffer.from(c)))
    return yield* Effect.promise(async () => {
      const out = new Map<string, { type: string; mode: number; body: string }>()
      const ex = tar.extract()
      const done = (async () => {
        for await (const entry of ex) {
          const parts: Array<Buffer> = []
          for await (const c of entry) parts.push(c as Buffer)
          out.set(entry.header.name, {
            type: entry.header.type,
            mode: entry.header.mode,
            body: entry.header.type === "symlink" ? entry.header.linkname : Buffer.concat(parts).toString()
          })
        }
      })()
      ex.end(buffer)
      await done
      return out
    })
  })

describe("BuildContext.fromFolder", () => {
  it.effect("same content written in another order with other mtimes hashes the same", () =>
    Effect.gen(function* () {
      const a = folder(BASE)
      const b = folder(BASE, Object.keys(BASE).reverse())
      const old = new Date("2001-02-03T04:05:06Z")
      for (const f of Object.keys(BASE)) fs.utimesSync(path.join(b, f), old, old)
      const ca = yield* fromFolder(a)
      const cb = yield* fromFolder(b)
      expect(ca.hash).toMatch(/^[0-9a-f]{64}$/)
      expect(cb.hash).toBe(ca.hash)
      expect(ca.fileCount).toBe(4)
      expect(ca.sizeBytes).toBe(Object.values(BASE).reduce((n, s) => n + Buffer.byteLength(s), 0))
      // The tar itself is reproducible and re-runnable.
      const first = Buffer.concat([...(yield* Stream.runCollect(ca.tar))])
      const again = Buffer.concat([...(yield* Stream.runCollect(ca.tar))])
      const other = Buffer.concat([...(yield* Stream.runCollect(cb.tar))])
      expect(again.equals(first)).toBe(true)
      expect(other.equals(first)).toBe(true)
    })
  )

  it.effect("a changed byte, a new file or an executable bit changes the hash", () =>
    Effect.gen(function* () {
      const base = (yield* fromFolder(folder(BASE))).hash
      const changed = (yield* fromFolder(folder({ ...BASE, "index.js": "console.log('hI')\n" }))).hash
      const added = (yield* fromFolder(folder({ ...BASE, "new.txt": "" }))).hash
      const execDir = folder(BASE)
      fs.chmodSync(path.join(execDir, "index.js"), 0o755)
      const exec = (yield* fromFolder(execDir)).hash
      expect(new Set([base, changed, added, exec]).size).toBe(4)
    })
  )

  it.effect("default ignores: node_modules, .git and .env do not count; .env.example does", () =>
    Effect.gen(function* () {
      const plain = yield* fromFolder(folder(BASE))
      const noisy = yield* fromFolder(
        folder({
          ...BASE,
          "node_modules/x/index.js": "junk",
          ".git/HEAD": "ref: refs/heads/main",
          ".env": "SECRET=1",
          ".env.local": "SECRET=2"
        })
      )
      expect(noisy.hash).toBe(plain.hash)
      const entries = yield* entriesOf(noisy.tar)
      expect([...entries.keys()].some((k) => k.startsWith("node_modules") || k.startsWith(".git"))).toBe(
        false
      )
      expect(entries.has(".env")).toBe(false)
      const withExample = yield* fromFolder(folder({ ...BASE, ".env.example": "SECRET=" }))
      expect(withExample.hash).not.toBe(plain.hash)
    })
  )

  it.effect(".dockerignore replaces the defaults; it and the Dockerfile stay in the context", () =>
    Effect.gen(function* () {
      const ignoreFile = "*.log\nsecret/\nDockerfile\n.dockerignore\n!keep.log\n"
      const dir = folder({
        ...BASE,
        ".dockerignore": ignoreFile,
        "debug.log": "noise",
        "keep.log": "kept",
        "secret/key.pem": "----",
        "node_modules/x.js": "listed by the user's ignore? no: kept"
      })
      const ctx = yield* fromFolder(dir)
      const entries = yield* entriesOf(ctx.tar)
      expect(entries.has("debug.log")).toBe(false)
      expect(entries.get("keep.log")?.body).toBe("kept")
      expect(entries.has("secret/key.pem")).toBe(false)
      expect(entries.has("secret")).toBe(false)
      expect(entries.get("node_modules/x.js")?.type).toBe("file")
      expect(entries.get("Dockerfile")?.body).toBe(BASE.Dockerfile)
      expect(entries.get(".dockerignore")?.body).toBe(ignoreFile)
      // Changing an ignored file leaves the hash alone.
      fs.writeFileSync(path.join(dir, "debug.log"), "more noise")
      expect((yield* fromFolder(dir)).hash).toBe(ctx.hash)
    })
  )

  it.effect("extra files join the context and the hash, and never silently replace a user's file", () =>
    Effect.gen(function* () {
      const dir = folder({ "index.html": "<h1>hi</h1>" })
      const a = yield* fromFolder(dir, {
        extraFiles: { "Dockerfile.kyozo": "FROM x\n" },
        dockerfile: "Dockerfile.kyozo"
      })
      const b = yield* fromFolder(dir, {
        extraFiles: { "Dockerfile.kyozo": "FROM y\n" },
        dockerfile: "Dockerfile.kyozo"
      })
      expect(a.hash).not.toBe(b.hash)
      expect(a.dockerfile).toBe("Dockerfile.kyozo")
      expect((yield* entriesOf(a.tar)).get("Dockerfile.kyozo")?.body).toBe("FROM x\n")

      const taken = folder({ "index.html": "x", Dockerfile: "FROM mine\n" })
      const conflict = yield* Effect.exit(fromFolder(taken, { extraFiles: { Dockerfile: "FROM gen\n" } }))
      expect(conflict).toStrictEqual(Exit.fail(expect.objectContaining({ _tag: "BuildContextConflict" })))
      const replaced = yield* fromFolder(taken, {
        extraFiles: { Dockerfile: "FROM gen\n" },
        replaceExisting: true
      })
      expect((yield* entriesOf(replaced.tar)).get("Dockerfile")?.body).toBe("FROM gen\n")
      expect(replaced.fileCount).toBe(2)
    })
  )

  it.effect("symlinks: kept as links inside the folder, never followed out of it", () =>
    Effect.gen(function* () {
      const outside = folder({ "secret.txt": "top secret" })
      const dir = folder(BASE)
      fs.symlinkSync("lib/util.js", path.join(dir, "alias.js"))
      fs.symlinkSync(path.join(dir, "index.js"), path.join(dir, "abs-inside.js"))
      fs.symlinkSync(path.join(outside, "secret.txt"), path.join(dir, "leak.txt"))
      fs.symlinkSync("../" + path.basename(outside), path.join(dir, "leakdir"))
      fs.symlinkSync("/etc/passwd", path.join(dir, "passwd"))
      const entries = yield* entriesOf((yield* fromFolder(dir)).tar)
      expect(entries.get("alias.js")).toEqual({ type: "symlink", mode: 0o777, body: "lib/util.js" })
      expect(entries.get("abs-inside.js")).toEqual({ type: "symlink", mode: 0o777, body: "index.js" })
      expect(entries.has("leak.txt")).toBe(false)
      expect(entries.has("leakdir")).toBe(false)
      expect(entries.has("passwd")).toBe(false)
      expect([...entries.values()].some((e) => e.body.includes("top secret"))).toBe(false)
    })
  )

  it.effect("limits: too many bytes or files is a typed error that says what to do", () =>
    Effect.gen(function* () {
      const dir = folder({ ...BASE, "big.bin": "x".repeat(10_000) })
      const bytes = yield* Effect.flip(fromFolder(dir, { maxBytes: 5_000 }))
      expect(bytes._tag).toBe("BuildContextTooLarge")
      expect(bytes._tag === "BuildContextTooLarge" && bytes.limit).toBe("bytes")
      expect(bytes.message).toMatch(/\.dockerignore/)
      const files = yield* Effect.flip(fromFolder(dir, { maxFiles: 3 }))
      expect(files._tag === "BuildContextTooLarge" && files.limit).toBe("files")
      // Ignored files do not count against the limits.
      fs.mkdirSync(path.join(dir, "node_modules"))
      fs.writeFileSync(path.join(dir, "node_modules", "huge.bin"), "y".repeat(50_000))
      expect((yield* fromFolder(dir, { maxBytes: 20_000 })).fileCount).toBe(5)
    })
  )

  it.effect("a missing folder or Dockerfile is a typed error", () =>
    Effect.gen(function* () {
      const missing = yield* Effect.flip(fromFolder(path.join(tmpRoot, "nope")))
      expect(missing._tag).toBe("BuildContextUnreadable")
      const noDockerfile = yield* Effect.flip(fromFolder(folder({ "a.txt": "a" })))
      expect(noDockerfile._tag).toBe("DockerfileMissing")
      const optional = yield* fromFolder(folder({ "a.txt": "a" }), { requireDockerfile: false })
      expect(optional.fileCount).toBe(1)
    })
  )
})

describe("Workspaces.resolveInside", () => {
  const root = path.join(tmpRoot, "workspaces")
  fs.mkdirSync(path.join(root, "team-a", "app"), { recursive: true })
  fs.writeFileSync(path.join(root, "team-a", "file.txt"), "x")
  fs.symlinkSync("/etc", path.join(root, "escape"))
  fs.symlinkSync("team-a/app", path.join(root, "alias"))
  const realRoot = fs.realpathSync(root)

  it.effect(
    "accepts existing folders inside the root, by absolute or relative path and via inner links",
    () =>
      Effect.gen(function* () {
        expect(yield* resolveInside(root, path.join(root, "team-a", "app"))).toBe(
          path.join(realRoot, "team-a", "app")
        )
        expect(yield* resolveInside(root, "team-a/app")).toBe(path.join(realRoot, "team-a", "app"))
        expect(yield* resolveInside(root, "alias")).toBe(path.join(realRoot, "team-a", "app"))
      })
  )

  it.effect(
    "rejects paths outside the root, escaping links, files, missing folders and the root itself",
    () =>
      Effect.gen(function* () {
        for (const bad of [
          "/etc",
          "../",
          "team-a/../../",
          "escape",
          "team-a/file.txt",
          "team-a/missing",
          ".",
          root
        ]) {
          const error = yield* Effect.flip(resolveInside(root, bad))
          expect(error).toBeInstanceOf(InvalidWorkspacePath)
          expect(error.path).toBe(bad)
        }
      })
  )

  it.effect("the service reads KYOZO_WORKSPACES_ROOT, defaulting under KYOZO_DATA_DIR", () =>
    Effect.gen(function* () {
      const configured = yield* Effect.provide(
        Workspaces,
        Workspaces.Default.pipe(
          Layer.provide(
            Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["KYOZO_WORKSPACES_ROOT", root]])))
          )
        )
      )
      expect(configured.root).toBe(root)
      expect(yield* configured.resolve("team-a/app")).toBe(path.join(realRoot, "team-a", "app"))
      const dataDir = path.join(tmpRoot, "data")
      const fallback = yield* Effect.provide(
        Workspaces,
        Workspaces.Default.pipe(
          Layer.provide(
            Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["KYOZO_DATA_DIR", dataDir]])))
          )
        )
      )
      expect(fallback.root).toBe(path.join(dataDir, "workspaces"))
      expect(fs.statSync(fallback.root).isDirectory()).toBe(true)
    })
  )
})

#!/usr/bin/env node
/**
 * Builds the runnable JavaScript: `kyozo` (packages/cli/dist/kyozo.mjs) and the server
 * (packages/server/dist/main.mjs), one esbuild bundle each, so nothing transpiles TypeScript at
 * run time. Runs at `pnpm install` (root `postinstall`) and from the `kyozo` shim when its bundle
 * is missing. Another package joins by adding an entry to `bundles` or a `build` script of its own
 * in its package.json (run after the bundles, in workspace order).
 *
 *   node scripts/build.mjs            all bundles, then every package's own `build` script
 *   node scripts/build.mjs cli        only the named bundles
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

import * as esbuild from "esbuild"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/**
 * Packages that cannot be inlined: PGlite loads its .wasm/.data beside its own module, dockerode's
 * ssh2 has optional native addons, pg has an optional native binding. They stay imports, resolved
 * to the installed file (a bundle in packages/x/dist cannot see another package's node_modules).
 */
const serverExternals = ["@electric-sql/pglite", "dockerode", "pg", "pg-native", "cpu-features", "ssh2"]

export const bundles = {
  // The CLI is split: what a command imports with `import()` (the RPC client, detection, the
  // server) is a chunk loaded on use, so `kyozo --version` loads only the command table.
  cli: {
    entry: "packages/cli/src/main.ts",
    outdir: "packages/cli/dist",
    name: "kyozo",
    externals: serverExternals
  },
  server: {
    entry: "packages/server/src/main.ts",
    outdir: "packages/server/dist",
    name: "main",
    externals: serverExternals
  }
}

/** Marks the listed packages external, as the absolute file URL the installed package resolves to. */
const externalPackages = (names) => ({
  name: "kyozo-externals",
  setup(build) {
    if (names.length === 0) return
    const filter = new RegExp(`^(${names.map((n) => n.replace(/[/.]/g, "\\$&")).join("|")})(/.*)?$`)
    build.onResolve({ filter }, async (args) => {
      if (args.pluginData === "kyozo-externals") return undefined
      const resolved = await build.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        pluginData: "kyozo-externals"
      })
      // An optional dependency that is not installed (pg-native): leave the bare name to fail lazily.
      if (resolved.errors.length > 0) return { path: args.path, external: true }
      // require() takes a path; import takes a URL.
      const target = args.kind === "require-call" ? resolved.path : `file://${resolved.path}`
      return { path: target, external: true }
    })
  }
})

export const build = async (name) => {
  const b = bundles[name]
  if (!b) throw new Error(`unknown bundle ${name}: one of ${Object.keys(bundles).join(", ")}`)
  const started = Date.now()
  fs.rmSync(path.join(root, b.outdir), { recursive: true, force: true })
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: { [b.name]: b.entry },
    outdir: b.outdir,
    outExtension: { ".js": ".mjs" },
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    minify: true,
    keepNames: true,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "linked",
    logLevel: "warning",
    legalComments: "none",
    // CommonJS dependencies inside an ES module bundle still call require().
    banner: {
      js: 'import { createRequire as __kyozoRequire } from "node:module"; const require = __kyozoRequire(import.meta.url);'
    },
    plugins: [externalPackages(b.externals)]
  })
  return { name, outfile: `${b.outdir}/${b.name}.mjs`, ms: Date.now() - started }
}

const ownBuilds = () => {
  const dir = path.join(root, "packages")
  return fs
    .readdirSync(dir)
    .filter((p) => {
      const file = path.join(dir, p, "package.json")
      return fs.existsSync(file) && JSON.parse(fs.readFileSync(file, "utf8")).scripts?.build !== undefined
    })
    .map((p) => path.join(dir, p))
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2)
  const selected = names.length > 0 ? names : Object.keys(bundles)
  for (const name of selected) {
    const r = await build(name)
    if (!process.env.KYOZO_BUILD_QUIET) console.error(`built ${r.outfile} in ${r.ms} ms`)
  }
  if (names.length === 0)
    for (const dir of ownBuilds()) execFileSync("pnpm", ["run", "build"], { cwd: dir, stdio: "inherit" })
}

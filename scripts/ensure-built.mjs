/**
 * Used by the committed shims (packages/cli/bin/kyozo.mjs, packages/server/bin/kyozo-server.mjs):
 * builds a bundle with scripts/build.mjs when it is missing, or (server) older than any source file
 * of the workspace packages, e.g. after a `git pull` without `pnpm install`. The freshness check is
 * a stat walk of packages/ * /src (~20 ms).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

const newestSource = () => {
  let newest = 0
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name.endsWith(".ts")) newest = Math.max(newest, fs.statSync(p).mtimeMs)
    }
  }
  for (const pkg of fs.readdirSync(path.join(root, "packages"))) {
    const src = path.join(root, "packages", pkg, "src")
    if (fs.existsSync(src)) walk(src)
  }
  return newest
}

/**
 * Ensures `bundle` (a file URL) of build target `name` exists and, with `{ fresh: true }`, is not
 * older than the sources (the server checks; the CLI only checks existence, since every command
 * would pay for the walk: `pnpm install` or `pnpm build` refreshes it).
 */
export const ensureBuilt = (bundle, name, options = {}) => {
  const file = fileURLToPath(bundle)
  const built = fs.existsSync(file) ? fs.statSync(file).mtimeMs : 0
  if (built > 0 && !options.fresh) return
  if (built > 0 && built >= newestSource()) return
  const r = spawnSync(process.execPath, [path.join(root, "scripts", "build.mjs"), name], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, KYOZO_BUILD_QUIET: "1" }
  })
  if (r.status !== 0) {
    process.stderr.write(`kyozo: could not build the ${name} bundle: run \`pnpm install\` in ${root}\n`)
    process.exit(1)
  }
}

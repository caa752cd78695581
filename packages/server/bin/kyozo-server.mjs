#!/usr/bin/env node
// `pnpm start`: runs the server bundle that `pnpm install` builds (scripts/build.mjs), building it
// first when it is missing. One process, so signals reach the server itself.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const bundle = new URL("../dist/main.mjs", import.meta.url)
if (!existsSync(bundle)) {
  const build = fileURLToPath(new URL("../../../scripts/build.mjs", import.meta.url))
  const r = spawnSync(process.execPath, [build, "server"], { stdio: ["ignore", "ignore", "inherit"] })
  if (r.status !== 0) {
    process.stderr.write("kyozo: could not build the server bundle: run `pnpm install` first\n")
    process.exit(1)
  }
}
await import(bundle.href)

#!/usr/bin/env node
// The `kyozo` command: loads the bundle that `pnpm install` builds (scripts/build.mjs), and builds
// it first when it is missing. No TypeScript is transpiled here.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const bundle = new URL("../dist/kyozo.mjs", import.meta.url)
if (!existsSync(bundle)) {
  const build = fileURLToPath(new URL("../../../scripts/build.mjs", import.meta.url))
  const r = spawnSync(process.execPath, [build, "cli"], { stdio: ["ignore", "ignore", "inherit"] })
  if (r.status !== 0) {
    process.stderr.write(
      "kyozo: could not build the CLI bundle: run `pnpm install` in the Kyozo repository\n"
    )
    process.exit(1)
  }
}
await import(bundle.href)

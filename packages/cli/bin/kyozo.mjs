#!/usr/bin/env node
// The `kyozo` command: loads the bundle that `pnpm install` builds (scripts/build.mjs), building it
// first when it is missing (`pnpm build` refreshes it after a source change). No TypeScript is transpiled here.
import { ensureBuilt } from "../../../scripts/ensure-built.mjs"

const bundle = new URL("../dist/kyozo.mjs", import.meta.url)
ensureBuilt(bundle, "cli")
await import(bundle.href)

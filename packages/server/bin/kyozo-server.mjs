#!/usr/bin/env node
// `pnpm start`: runs the server bundle that `pnpm install` builds (scripts/build.mjs), building it
// first when it is missing or older than the sources. One process, so signals reach the server.
import { ensureBuilt } from "../../../scripts/ensure-built.mjs"

const bundle = new URL("../dist/main.mjs", import.meta.url)
ensureBuilt(bundle, "server", { fresh: true })
await import(bundle.href)

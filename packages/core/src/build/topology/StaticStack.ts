/**
 * Static sites: an index.html at the folder root or in a conventional site folder, and nothing else that runs.
 */
import { Effect } from "effect"

import { BackingSet } from "./BackingServices.js"
import { ev, type StackDetector } from "./Stack.js"

const SITE_DIRS = [".", "public", "www", "site", "static", "html", "_site"]

export const detectStatic: StackDetector = (ctx) =>
  Effect.sync(() => {
    const siteDir = SITE_DIRS.find((d) => ctx.has(d === "." ? "index.html" : `${d}/index.html`))
    if (!siteDir) return undefined
    const index = siteDir === "." ? "index.html" : `${siteDir}/index.html`
    return {
      kind: "static",
      framework: null,
      startCommand: null,
      requires: new BackingSet(),
      evidence: [ev(ctx.rel(index), "static site entry page")],
      confidence: siteDir === "." ? 0.7 : 0.6,
      library: false,
      hints: { stack: "static", manifests: [], siteDir }
    }
  })

/**
 * Detection on a realistic 20k-file tree (a few apps, node_modules-like folders, many sources),
 * timed against a bare recursive fs.readdir of the same tree.
 */
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"

import { detect } from "@kyozo/core/build/topology/TopologyDetector"
import { Effect } from "effect"

const TARGET_FILES = 20_000

const write = (root: string, rel: string, content: string): void => {
  const p = path.join(root, rel)
  fs.mkdirSync(path.dirname(p), { recursive: true })
  fs.writeFileSync(p, content)
}

const buildTree = (root: string): number => {
  let n = 0
  const put = (rel: string, content: string) => {
    write(root, rel, content)
    n++
  }
  put("package.json", JSON.stringify({ name: "bench", private: true, workspaces: ["apps/*", "packages/*"] }))
  put("package-lock.json", "{}")
  const apps = [
    [
      "apps/api",
      { name: "api", scripts: { start: "node src/index.js" }, dependencies: { express: "4", pg: "8" } }
    ],
    ["apps/web", { name: "web", scripts: { start: "next start" }, dependencies: { next: "14" } }],
    ["apps/jobs", { name: "jobs", scripts: { start: "node src/index.js" }, dependencies: { bullmq: "5" } }],
    ["packages/ui", { name: "ui", main: "src/index.js" }]
  ] as const
  for (const [dir, pkg] of apps) {
    put(`${dir}/package.json`, JSON.stringify(pkg))
    const library = dir.startsWith("packages/")
    put(
      `${dir}/src/index.js`,
      library
        ? "export const Button = () => null\n"
        : "const app = require('express')()\napp.listen(process.env.PORT || 3000)\n"
    )
  }
  put("services/py/requirements.txt", "fastapi\nuvicorn\n")
  put("services/py/main.py", "from fastapi import FastAPI\napp = FastAPI()\n")
  put("services/go/go.mod", "module x/go\n\ngo 1.22\n")
  put("services/go/main.go", 'package main\nfunc main() { http.ListenAndServe(":8080", nil) }\n')
  let i = 0
  while (n < TARGET_FILES) {
    const r = i % 10
    if (r < 6) {
      // Dependency folders: most of the files of a real checkout.
      const app = apps[i % apps.length]![0]
      put(`${app}/node_modules/pkg-${i % 400}/lib/m${i}.js`, "module.exports = 1\n")
    } else if (r < 9) {
      const app = apps[i % apps.length]![0]
      put(`${app}/src/feature-${i % 50}/part-${i % 7}/f${i}.js`, `export const f${i} = () => ${i}\n`)
    } else {
      put(`.git/objects/${(i % 256).toString(16)}/o${i}`, "x")
    }
    i++
  }
  return n
}

const readdirAll = async (dir: string): Promise<number> => {
  let count = 0
  const entries = await fsp.readdir(dir, { withFileTypes: true })
  for (const e of entries) {
    count++
    if (e.isDirectory()) count += await readdirAll(path.join(dir, e.name))
  }
  return count
}

const main = async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "kyozo-bench-detect-"))
  try {
    const files = buildTree(root)
    // Warm the page cache once so neither side pays for the first cold read.
    await readdirAll(root)
    const t0 = performance.now()
    const entries = await readdirAll(root)
    const readdirMs = performance.now() - t0
    // First run includes loading and JIT-compiling the detector; the second is the steady state.
    const t1 = performance.now()
    await Effect.runPromise(detect(root))
    const coldMs = performance.now() - t1
    const t2 = performance.now()
    const result = await Effect.runPromise(detect(root))
    const detectMs = performance.now() - t2
    console.log(`tree: ${files} files, ${entries} entries`)
    console.log(
      `services: ${result.services.map((s) => `${s.name}(${s.kind}${s.framework ? `/${s.framework}` : ""})`).join(", ")}`
    )
    console.log(`bare recursive readdir: ${readdirMs.toFixed(1)} ms`)
    console.log(`kyozo detect (cold):    ${coldMs.toFixed(1)} ms`)
    console.log(`kyozo detect (warm):    ${detectMs.toFixed(1)} ms`)
    console.log(`ratio warm detect/readdir: ${(detectMs / readdirMs).toFixed(2)}x`)
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})

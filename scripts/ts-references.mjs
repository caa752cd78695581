// Keeps the project references of `tsc -b` in step with the workspace dependencies: each package's
// tsconfig.json references the packages its package.json depends on (@kyozo/*), so `tsc -b` checks
// every package on its own against the declarations of the ones it may import.
//
//   node scripts/ts-references.mjs          rewrites the references
//   node scripts/ts-references.mjs --check  fails, naming the package, when one is out of step
import * as fs from "node:fs"
import * as path from "node:path"

import * as prettier from "prettier"

const root = path.resolve(import.meta.dirname, "..")
const check = process.argv.includes("--check")
const stale = []
for (const dir of fs.readdirSync(path.join(root, "packages")).sort()) {
  const tsconfigPath = path.join(root, "packages", dir, "tsconfig.json")
  const manifest = JSON.parse(fs.readFileSync(path.join(root, "packages", dir, "package.json"), "utf8"))
  const tsconfig = JSON.parse(fs.readFileSync(tsconfigPath, "utf8"))
  // Only composite packages take part (the dashboard is bundled by Vite and checked on its own).
  if (!tsconfig.compilerOptions?.composite) continue
  const deps = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies })
    .filter((name) => name.startsWith("@kyozo/") && name !== manifest.name)
    .map((name) => ({ path: `../${name.slice("@kyozo/".length)}` }))
    .sort((a, b) => a.path.localeCompare(b.path))
  if (JSON.stringify(tsconfig.references ?? []) === JSON.stringify(deps)) continue
  stale.push(dir)
  if (!check) {
    tsconfig.references = deps
    const options = { ...(await prettier.resolveConfig(tsconfigPath)), filepath: tsconfigPath }
    fs.writeFileSync(tsconfigPath, await prettier.format(JSON.stringify(tsconfig), options))
  }
}
if (check && stale.length > 0) {
  console.error(
    `tsconfig references out of step with package.json in: ${stale.join(", ")}. Run node scripts/ts-references.mjs`
  )
  process.exit(1)
}

const { Effect } = await import("effect")
const { scanFolder } = await import("@kyozo/core/topology/FolderScan")
const { detect } = await import("@kyozo/core/topology/TopologyDetector")
const fs = await import("node:fs")
const root = "/tmp/fdet/tree"
if (!fs.existsSync(root)) {
  for (let i = 0; i < 20000; i++) {
    const d = `${root}/apps/a${i % 4}/${i % 10 < 6 ? "node_modules/p" + (i % 400) : "src/f" + (i % 50) + "/p" + (i % 7)}`
    fs.mkdirSync(d, { recursive: true }); fs.writeFileSync(`${d}/f${i}.js`, "x")
  }
  fs.writeFileSync(`${root}/apps/a0/package.json`, '{"scripts":{"start":"node s.js"}}')
}
for (let k = 0; k < 3; k++) {
  let t = performance.now(); const idx = await Effect.runPromise(scanFolder(root)); const s = performance.now() - t
  t = performance.now(); await Effect.runPromise(detect(root)); const d = performance.now() - t
  console.log("scan", s.toFixed(0), "detect", d.toFixed(0), idx.files.length)
}

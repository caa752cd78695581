import { defineConfig } from "vite"

/**
 * The dashboard is served by the Kyozo server from `dist/`: hashed file names under `/assets/`
 * (cached for a year), no inline scripts or styles (the server's Content-Security-Policy forbids them).
 */
export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: "es2022",
    reportCompressedSize: false
  }
})

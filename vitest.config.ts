import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // A poll waits for a page or a server that may be slow on a loaded CI machine (default 1 s).
    expect: { poll: { timeout: 10_000 } },
    // Docker and database suites share one engine and one PGlite folder: run files one at a time.
    fileParallelism: false,
    reporters: ["default"]
  }
})

import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Docker and database suites share one engine and one PGlite folder: run files one at a time.
    fileParallelism: false,
    reporters: ["default"]
  }
})

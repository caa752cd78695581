/** The stored source of a service: what the deploy path writes is what a redeploy reads back. */
import { deploySourceOf, storedSourceOf } from "@kyozo/api/domain/StoredSource"
import { Option } from "effect"
import { describe, expect, it } from "vitest"

describe("stored source", () => {
  it("an upload and a path round-trip through their stored JSON", () => {
    for (const source of [
      { _tag: "Upload", uploadId: "upl_123" } as const,
      { _tag: "Path", path: "/srv/app" } as const
    ]) {
      const stored = JSON.parse(JSON.stringify(storedSourceOf(source, "api")))
      expect(stored.service).toBe("api")
      expect(deploySourceOf(stored)).toEqual(Option.some(source))
    }
  })

  it("rows without a usable source (older rows, the column default {}) give none", () => {
    expect(Option.isNone(deploySourceOf({}))).toBe(true)
    expect(Option.isNone(deploySourceOf({ type: "upload" }))).toBe(true)
    expect(Option.isNone(deploySourceOf({ type: "git", url: "x" }))).toBe(true)
  })
})

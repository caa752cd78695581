/**
 * BuildKit's progress (`moby.buildkit.trace`, a base64 protobuf StatusResponse) read as build log
 * lines: vertex names as the classic builder's `Step n/m : ...`, their output, their errors.
 */
import { describe, expect, it } from "@effect/vitest"
import { pullFailureImage } from "@kyozo/core/build/ImageBuilder"
import { decodeTrace, stepLine, traceReader } from "@kyozo/core/engine/BuildkitTrace"

// A minimal protobuf writer (length-delimited fields and varints), enough to write StatusResponses.
const varint = (n: number): Array<number> => {
  const out: Array<number> = []
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return out
}
const field = (no: number, value: Uint8Array | string): Array<number> => {
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value
  return [...varint(no * 8 + 2), ...varint(bytes.length), ...bytes]
}
const message = (...fields: Array<Array<number>>) => Uint8Array.from(fields.flat())
const timestamp = message([...varint(8), ...varint(1_764_600_000)])
const vertex = (digest: string, name: string, extra: { error?: string; done?: boolean } = {}) =>
  field(
    1,
    message(
      field(1, digest),
      field(3, name),
      [...varint(4 * 8), 1], // cached = true (a varint field the reader skips)
      field(5, timestamp),
      ...(extra.done ? [field(6, timestamp)] : []),
      ...(extra.error ? [field(7, extra.error)] : [])
    )
  )
const log = (digest: string, text: string) =>
  field(3, message(field(1, digest), field(2, timestamp), [...varint(3 * 8), 1], field(4, text)))
const b64 = (...fields: Array<Array<number>>) => Buffer.from(message(...fields)).toString("base64")

describe("BuildKit trace", () => {
  it("names each vertex once as a Step line, then its output and error", () => {
    const read = traceReader()
    expect(read(b64(vertex("sha256:a", "[internal] load build definition from Dockerfile.kyozo")))).toEqual([
      "[internal] load build definition from Dockerfile.kyozo"
    ])
    expect(read(b64(vertex("sha256:b", "[1/3] FROM docker.io/library/node:20-slim")))).toEqual([
      "Step 1/3 : FROM node:20-slim"
    ])
    // The same vertex again (now completed) is not named twice; its log lines follow.
    expect(
      read(
        b64(
          vertex("sha256:c", "[build 2/3] RUN npm ci"),
          vertex("sha256:b", "[1/3] FROM docker.io/library/node:20-slim", { done: true }),
          log("sha256:c", "added 3 packages\r\n\nnpm WARN about-to-fail\n")
        )
      )
    ).toEqual(["Step 2/3 : RUN npm ci", "added 3 packages", "npm WARN about-to-fail"])
    expect(
      read(b64(vertex("sha256:c", "[build 2/3] RUN npm ci", { done: true, error: "exit code: 1" })))
    ).toEqual(["exit code: 1"])
  })

  it("keeps names without a step number and reads nothing from payloads that are not protobuf", () => {
    expect(stepLine("exporting to image")).toBe("exporting to image")
    expect(stepLine("[runtime 4/6] COPY --from=build /app ./")).toBe("Step 4/6 : COPY --from=build /app ./")
    expect(stepLine("[2/2] FROM docker.io/kyozo-local/node:20")).toBe("Step 2/2 : FROM kyozo-local/node:20")
    expect(traceReader()("not base64 protobuf !!")).toEqual([])
    expect(decodeTrace(Buffer.from([0x0a, 0x05, 0x01]).toString("base64"))?.vertexes ?? []).toHaveLength(0)
  })

  it("a BuildKit pull failure names the Dockerfile's FROM image it was about", () => {
    const reason =
      'failed to solve with frontend dockerfile.v0: failed to create LLB definition: failed to do request: Head "https://registry-1.docker.io/v2/library/node/manifests/20-slim": dial tcp: lookup registry-1.docker.io: no such host'
    const tail = [
      "[internal] load build definition from Dockerfile.kyozo",
      "[internal] load metadata for docker.io/library/node:20-slim"
    ]
    expect(pullFailureImage(reason, tail, ["node:20-slim", "kyozo-local/static:latest"])).toBe("node:20-slim")
    expect(
      pullFailureImage(
        "failed to solve: pull access denied, repository does not exist or may require authorization: docker.io/acme/app:1",
        [],
        ["node:20", "acme/app:1"]
      )
    ).toBe("acme/app:1")
    expect(
      pullFailureImage(
        "failed to resolve: registry.example:5000/team/base:2: not found",
        [],
        ["registry.example:5000/team/base:2"]
      )
    ).toBe("registry.example:5000/team/base:2")
    // Every FROM has a "load metadata" line: only the error itself says which one failed.
    const both = [
      "[internal] load metadata for docker.io/library/busybox:1.36",
      "[internal] load metadata for docker.io/kyozo-local/node:20"
    ]
    expect(
      pullFailureImage(
        'failed to do request: Head "https://registry-1.docker.io/v2/library/busybox/manifests/1.36": dial tcp: no such host',
        both,
        ["kyozo-local/node:20", "busybox:1.36"]
      )
    ).toBe("busybox:1.36")
    expect(
      pullFailureImage("failed to solve: no such host", both, ["kyozo-local/node:20", "busybox:1.36"])
    ).toBe(undefined)
    // A RUN step that failed is no pull failure, even when its output says "not found".
    expect(
      pullFailureImage(
        "executor failed running [/bin/sh -c npm ci]: exit code: 1 (404 not found)",
        ["Step 2/3 : RUN npm ci"],
        ["node:20"]
      )
    ).toBe(undefined)
  })
})

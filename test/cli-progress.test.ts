/**
 * The deploy progress display (packages/cli/src/Progress.ts) as plain lines and as a live terminal
 * display, fed the progress messages a real deploy streams.
 */
import { makeRenderer, parseBuildStep } from "@kyozo/cli/Progress"
import { describe, expect, it } from "vitest"

const sink = (isTTY: boolean, columns = 80) => {
  let text = ""
  const stream = {
    isTTY,
    columns,
    write: (s: string) => ((text += s), true)
  } as unknown as NodeJS.WriteStream
  return { stream, text: () => text }
}

const step = (s: string, message: string) =>
  ({ _tag: "Step", service: "app", deploymentId: "dep_1", step: s, message }) as const

describe("deploy progress", () => {
  it("reads build steps from the classic builder and from BuildKit", () => {
    expect(parseBuildStep("Step 3/7 : RUN npm ci")).toEqual({ n: 3, of: 7, layer: "RUN npm ci" })
    expect(parseBuildStep("#7 [build 2/5] COPY . .")).toEqual({ n: 2, of: 5, layer: "COPY . ." })
    expect(parseBuildStep(" ---> 1432614a5ad6")).toBeUndefined()
  })

  it("an unchanged redeploy says nothing changed and how to force one", () => {
    const out = sink(false)
    const r = makeRenderer("plain", out.stream)
    const deployment = {
      deploymentId: "dep_2" as never,
      serviceId: "svc_1" as never,
      serviceName: "app",
      status: "unchanged",
      image: "kyozo/app:1",
      built: false,
      url: "http://127.0.0.1:5000",
      durationMs: 60
    }
    r.progress({ _tag: "Deployed", deployment })
    r.finished([deployment], false)
    r.close()
    expect(out.text().split("\n")).toEqual([
      "app: nothing changed (dep_2), the running version serves on",
      "app → http://127.0.0.1:5000  (unchanged: nothing to deploy, the running version serves on; --force replaces it)",
      ""
    ])
  })

  it("plain lines: upload, build steps, health attempts, the URL marked simulated on mock", () => {
    const out = sink(false)
    const r = makeRenderer("plain", out.stream)
    r.packed(3, 2048)
    r.uploaded(3, 2048, 12, "upl_1")
    r.progress(step("deploy.building", "Building the image"))
    r.progress({ _tag: "BuildLog", service: "app", line: "Step 1/2 : FROM node:20" })
    r.progress({ _tag: "BuildLog", service: "app", line: " ---> abc" })
    r.progress(step("deploy.started", "Container started"))
    r.progress(step("deploy.health-attempt", "attempt 1: GET / on port 8080 does not answer yet"))
    r.progress(step("deploy.health-attempt", "attempt 2: answering"))
    r.finished(
      [
        {
          deploymentId: "dep_1" as never,
          serviceId: "svc_1" as never,
          serviceName: "app",
          status: "running",
          image: "kyozo/app:1",
          built: true,
          url: "http://127.0.0.1:5000",
          durationMs: 1234
        }
      ],
      true
    )
    r.close()
    expect(out.text()).not.toContain("\x1b[")
    expect(out.text().split("\n")).toEqual([
      "uploaded 3 files (2.0 KiB) in 0.0s",
      "app: Building the image",
      "app: build step 1/2: FROM node:20",
      "  [app]  ---> abc",
      "app: Container started",
      "app: health gate attempt 1: GET / on port 8080 does not answer yet",
      "app: health gate attempt 2: answering",
      "app → http://127.0.0.1:5000  (simulated: the server runs on the mock runtime, no container runs)",
      ""
    ])
  })

  it("a terminal gets one redrawn status line per service, cut to the terminal's width", () => {
    const out = sink(true, 40)
    const r = makeRenderer("tty", out.stream)
    r.progress(step("deploy.building", "Building the image"))
    r.progress({
      _tag: "BuildLog",
      service: "app",
      line: "Step 4/9 : RUN npm ci --omit=dev --no-audit --no-fund"
    })
    r.progress(step("deploy.built", "Built kyozo/app:1"))
    r.close()
    const text = out.text()
    expect(text).toContain("app: Building the image\n")
    expect(text).toMatch(/\x1b\[1F\x1b\[J/)
    const live = text.split("\n").filter((l) => l.includes("build step 4/9"))
    expect(live.length).toBeGreaterThan(0)
    for (const l of live) expect(l.replace(/\x1b\[\d*F\x1b\[J/g, "").length).toBeLessThanOrEqual(39)
  })
})

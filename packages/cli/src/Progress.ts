/**
 * What `kyozo deploy` shows while it works: upload (files, bytes), build (step N/M, the current
 * layer, elapsed), health gate (attempts). Three renderings of the same events: a live display on
 * a terminal (permanent lines for milestones, one redrawn status line per service), plain lines
 * when stdout is not a terminal, and NDJSON with --json.
 */
import type { DeploymentSummary, DeployProgress } from "@kyozo/api/domain/Deploy"

export type Mode = "json" | "tty" | "plain"

export const modeOf = (json: boolean, stream: NodeJS.WriteStream = process.stdout): Mode =>
  json ? "json" : stream.isTTY && process.env.TERM !== "dumb" ? "tty" : "plain"

interface ServiceState {
  phase: string
  detail: string
  step?: { n: number; of: number | undefined; layer: string }
  attempts: number
  started: number
}

/** `Step 3/7 : RUN npm ci` (classic builder) or `#7 [3/7] RUN npm ci` (BuildKit). */
export const parseBuildStep = (
  line: string
): { n: number; of: number | undefined; layer: string } | undefined => {
  const classic = /^Step (\d+)\/(\d+) : (.*)$/.exec(line.trim())
  if (classic) return { n: Number(classic[1]), of: Number(classic[2]), layer: classic[3]!.trim() }
  const kit = /^#\d+ \[(?:[\w-]+ )?(\d+)\/(\d+)\] (.*)$/.exec(line.trim())
  if (kit) return { n: Number(kit[1]), of: Number(kit[2]), layer: kit[3]!.trim() }
  return undefined
}

export const formatBytes = (n: number): string =>
  n < 1024
    ? `${n} B`
    : n < 1024 * 1024
      ? `${(n / 1024).toFixed(1)} KiB`
      : `${(n / 1024 / 1024).toFixed(1)} MiB`

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

const phaseOf: Record<string, string> = {
  "deploy.building": "build",
  "deploy.reused": "build",
  "deploy.built": "build",
  "deploy.created": "create",
  "deploy.started": "health",
  "deploy.health-attempt": "health",
  "deploy.healthy": "switch",
  "deploy.switched": "switch",
  "deploy.succeeded": "done",
  "deploy.unchanged": "done",
  "deploy.failed": "failed",
  "deploy.compensated": "failed"
}

const spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

export interface Renderer {
  readonly packed: (files: number, bytes: number) => void
  readonly uploaded: (files: number, bytes: number, ms: number, uploadId: string) => void
  readonly progress: (p: DeployProgress) => void
  readonly finished: (deployed: ReadonlyArray<DeploymentSummary>, simulated: boolean) => void
  /** Stops the live line (also on failure), leaving the terminal clean. */
  readonly close: () => void
}

export const makeRenderer = (mode: Mode, out: NodeJS.WriteStream = process.stdout): Renderer => {
  const services = new Map<string, ServiceState>()
  const began = Date.now()
  let phase = "pack"
  let frame = 0
  let drawn = 0
  const write = (s: string) => out.write(s)
  const json = (v: unknown) => write(JSON.stringify(v) + "\n")

  const statusLines = (): Array<string> => {
    const sp = spinner[frame % spinner.length]!
    if (services.size === 0) return [`${sp} ${phase}  ${seconds(Date.now() - began)}`]
    return [...services.entries()]
      .filter(([, s]) => s.phase !== "done" && s.phase !== "failed")
      .map(([name, s]) => {
        const elapsed = seconds(Date.now() - s.started)
        // Elapsed before the layer text, so a narrow terminal cuts the layer, not the clock.
        const what =
          s.phase === "build" && s.step
            ? `build step ${s.step.n}${s.step.of ? `/${s.step.of}` : ""}  ${elapsed}  ${s.step.layer}`
            : s.phase === "health"
              ? `health gate  ${s.attempts === 0 ? "waiting" : `attempt ${s.attempts}`}  ${elapsed}${s.detail ? `  ${s.detail}` : ""}`
              : `${s.phase}  ${elapsed}${s.detail ? `  ${s.detail}` : ""}`
        const line = `${sp} ${name}  ${what}`
        const width = out.columns || 100
        return line.length > width - 1 ? line.slice(0, width - 2) + "…" : line
      })
  }
  const clear = () => {
    if (drawn === 0) return
    write(`\x1b[${drawn}F\x1b[J`)
    drawn = 0
  }
  const draw = () => {
    const lines = statusLines()
    clear()
    if (lines.length > 0) write(lines.join("\n") + "\n")
    drawn = lines.length
  }
  const timer = mode === "tty" ? setInterval(() => (frame++, draw()), 100) : undefined
  timer?.unref()
  /** A permanent line: above the live status on a terminal. */
  const say = (line: string) => {
    if (mode === "tty") {
      clear()
      write(line + "\n")
      draw()
    } else write(line + "\n")
  }
  const state = (name: string): ServiceState => {
    let s = services.get(name)
    if (!s) {
      s = { phase: "build", detail: "", attempts: 0, started: Date.now() }
      services.set(name, s)
    }
    return s
  }

  return {
    packed: (files, bytes) => {
      phase = `upload  ${files} files, ${formatBytes(bytes)}`
      if (mode === "json") json({ _tag: "Packed", files, bytes })
      else if (mode === "tty") draw()
    },
    uploaded: (files, bytes, ms, uploadId) => {
      phase = "detect"
      if (mode === "json") json({ _tag: "Uploaded", uploadId, files, bytes, ms })
      else say(`uploaded ${files} files (${formatBytes(bytes)}) in ${seconds(ms)}`)
    },
    progress: (p) => {
      if (mode === "json") return json(p)
      switch (p._tag) {
        case "Detected":
          // Live lines start with the first step: a service is deployed under its own name,
          // which can differ from the detected one.
          return say(`detected ${p.services.map((s) => `${s.name} (${s.kind})`).join(", ") || "nothing"}`)
        case "BuildLog": {
          const s = state(p.service)
          const step = parseBuildStep(p.line)
          if (step) {
            s.step = step
            if (mode === "plain")
              say(`${p.service}: build step ${step.n}${step.of ? `/${step.of}` : ""}: ${step.layer}`)
          } else if (mode === "plain") say(`  [${p.service}] ${p.line}`)
          return
        }
        case "Step": {
          const s = state(p.service)
          const next = phaseOf[p.step]
          if (p.step === "deploy.health-attempt") {
            s.attempts++
            s.detail = p.message.replace(/^attempt \d+: /, "")
            if (mode === "plain") say(`${p.service}: health gate ${p.message}`)
            return
          }
          if (next && next !== s.phase) {
            s.phase = next
            s.detail = ""
          }
          return say(`${p.service}: ${p.message}`)
        }
        case "Deployed": {
          const d = p.deployment
          const s = state(d.serviceName)
          s.phase = "done"
          return say(
            d.status === "unchanged"
              ? `${d.serviceName}: nothing changed (${d.deploymentId}), the running version serves on`
              : `${d.serviceName}: deployed ${d.deploymentId}${d.built ? "" : " (image reused)"} in ${seconds(d.durationMs)}`
          )
        }
      }
    },
    finished: (deployed, simulated) => {
      if (timer) clearInterval(timer)
      if (mode === "json") {
        if (simulated)
          json({ _tag: "Simulated", runtime: "mock", services: deployed.map((d) => d.serviceName) })
        return
      }
      clear()
      for (const d of deployed)
        write(
          `${d.serviceName} → ${d.url ?? "(no published port)"}${d.status === "unchanged" ? "  (unchanged: nothing to deploy, the running version serves on; --force replaces it)" : ""}${simulated ? "  (simulated: the server runs on the mock runtime, no container runs)" : ""}\n`
        )
    },
    close: () => {
      if (timer) clearInterval(timer)
      if (mode === "tty") clear()
    }
  }
}

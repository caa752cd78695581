/** How commands print: one JSON document (or NDJSON for streams) with --json, short human lines otherwise. */
import * as Options from "@effect/cli/Options"
import type { ServiceView } from "@kyozo/api/domain/Deploy"
import type { EventView, LogLineView } from "@kyozo/api/KyozoRpc"
import { Console } from "effect"

export const json = Options.boolean("json").pipe(
  Options.withDescription("machine-readable output: one JSON document, or NDJSON for streams")
)

export const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

/** One compact JSON object per line, for streams. */
export const printNdjson = (value: unknown) => Console.log(JSON.stringify(value))

const pad = (s: string, n: number) => (s.length >= n ? s + " " : s + " ".repeat(n - s.length))

/** `runtime` is the server's engine (`docker`, `mock`): a mock service is marked simulated. */
export const serviceTable = (services: ReadonlyArray<ServiceView>, runtime = "-"): string => {
  if (services.length === 0) return "No services yet. Deploy a folder with `kyozo deploy <folder>`."
  const rt = runtime === "mock" ? "mock (simulated)" : runtime
  const rows = [
    ["NAME", "STATUS", "RUNTIME", "DESIRED", "URL", "IMAGE", "ID"],
    ...services.map((s) => [s.name, s.status, rt, s.desiredState, s.url ?? "-", s.image ?? "-", s.id])
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)) + 1)
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : pad(c, widths[i]!))).join(" ")).join("\n")
}

export const serviceLine = (s: ServiceView): string =>
  `${s.name}  ${s.status}${s.url ? `  ${s.url}` : ""}  (${s.id})`

export const logLine = (l: LogLineView): string =>
  `${l.timestamp === null ? "" : new Date(l.timestamp).toISOString() + " "}${l.stream === "stderr" ? "! " : ""}${l.line}`

export const eventLine = (e: EventView): string =>
  `#${e.id} ${e.createdAt} ${e.type}${e.serviceId ? ` ${e.serviceId}` : ""}: ${e.message}`

/**
 * Procfiles (Heroku/foreman style): `type: command` per line. `web` is the service's start command;
 * other long-running types (worker, clock…) are services of their own; `release` runs once and is not.
 */

export interface ProcfileEntry {
  readonly type: string
  readonly command: string
  readonly line: number
}

export const ONE_OFF_PROCESS_TYPES: ReadonlySet<string> = new Set(["release", "postdeploy", "predeploy"])

export const parseProcfile = (text: string): Array<ProcfileEntry> => {
  const out: Array<ProcfileEntry> = []
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === "" || line.startsWith("#")) continue
    const m = /^([A-Za-z0-9_-]+)\s*:\s*(.+)$/.exec(line)
    if (m && !out.some((e) => e.type === m[1]!.toLowerCase())) {
      out.push({ type: m[1]!.toLowerCase(), command: m[2]!.trim(), line: i + 1 })
    }
  }
  return out
}

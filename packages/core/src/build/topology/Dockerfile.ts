/**
 * Reading an existing Dockerfile: the final stage's base image, EXPOSEd ports and start command.
 * Line continuations, comments, ARG/ENV defaults in `${VAR}` are understood; nothing is executed.
 */

export interface DockerInstruction {
  readonly keyword: string
  readonly args: string
  readonly line: number
}

export interface ParsedDockerfile {
  readonly instructions: ReadonlyArray<DockerInstruction>
  /** Base image of the last stage. */
  readonly from: string | null
  readonly exposed: ReadonlyArray<{ readonly port: number; readonly line: number }>
  readonly cmd: { readonly command: string; readonly line: number } | null
}

export const parseInstructions = (text: string): Array<DockerInstruction> => {
  const out: Array<DockerInstruction> = []
  const lines = text.split(/\r?\n/)
  let buf = ""
  let start = 0
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!
    const trimmed = raw.trim()
    if (buf === "" && (trimmed === "" || trimmed.startsWith("#"))) continue
    if (buf !== "" && trimmed.startsWith("#")) continue
    if (buf === "") start = i + 1
    if (trimmed.endsWith("\\")) {
      buf += trimmed.slice(0, -1) + " "
      continue
    }
    buf += trimmed
    const m = /^([A-Za-z]+)\s*(.*)$/s.exec(buf)
    if (m) out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start })
    buf = ""
  }
  if (buf !== "") {
    const m = /^([A-Za-z]+)\s*(.*)$/s.exec(buf)
    if (m) out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start })
  }
  return out
}

const substitute = (s: string, vars: ReadonlyMap<string, string>): string =>
  s.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-=]([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_, a, def, b) => {
      const name = (a ?? b) as string
      return vars.get(name) ?? (def as string | undefined) ?? ""
    }
  )

/** Exec form `["a","b"]` → "a b"; shell form stays as written. */
export const commandOf = (args: string): string => {
  const t = args.trim()
  if (t.startsWith("[")) {
    try {
      const parsed: unknown = JSON.parse(t)
      if (Array.isArray(parsed)) return parsed.map((x) => String(x)).join(" ")
    } catch {
      // Not valid JSON: Docker itself runs it as shell form.
    }
  }
  return t
}

const parseKeyValues = (args: string, into: Map<string, string>): void => {
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g
  let m: RegExpExecArray | null
  let any = false
  while ((m = re.exec(args))) {
    any = true
    into.set(m[1]!, m[2]!.replace(/^["']|["']$/g, ""))
  }
  if (!any) {
    // Legacy `ENV KEY value` form.
    const sp = /^([A-Za-z_][A-Za-z0-9_]*)\s+(.*)$/.exec(args)
    if (sp) into.set(sp[1]!, sp[2]!.trim())
  }
}

export const parseDockerfile = (text: string): ParsedDockerfile => {
  const instructions = parseInstructions(text)
  const vars = new Map<string, string>()
  let from: string | null = null
  let exposed: Array<{ port: number; line: number }> = []
  let entrypoint: string | null = null
  let cmd: { command: string; line: number } | null = null
  let cmdLine = 0
  for (const ins of instructions) {
    switch (ins.keyword) {
      case "ARG":
      case "ENV":
        parseKeyValues(ins.args, vars)
        break
      case "FROM": {
        const parts = ins.args.split(/\s+/).filter((p) => !p.startsWith("--"))
        from = parts[0] ? substitute(parts[0], vars) : null
        // Each stage starts afresh: only the final stage's EXPOSE and CMD matter.
        exposed = []
        entrypoint = null
        cmd = null
        break
      }
      case "EXPOSE":
        for (const tok of substitute(ins.args, vars).split(/\s+/)) {
          const port = Number(tok.split("/")[0]!.split("-")[0])
          if (Number.isInteger(port) && port > 0 && port <= 65535) exposed.push({ port, line: ins.line })
        }
        break
      case "ENTRYPOINT":
        entrypoint = commandOf(ins.args)
        cmdLine = ins.line
        break
      case "CMD":
        cmd = { command: commandOf(ins.args), line: ins.line }
        break
    }
  }
  const full =
    entrypoint !== null
      ? { command: cmd ? `${entrypoint} ${cmd.command}` : entrypoint, line: cmd?.line ?? cmdLine }
      : cmd
  return { instructions, from, exposed, cmd: full }
}

export const DOCKERFILE_NAMES: ReadonlyArray<string> = ["Dockerfile", "Containerfile", "dockerfile"]

/**
 * Docker Compose files: services by key, build contexts, images, ports (short and long syntax),
 * `depends_on` as a list or a map, commands and environment.
 *
 * Interpolation reads only the folder itself (its `.env` and the file's own `${X:-d}` defaults),
 * never the server's environment: a tenant's compose file must not read the server's secrets.
 * An unset variable becomes empty and is reported, as Compose does.
 */
import * as YAML from "yaml"

export const COMPOSE_FILES: ReadonlyArray<string> = [
  "compose.yaml",
  "compose.yml",
  "docker-compose.yml",
  "docker-compose.yaml"
]

export interface ComposeService {
  readonly key: string
  readonly line: number | undefined
  readonly build?: { readonly context: string; readonly dockerfile?: string }
  readonly image?: string
  /** Container-side ports, from `ports` then `expose`. */
  readonly ports: ReadonlyArray<number>
  readonly dependsOn: ReadonlyArray<string>
  readonly command?: string
  readonly environment: Readonly<Record<string, string>>
  /** Named volumes it mounts (`data:/var/lib/x`, or the long form with `type: volume`). */
  readonly volumes: ReadonlyArray<ComposeVolume>
  /** Mounts left out, with why (host paths: a tenant's folder must not reach the host's files). */
  readonly skippedMounts: ReadonlyArray<string>
}

export interface ComposeVolume {
  readonly name: string
  readonly target: string
}

export interface ParsedCompose {
  readonly services: ReadonlyArray<ComposeService>
  readonly error?: string
  /** Variables the file uses that neither the folder's `.env` nor a default sets (they became ""). */
  readonly unset: ReadonlyArray<string>
}

/** Variables of a folder's `.env` file: `KEY=value`, `export KEY=value`, quotes, `#` comments. */
export const parseDotEnv = (text: string): Record<string, string> => {
  const vars: Record<string, string> = {}
  for (const raw of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(raw)
    if (!m) continue
    let v = m[2]!
    const q = v[0]
    if ((q === '"' || q === "'") && v.indexOf(q, 1) > 0) v = v.slice(1, v.indexOf(q, 1))
    else v = v.replace(/\s+#.*$/, "").trim()
    vars[m[1]!] = v
  }
  return vars
}

/**
 * Compose's forms: `$$` (a literal `$`), `$VAR`, `${VAR}`, `${VAR:-d}` / `${VAR-d}` (default when
 * unset-or-empty / unset), `${VAR:?e}` / `${VAR?e}` (required: empty here, reported as unset),
 * `${VAR:+r}` / `${VAR+r}` (replacement when set).
 */
const makeInterpolate =
  (vars: Readonly<Record<string, string>>, unset: Set<string>) =>
  (s: string): string =>
    s.replace(
      /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (
        whole,
        braced: string | undefined,
        colon: string,
        op: string | undefined,
        arg: string,
        bare: string | undefined
      ) => {
        if (whole === "$$") return "$"
        const name = (braced ?? bare)!
        const has = Object.prototype.hasOwnProperty.call(vars, name)
        const value = has ? vars[name]! : undefined
        const present = colon === ":" ? value !== undefined && value !== "" : value !== undefined
        if (op === "-") return present ? value! : arg
        if (op === "+") return present ? arg : ""
        if (!present && value === undefined) unset.add(name)
        else if (op === "?" && !present) unset.add(name)
        return value ?? ""
      }
    )

const isRecord = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x)

/** "127.0.0.1:8080:80/tcp" → 80; "3000-3005" → 3000; long form { target } → target. */
export const containerPort = (
  spec: unknown,
  interpolate: (s: string) => string = makeInterpolate({}, new Set())
): number | undefined => {
  if (typeof spec === "number") return Number.isInteger(spec) && spec > 0 && spec <= 65535 ? spec : undefined
  if (isRecord(spec))
    return containerPort(
      typeof spec.target === "string" ? Number(interpolate(spec.target)) : spec.target,
      interpolate
    )
  if (typeof spec !== "string") return undefined
  const s = interpolate(spec).split("/")[0]!
  const last = s.split(":").pop() ?? ""
  const n = Number(last.split("-")[0])
  return Number.isInteger(n) && n > 0 && n <= 65535 ? n : undefined
}

const lineOfKey = (text: string, key: string): number | undefined => {
  const lines = text.split(/\r?\n/)
  let inServices = false
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!
    if (/^services\s*:/.test(l)) inServices = true
    else if (/^\S/.test(l)) inServices = false
    else if (
      inServices &&
      new RegExp(`^\\s+["']?${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}["']?\\s*:`).test(l)
    )
      return i + 1
  }
  return undefined
}

/** `dotEnv`: the variables of the folder's own `.env` (the only source besides the file's defaults). */
export const parseCompose = (text: string, dotEnv: Readonly<Record<string, string>> = {}): ParsedCompose => {
  const unset = new Set<string>()
  const interpolate = makeInterpolate(dotEnv, unset)
  let doc: unknown
  try {
    doc = YAML.parse(text, { maxAliasCount: 100 })
  } catch (e) {
    return {
      services: [],
      error: `invalid YAML: ${String((e as Error).message ?? e).split("\n")[0]}`,
      unset: []
    }
  }
  if (!isRecord(doc) || !isRecord(doc.services))
    return { services: [], error: "no services section", unset: [] }
  const services: Array<ComposeService> = []
  for (const [key, raw] of Object.entries(doc.services)) {
    const svc = isRecord(raw) ? raw : {}
    let build: ComposeService["build"]
    if (typeof svc.build === "string") build = { context: interpolate(svc.build) }
    else if (isRecord(svc.build)) {
      build = {
        context: typeof svc.build.context === "string" ? interpolate(svc.build.context) : ".",
        ...(typeof svc.build.dockerfile === "string" ? { dockerfile: interpolate(svc.build.dockerfile) } : {})
      }
    }
    const ports: Array<number> = []
    for (const list of [svc.ports, svc.expose]) {
      if (!Array.isArray(list)) continue
      for (const p of list) {
        const n = containerPort(p, interpolate)
        if (n !== undefined && !ports.includes(n)) ports.push(n)
      }
    }
    const dependsOn = Array.isArray(svc.depends_on)
      ? svc.depends_on.filter((x): x is string => typeof x === "string")
      : isRecord(svc.depends_on)
        ? Object.keys(svc.depends_on)
        : []
    const command = Array.isArray(svc.command)
      ? svc.command.map(String).join(" ")
      : typeof svc.command === "string"
        ? svc.command
        : undefined
    const environment: Record<string, string> = {}
    if (Array.isArray(svc.environment)) {
      for (const e of svc.environment) {
        if (typeof e !== "string") continue
        const i = e.indexOf("=")
        environment[i < 0 ? e : e.slice(0, i)] = i < 0 ? "" : interpolate(e.slice(i + 1))
      }
    } else if (isRecord(svc.environment)) {
      for (const [k, v] of Object.entries(svc.environment))
        environment[k] = v === null ? "" : interpolate(String(v))
    }
    const { volumes, skipped } = serviceVolumes(svc.volumes, interpolate)
    services.push({
      key,
      line: lineOfKey(text, key),
      ...(build ? { build } : {}),
      ...(typeof svc.image === "string" ? { image: interpolate(svc.image) } : {}),
      ports,
      dependsOn,
      ...(command ? { command } : {}),
      environment,
      volumes,
      skippedMounts: skipped
    })
  }
  return { services, unset: [...unset] }
}

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/

/**
 * A service's `volumes`: named volumes kept; bind mounts (`./x:/y`, `/host:/y`, `type: bind`) and
 * anonymous ones are reported as skipped. Kyozo never mounts a host path for a tenant.
 */
const serviceVolumes = (
  list: unknown,
  interpolate: (s: string) => string
): { volumes: Array<ComposeVolume>; skipped: Array<string> } => {
  const volumes: Array<ComposeVolume> = []
  const skipped: Array<string> = []
  if (!Array.isArray(list)) return { volumes, skipped }
  const add = (source: string, target: string, raw: string) => {
    if (!target.startsWith("/")) skipped.push(`${raw}: the target is not an absolute path`)
    else if (source === "") skipped.push(`${raw}: an anonymous volume (give it a name to keep its data)`)
    else if (!VOLUME_NAME.test(source)) skipped.push(`${raw}: a host path (bind mounts are not supported)`)
    else if (!volumes.some((v) => v.target === target)) volumes.push({ name: source, target })
  }
  for (const entry of list) {
    if (typeof entry === "string") {
      const parts = interpolate(entry).split(":")
      if (parts.length === 1) add("", parts[0]!, entry)
      else add(parts[0]!, parts[1]!, entry)
    } else if (isRecord(entry)) {
      const type = typeof entry.type === "string" ? entry.type : "volume"
      const source = typeof entry.source === "string" ? interpolate(entry.source) : ""
      const target = typeof entry.target === "string" ? interpolate(entry.target) : ""
      const raw = `${type} ${source || "(anonymous)"} → ${target}`
      if (type === "volume") add(source, target, raw)
      else skipped.push(`${raw}: mounts of type ${type} are not supported`)
    }
  }
  return { volumes, skipped }
}

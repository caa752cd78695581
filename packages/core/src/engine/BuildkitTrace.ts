/**
 * BuildKit's progress inside a `/build?version=2` answer: `{"id":"moby.buildkit.trace","aux":"<base64>"}`
 * lines whose payload is a protobuf `moby.buildkit.v1.StatusResponse` (vertexes = 1, statuses = 2,
 * logs = 3). Only what a build log needs is read: each vertex's name and error, and log output.
 * The protobuf wire format is decoded by hand (a few varints), so no protobuf runtime is loaded.
 *
 * Vertex names like `[runtime 2/6] RUN npm ci` are rewritten as the classic builder's
 * `Step 2/6 : RUN npm ci`, so the CLI's progress and the base-image fallback read both builders alike.
 */

interface Vertex {
  readonly digest: string
  readonly name: string
  readonly error: string
}

interface VertexLog {
  readonly vertex: string
  readonly msg: Uint8Array
}

export interface TraceStatus {
  readonly vertexes: ReadonlyArray<Vertex>
  readonly logs: ReadonlyArray<VertexLog>
}

type Field = { readonly no: number; readonly bytes?: Uint8Array; readonly varint?: number }

/** The top-level fields of one protobuf message (unknown wire types end the read). */
const fieldsOf = (buf: Uint8Array): Array<Field> => {
  const out: Array<Field> = []
  let i = 0
  const varint = (): number => {
    let result = 0
    let shift = 0
    for (;;) {
      if (i >= buf.length) throw new Error("truncated varint")
      const b = buf[i++]!
      result += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return result
      shift += 7
    }
  }
  while (i < buf.length) {
    const key = varint()
    const no = Math.floor(key / 8)
    switch (key & 7) {
      case 0:
        out.push({ no, varint: varint() })
        break
      case 1:
        i += 8
        break
      case 2: {
        const len = varint()
        if (i + len > buf.length) throw new Error("truncated field")
        out.push({ no, bytes: buf.subarray(i, i + len) })
        i += len
        break
      }
      case 5:
        i += 4
        break
      default:
        return out
    }
  }
  return out
}

const text = new TextDecoder()
const str = (f: Field | undefined): string => (f?.bytes ? text.decode(f.bytes) : "")

/** One trace payload (base64); undefined when it is not a StatusResponse this reader understands. */
export const decodeTrace = (base64: string): TraceStatus | undefined => {
  try {
    const top = fieldsOf(Buffer.from(base64, "base64"))
    const vertexes: Array<Vertex> = []
    const logs: Array<VertexLog> = []
    for (const f of top) {
      if (!f.bytes) continue
      if (f.no === 1) {
        const v = fieldsOf(f.bytes)
        vertexes.push({
          digest: str(v.find((x) => x.no === 1)),
          name: str(v.find((x) => x.no === 3)),
          error: str(v.find((x) => x.no === 7))
        })
      } else if (f.no === 3) {
        const l = fieldsOf(f.bytes)
        logs.push({
          vertex: str(l.find((x) => x.no === 1)),
          msg: l.find((x) => x.no === 4)?.bytes ?? new Uint8Array()
        })
      }
    }
    return { vertexes, logs }
  } catch {
    return undefined
  }
}

/**
 * `[stage 2/6] RUN x` or `[2/6] RUN x` → `Step 2/6 : RUN x`; other names are kept. BuildKit names a
 * FROM image in full (`docker.io/library/node:20`): it is shown as a Dockerfile names it (`node:20`).
 */
export const stepLine = (name: string): string => {
  const m = /^\[(?:[^\]\s]+ )?(\d+)\/(\d+)\] (.*)$/s.exec(name)
  if (!m) return name
  const instruction = m[3]!.replace(/^FROM docker\.io\/(?:library\/)?/, "FROM ")
  return `Step ${m[1]}/${m[2]} : ${instruction}`
}

/**
 * Turns trace payloads into log lines, in order: each vertex's name once (when it first appears),
 * its output, and its error. Stateful: one per build.
 */
export const traceReader = () => {
  const named = new Set<string>()
  const failed = new Set<string>()
  return (base64: string): Array<string> => {
    const status = decodeTrace(base64)
    if (status === undefined) return []
    const lines: Array<string> = []
    for (const v of status.vertexes) {
      if (v.name !== "" && !named.has(v.digest)) {
        named.add(v.digest)
        lines.push(stepLine(v.name))
      }
      if (v.error !== "" && !failed.has(v.digest)) {
        failed.add(v.digest)
        lines.push(v.error)
      }
    }
    for (const l of status.logs) {
      for (const line of text.decode(l.msg).split(/\r?\n/)) {
        const trimmed = line.trimEnd()
        if (trimmed.length > 0) lines.push(trimmed)
      }
    }
    return lines
  }
}

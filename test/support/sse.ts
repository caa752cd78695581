/** A minimal SSE client over fetch for tests: frames as they arrive, and a way to wait for some. */
export interface SseFrame {
  readonly event?: string
  readonly id?: string
  readonly data?: string
  readonly comment?: string
}

export interface SseConnection {
  readonly status: number
  readonly contentType: string | null
  readonly frames: Array<SseFrame>
  readonly raw: () => string
  /** Frames carrying an id, parsed as numbers. */
  readonly ids: () => Array<number>
  readonly waitUntil: (what: string, predicate: () => boolean, timeoutMs?: number) => Promise<void>
  readonly close: () => void
}

const parseFrame = (raw: string): SseFrame => {
  const frame: { event?: string; id?: string; data?: string; comment?: string } = {}
  for (const line of raw.split("\n")) {
    if (line.startsWith(":")) frame.comment = line.slice(1).trim()
    else {
      const i = line.indexOf(":")
      const field = i < 0 ? line : line.slice(0, i)
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "")
      if (field === "data") frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`
      else if (field === "event" || field === "id") frame[field] = value
    }
  }
  return frame
}

export const openSse = async (url: string, headers: Record<string, string> = {}): Promise<SseConnection> => {
  const controller = new AbortController()
  const res = await fetch(url, { headers, signal: controller.signal })
  const frames: Array<SseFrame> = []
  let text = ""
  let buffer = ""
  if (res.body && res.status === 200) {
    const reader = res.body.getReader()
    const decoder = new TextDecoder()
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          const chunk = decoder.decode(value, { stream: true })
          text += chunk
          buffer += chunk
          let i: number
          while ((i = buffer.indexOf("\n\n")) >= 0) {
            frames.push(parseFrame(buffer.slice(0, i)))
            buffer = buffer.slice(i + 2)
          }
        }
      } catch {
        /* aborted */
      }
    })()
  } else {
    text = await res.text()
  }
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    frames,
    raw: () => text,
    ids: () => frames.filter((f) => f.id !== undefined).map((f) => Number(f.id)),
    waitUntil: async (what, predicate, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${text}`)
        await new Promise((r) => setTimeout(r, 25))
      }
    },
    close: () => controller.abort()
  }
}

/**
 * The team's live events from `GET /v1/events` (Server-Sent Events), read with fetch so that every
 * event name arrives (EventSource only dispatches names it was told) and so the cursor is ours: after
 * a drop the stream is reopened with `Last-Event-ID` set to the last id seen, and ids at or below it
 * are ignored, so no event is lost or shown twice. A fresh start asks for `?after=latest` (only
 * events from now on: a team's whole history is not replayed on each load). Breaker changes
 * arrive as `breaker` events.
 */
import type { KyozoEvent } from "./api.js"

export interface BreakerChange {
  readonly from: string
  readonly to: "closed" | "open" | "half-open"
  readonly at: number
  readonly reason: string
}

type Listener = (event: KyozoEvent) => void
type BreakerListener = (change: BreakerChange) => void
type StateListener = (connected: boolean) => void

const listeners = new Set<Listener>()
const breakerListeners = new Set<BreakerListener>()
const stateListeners = new Set<StateListener>()
let lastId = 0
let controller: AbortController | undefined
let connected = false

export const onEvent = (f: Listener) => (listeners.add(f), () => void listeners.delete(f))
export const onBreaker = (f: BreakerListener) => (
  breakerListeners.add(f),
  () => void breakerListeners.delete(f)
)
export const onConnection = (f: StateListener) => (stateListeners.add(f), () => void stateListeners.delete(f))
export const isConnected = () => connected

const setConnected = (value: boolean) => {
  if (connected === value) return
  connected = value
  for (const f of stateListeners) f(value)
}

const dispatch = (name: string, id: string | undefined, data: string) => {
  if (name === "breaker") {
    try {
      const change = JSON.parse(data) as BreakerChange
      for (const f of breakerListeners) f(change)
    } catch {
      /* malformed: ignore */
    }
    return
  }
  const n = Number(id)
  if (!Number.isFinite(n) || n <= lastId) return
  lastId = n
  try {
    const event = JSON.parse(data) as KyozoEvent
    for (const f of listeners) f(event)
  } catch {
    /* malformed: ignore */
  }
}

const read = async (signal: AbortSignal) => {
  // The first connection starts at the newest event (history is fetched on demand, per service);
  // a reconnect resumes after the last id seen.
  const res = await fetch(lastId > 0 ? "/v1/events" : "/v1/events?after=latest", {
    credentials: "same-origin",
    headers: { accept: "text/event-stream", ...(lastId > 0 ? { "last-event-id": String(lastId) } : {}) },
    signal
  })
  if (!res.ok || res.body === null) throw new Error(`events: ${res.status}`)
  setConnected(true)
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ""
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    let end: number
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "")
      let name = "message"
      let id: string | undefined
      const data: Array<string> = []
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(":")) continue
        const colon = line.indexOf(":")
        const field = colon < 0 ? line : line.slice(0, colon)
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "")
        if (field === "event") name = val
        else if (field === "id") id = val
        else if (field === "data") data.push(val)
      }
      if (data.length > 0) dispatch(name, id, data.join("\n"))
      // A bare id (the server's starting cursor) moves the cursor and dispatches nothing.
      else if (id !== undefined && /^\d+$/.test(id)) lastId = Math.max(lastId, Number(id))
    }
  }
}

/** Starts the stream (idempotent); it reconnects with backoff until `stop`. */
export const start = (fromId = 0) => {
  if (controller) return
  lastId = Math.max(lastId, fromId)
  const own = new AbortController()
  controller = own
  void (async () => {
    let delay = 500
    while (!own.signal.aborted) {
      try {
        await read(own.signal)
        delay = 500
      } catch {
        /* dropped or refused: retry below */
      }
      setConnected(false)
      if (own.signal.aborted) return
      await new Promise((r) => setTimeout(r, delay))
      delay = Math.min(delay * 2, 10_000)
    }
  })()
}

export const stop = () => {
  controller?.abort()
  controller = undefined
  lastId = 0
  setConnected(false)
}

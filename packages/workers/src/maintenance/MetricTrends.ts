/**
 * Trend windows for a service's metrics: an hour from 1-minute samples, a day or a week from the
 * hourly roll-ups. Pure bucketing, so a chart has one point per step even when samples are missing.
 */
export type TrendWindow = "hour" | "day" | "week"

export interface TrendSpec {
  readonly resolution: "1m" | "1h"
  readonly stepMs: number
  readonly spanMs: number
}

const MINUTE = 60_000
const HOUR = 60 * MINUTE

export const trendSpec = (window: TrendWindow): TrendSpec =>
  window === "hour"
    ? { resolution: "1m", stepMs: MINUTE, spanMs: HOUR }
    : window === "day"
      ? { resolution: "1h", stepMs: HOUR, spanMs: 24 * HOUR }
      : { resolution: "1h", stepMs: HOUR, spanMs: 7 * 24 * HOUR }

export interface TrendPoint {
  /** Bucket start, epoch ms. */
  readonly at: number
  /** Mean of the samples in the bucket, null when there were none. */
  readonly cpuPercent: number | null
  readonly memoryBytes: number | null
}

/** One point per step over the window ending at `now`, oldest first. */
export const bucket = (
  window: TrendWindow,
  samples: ReadonlyArray<{ readonly at: number; readonly cpuPercent: number; readonly memoryBytes: number }>,
  now: number
): ReadonlyArray<TrendPoint> => {
  const { stepMs, spanMs } = trendSpec(window)
  const end = Math.floor(now / stepMs) * stepMs + stepMs
  const start = end - spanMs
  const sums = new Map<number, { cpu: number; mem: number; n: number }>()
  for (const s of samples) {
    if (s.at < start || s.at >= end) continue
    const key = Math.floor(s.at / stepMs) * stepMs
    const acc = sums.get(key) ?? { cpu: 0, mem: 0, n: 0 }
    sums.set(key, { cpu: acc.cpu + s.cpuPercent, mem: acc.mem + s.memoryBytes, n: acc.n + 1 })
  }
  const points: Array<TrendPoint> = []
  for (let at = start; at < end; at += stepMs) {
    const acc = sums.get(at)
    points.push({
      at,
      cpuPercent: acc ? acc.cpu / acc.n : null,
      memoryBytes: acc ? acc.mem / acc.n : null
    })
  }
  return points
}

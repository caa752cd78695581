/**
 * Alert rules over metric samples, as pure functions: a rule fires when every sample of the last
 * `duration` breaches the threshold (and the samples cover the whole duration), and resolves when
 * the newest sample no longer breaches. Transitions become `alert.fired` / `alert.resolved` events.
 */
export type AlertMetric = "cpu_percent" | "memory_percent" | "memory_bytes" | "pids"
export type Comparator = ">" | ">=" | "<" | "<="

export interface AlertRule {
  readonly id: string
  readonly metric: AlertMetric
  readonly comparator: Comparator
  readonly threshold: number
  readonly durationSeconds: number
}

export interface SamplePoint {
  /** Epoch milliseconds. */
  readonly at: number
  readonly cpuPercent: number
  readonly memoryBytes: number
  readonly memoryLimitBytes: number
  readonly pids: number
}

export const metricValue = (metric: AlertMetric, s: SamplePoint): number => {
  switch (metric) {
    case "cpu_percent":
      return s.cpuPercent
    case "memory_percent":
      return s.memoryLimitBytes > 0 ? (s.memoryBytes / s.memoryLimitBytes) * 100 : 0
    case "memory_bytes":
      return s.memoryBytes
    case "pids":
      return s.pids
  }
}

export const breaches = (comparator: Comparator, value: number, threshold: number): boolean =>
  comparator === ">"
    ? value > threshold
    : comparator === ">="
      ? value >= threshold
      : comparator === "<"
        ? value < threshold
        : value <= threshold

export type AlertTransition =
  | { readonly _tag: "Fired"; readonly value: number }
  | { readonly _tag: "Resolved"; readonly value: number }
  | { readonly _tag: "Unchanged" }

/**
 * The transition for one rule and one service. `firing` is whether the alert is firing now;
 * samples in any order. Sampling gaps larger than `maxGapMs` break the "for duration" streak.
 */
export const evaluate = (
  rule: AlertRule,
  samples: ReadonlyArray<SamplePoint>,
  now: number,
  firing: boolean,
  maxGapMs = 150_000
): AlertTransition => {
  const sorted = [...samples].filter((s) => s.at <= now).sort((a, b) => b.at - a.at)
  const newest = sorted[0]
  if (!newest) return { _tag: "Unchanged" }
  const newestValue = metricValue(rule.metric, newest)
  if (firing) {
    return breaches(rule.comparator, newestValue, rule.threshold)
      ? { _tag: "Unchanged" }
      : { _tag: "Resolved", value: newestValue }
  }
  // Walk back from the newest sample while it breaches; the streak must span the duration.
  let oldestBreach: number | null = null
  let previousAt = now
  for (const s of sorted) {
    if (previousAt - s.at > maxGapMs) break
    if (!breaches(rule.comparator, metricValue(rule.metric, s), rule.threshold)) break
    oldestBreach = s.at
    previousAt = s.at
    if (now - s.at >= rule.durationSeconds * 1000) break
  }
  return oldestBreach !== null && now - oldestBreach >= rule.durationSeconds * 1000
    ? { _tag: "Fired", value: newestValue }
    : { _tag: "Unchanged" }
}

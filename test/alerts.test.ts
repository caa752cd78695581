/**
 * Alert evaluation, trend windows, and resource recommendations: pure logic.
 */
import { describe, expect, it } from "vitest"
import {
  type AlertRule,
  evaluate,
  metricValue,
  type SamplePoint
} from "../packages/workers/src/AlertEvaluator.js"
import { bucket, trendSpec } from "../packages/workers/src/MetricTrends.js"
import { percentile, recommend } from "../packages/workers/src/Recommendations.js"

const MiB = 1024 ** 2
const memRule: AlertRule = {
  id: "r1",
  metric: "memory_percent",
  comparator: ">",
  threshold: 90,
  durationSeconds: 300
}
const at = (minutesAgo: number, memPercent: number, now: number): SamplePoint => ({
  at: now - minutesAgo * 60_000,
  cpuPercent: 10,
  memoryBytes: (memPercent / 100) * 512 * MiB,
  memoryLimitBytes: 512 * MiB,
  pids: 3
})

describe("AlertEvaluator", () => {
  const now = 10_000_000
  it("memory > 90 % for 5 min fires only once the breach spans 5 minutes", () => {
    const four = [0, 1, 2, 3, 4].map((m) => at(m, 95, now))
    expect(evaluate(memRule, four, now, false)._tag).toBe("Unchanged")
    const five = [0, 1, 2, 3, 4, 5].map((m) => at(m, 95, now))
    expect(evaluate(memRule, five, now, false)).toMatchObject({ _tag: "Fired" })
  })

  it("one sample under the threshold inside the window breaks the streak; a gap does too", () => {
    const dip = [0, 1, 2, 3, 4, 5].map((m) => at(m, m === 2 ? 50 : 95, now))
    expect(evaluate(memRule, dip, now, false)._tag).toBe("Unchanged")
    const gap = [0, 1, 5, 6].map((m) => at(m, 95, now))
    expect(evaluate(memRule, gap, now, false)._tag).toBe("Unchanged")
  })

  it("a firing alert resolves when the newest sample stops breaching, and stays firing otherwise", () => {
    expect(evaluate(memRule, [at(0, 95, now)], now, true)._tag).toBe("Unchanged")
    expect(evaluate(memRule, [at(1, 95, now), at(0, 40, now)], now, true)).toMatchObject({
      _tag: "Resolved",
      value: 40
    })
    expect(evaluate(memRule, [], now, true)._tag).toBe("Unchanged")
  })

  it("comparators and metrics", () => {
    const s = at(0, 50, now)
    expect(metricValue("memory_percent", s)).toBeCloseTo(50)
    expect(metricValue("pids", s)).toBe(3)
    const low: AlertRule = {
      id: "r2",
      metric: "cpu_percent",
      comparator: "<=",
      threshold: 10,
      durationSeconds: 0
    }
    expect(evaluate(low, [s], now, false)).toMatchObject({ _tag: "Fired", value: 10 })
  })
})

describe("MetricTrends", () => {
  it("hour: 60 one-minute buckets; day/week: hourly buckets from 1h roll-ups", () => {
    expect(trendSpec("hour")).toMatchObject({ resolution: "1m", stepMs: 60_000 })
    expect(trendSpec("week").resolution).toBe("1h")
    const now = 1_800_000_000_000
    const points = bucket(
      "hour",
      [
        { at: now - 30_000, cpuPercent: 10, memoryBytes: 100 },
        { at: now - 10_000, cpuPercent: 30, memoryBytes: 300 },
        { at: now - 2 * 3_600_000, cpuPercent: 99, memoryBytes: 999 }
      ],
      now
    )
    expect(points).toHaveLength(60)
    expect(points.filter((p) => p.cpuPercent !== null)).toHaveLength(1)
    const filled = points.find((p) => p.cpuPercent !== null)!
    expect(filled.cpuPercent).toBe(20)
    expect(filled.memoryBytes).toBe(200)
    expect(bucket("day", [], now)).toHaveLength(24)
    expect(bucket("week", [], now)).toHaveLength(168)
  })
})

describe("Recommendations", () => {
  it("p95 (nearest rank) and limits with headroom, monthly cost from prices", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1)
    expect(percentile(values, 95)).toBe(95)
    expect(percentile([], 95)).toBe(0)
    const samples = values.map((v) => ({ cpuPercent: v / 2, memoryBytes: v * MiB }))
    const r = recommend(samples, { vcpuHour: 0.04, gbHour: 0.005 }, 0.3)
    expect(r.p95CpuPercent).toBe(47.5)
    // 47.5 % of a CPU = 475 m; +30 % = 617.5 → 650 m. 95 MiB +30 % = 123.5 → 128 MiB.
    expect(r.cpuMillis).toBe(650)
    expect(r.memoryMb).toBe(128)
    expect(r.monthlyCost).toBeCloseTo((0.65 * 0.04 + 0.125 * 0.005) * 730, 2)
    // Floors for an idle service.
    const idle = recommend([{ cpuPercent: 0, memoryBytes: 0 }], { vcpuHour: 1, gbHour: 1 })
    expect(idle).toMatchObject({ cpuMillis: 50, memoryMb: 32 })
  })
})

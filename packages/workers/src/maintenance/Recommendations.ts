/**
 * Resource recommendations: from the p95 of CPU and memory over a window, limits with headroom,
 * and a monthly cost estimate from prices per vCPU-hour and GB-hour (KYOZO_PRICE_VCPU_HOUR,
 * KYOZO_PRICE_GB_HOUR). Pure, so the arithmetic is tested without a database.
 */

export interface Prices {
  readonly vcpuHour: number
  readonly gbHour: number
}

/** Nearest-rank percentile (p in 0..100); 0 for no values. */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

export interface Recommendation {
  readonly p95CpuPercent: number
  readonly p95MemoryBytes: number
  /** Suggested CPU limit in millicores (of one CPU = 1000). */
  readonly cpuMillis: number
  readonly memoryMb: number
  readonly monthlyCost: number
}

const HOURS_PER_MONTH = 730

/** Limits at p95 × (1 + headroom), rounded up to 50 millicores and 16 MiB, with floors. */
export const recommend = (
  samples: ReadonlyArray<{ readonly cpuPercent: number; readonly memoryBytes: number }>,
  prices: Prices,
  headroom = 0.3
): Recommendation => {
  const p95Cpu = percentile(
    samples.map((s) => s.cpuPercent),
    95
  )
  const p95Mem = percentile(
    samples.map((s) => s.memoryBytes),
    95
  )
  const cpuMillis = Math.max(50, Math.ceil((p95Cpu * 10 * (1 + headroom)) / 50) * 50)
  const memoryMb = Math.max(32, Math.ceil(((p95Mem / 1024 ** 2) * (1 + headroom)) / 16) * 16)
  const monthlyCost =
    Math.round(
      ((cpuMillis / 1000) * prices.vcpuHour + (memoryMb / 1024) * prices.gbHour) * HOURS_PER_MONTH * 100
    ) / 100
  return { p95CpuPercent: p95Cpu, p95MemoryBytes: p95Mem, cpuMillis, memoryMb, monthlyCost }
}

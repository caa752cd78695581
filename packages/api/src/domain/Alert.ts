/** What an alert rule compares: the metric and the comparator (wire and storage values). */
import { Schema } from "effect"

export const AlertMetric = Schema.Literal("cpu_percent", "memory_percent", "memory_bytes", "pids")
export type AlertMetric = typeof AlertMetric.Type
export const AlertComparator = Schema.Literal(">", ">=", "<", "<=")
export type AlertComparator = typeof AlertComparator.Type

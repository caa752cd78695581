/**
 * Requests by route and status for /metrics, counted on the hot path: one Map increment per
 * request, keyed by the route pattern (never the raw path, so ids do not explode the label set).
 */
import type * as PrometheusText from "@kyozo/core/PrometheusText"

const counts = new Map<string, number>()

export const count = (method: string, route: string, status: number): void => {
  const key = `${method} ${route} ${status}`
  counts.set(key, (counts.get(key) ?? 0) + 1)
}

/** The Prometheus family of the counts so far. */
export const family = (): PrometheusText.Family => ({
  name: "kyozo_http_requests_total",
  type: "counter",
  help: "HTTP requests answered, by method, route pattern and status",
  samples: [...counts.entries()].map(([key, value]) => {
    const [method, route, status] = key.split(" ") as [string, string, string]
    return { labels: { method, route, status }, value }
  })
})

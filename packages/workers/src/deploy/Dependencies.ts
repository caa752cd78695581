/**
 * Dependency-aware degradation. A service whose dependency (an edge of
 * container_service_dependencies, written by topology detection or compose) is down is degraded,
 * not restarted: restarting it cannot help while what it needs is gone. The root cause of a
 * cascade is the down service at the bottom of the chain, the one whose own dependencies are fine.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"

export interface DependencyEdge {
  readonly serviceId: string
  readonly dependsOn: string
}

export interface Blocked {
  /** Direct dependencies that are down. */
  readonly down: ReadonlyArray<string>
  /** The down services at the bottom of the cascade (sorted). */
  readonly rootCauses: ReadonlyArray<string>
}

/** Dependencies of each service. */
export const adjacency = (
  edges: ReadonlyArray<DependencyEdge>
): ReadonlyMap<string, ReadonlyArray<string>> => {
  const out = new Map<string, Array<string>>()
  for (const e of edges) {
    const list = out.get(e.serviceId) ?? []
    if (!list.includes(e.dependsOn)) list.push(e.dependsOn)
    out.set(e.serviceId, list)
  }
  return out
}

/** Services that depend (directly) on `serviceId`: the ones to re-check when it recovers. */
export const dependentsOf = (
  edges: ReadonlyArray<DependencyEdge>,
  serviceId: string
): ReadonlyArray<string> =>
  [...new Set(edges.filter((e) => e.dependsOn === serviceId).map((e) => e.serviceId))].sort()

/**
 * The root causes behind a down service: follow down dependencies until a down service has none
 * (itself the cause). A cycle of down services has no bottom: its members are all reported.
 */
export const rootCausesOf = (
  deps: ReadonlyMap<string, ReadonlyArray<string>>,
  isDown: (id: string) => boolean,
  start: string
): ReadonlyArray<string> => {
  const roots = new Set<string>()
  const visiting = new Set<string>()
  const walk = (id: string): void => {
    if (visiting.has(id)) {
      roots.add(id)
      return
    }
    visiting.add(id)
    const downDeps = (deps.get(id) ?? []).filter(isDown)
    if (downDeps.length === 0) roots.add(id)
    else for (const d of downDeps) walk(d)
  }
  walk(start)
  return [...roots].sort()
}

/** Every service with at least one down dependency, with its down dependencies and root causes. */
export const analyse = (
  edges: ReadonlyArray<DependencyEdge>,
  down: ReadonlySet<string>
): ReadonlyMap<string, Blocked> => {
  const deps = adjacency(edges)
  const isDown = (id: string) => down.has(id)
  const out = new Map<string, Blocked>()
  for (const [serviceId, targets] of deps) {
    const downDeps = targets.filter(isDown)
    if (downDeps.length === 0) continue
    const roots = new Set<string>()
    for (const d of downDeps) for (const r of rootCausesOf(deps, isDown, d)) roots.add(r)
    roots.delete(serviceId)
    out.set(serviceId, { down: [...downDeps].sort(), rootCauses: [...roots].sort() })
  }
  return out
}

/**
 * Edges between Kyozo services of services that still exist. Edges to backing services
 * (`requires`) have nothing Kyozo can observe; `service_completed_successfully` targets are
 * one-shot jobs whose exit is expected.
 */
export const loadEdges: Effect.Effect<
  ReadonlyArray<DependencyEdge>,
  SqlError,
  SqlClient.SqlClient
> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ service_id: string; depends_on_service_id: string }>`
      SELECT d.service_id, d.depends_on_service_id FROM container_service_dependencies d
      JOIN container_service_instances s ON s.id = d.service_id AND s.deleted_at IS NULL
      JOIN container_service_instances t ON t.id = d.depends_on_service_id AND t.deleted_at IS NULL
      WHERE d.depends_on_service_id IS NOT NULL AND d.condition <> 'service_completed_successfully'`
  return rows.map((r) => ({ serviceId: r.service_id, dependsOn: r.depends_on_service_id }))
})

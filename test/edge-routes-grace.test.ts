/**
 * EdgeRoutes.keepDeadReplicas: a replica that died keeps its port in the route for a grace (the
 * recovery loop restarts it on the same pinned port), so a replica lost and back costs no Caddy
 * reload while requests that met it are retried; retired and removed containers get no grace.
 */
import { DEAD_REPLICA_GRACE_MS, keepDeadReplicas } from "@kyozo/workers/deploy/EdgeRoutes"
import { describe, expect, it } from "vitest"

const up = (port: number) => ({ host: "127.0.0.1", port })
const container = (id: string, state: "running" | "exited", deployment: string) => ({
  id,
  name: id,
  image: "img",
  state,
  status: state,
  labels: { "kyozo.deployment": deployment },
  ports: [],
  createdAt: 0
})

describe("keepDeadReplicas", () => {
  it("keeps a dead replica's port during the grace, then lets it go", () => {
    const service = { id: "svc-grace-1", currentDeploymentId: "d2" }
    const containers = [container("a", "running", "d2"), container("b", "exited", "d2")]
    const routed = [up(1001), up(1002)]
    expect(keepDeadReplicas(service, containers, routed, [up(1001)], 0)).toEqual([up(1001), up(1002)])
    expect(keepDeadReplicas(service, containers, routed, [up(1001)], DEAD_REPLICA_GRACE_MS - 1)).toEqual([
      up(1001),
      up(1002)
    ])
    expect(keepDeadReplicas(service, containers, routed, [up(1001)], DEAD_REPLICA_GRACE_MS)).toEqual([
      up(1001)
    ])
    // Once expired it is not kept again while it stays missing.
    expect(keepDeadReplicas(service, containers, routed, [up(1001)], DEAD_REPLICA_GRACE_MS + 5)).toEqual([
      up(1001)
    ])
  })

  it("a replica back on its port is routed as before and its grace starts afresh next time", () => {
    const service = { id: "svc-grace-2", currentDeploymentId: "d1" }
    const down = [container("a", "running", "d1"), container("b", "exited", "d1")]
    const routed = [up(2001), up(2002)]
    keepDeadReplicas(service, down, routed, [up(2001)], 0)
    const upAgain = [container("a", "running", "d1"), container("b", "running", "d1")]
    expect(keepDeadReplicas(service, upAgain, routed, routed, 20_000)).toEqual(routed)
    expect(keepDeadReplicas(service, down, routed, [up(2001)], 30_000)).toEqual(routed)
  })

  it("no grace for containers of an older deployment (a switch) or removed ones (a scale-in)", () => {
    const service = { id: "svc-grace-3", currentDeploymentId: "new" }
    const routed = [up(3001), up(3002)]
    const retired = [container("n", "running", "new"), container("o", "exited", "old")]
    expect(keepDeadReplicas(service, retired, routed, [up(3001)], 0)).toEqual([up(3001)])
    const removed = [container("n", "running", "new")]
    expect(keepDeadReplicas(service, removed, routed, [up(3001)], 0)).toEqual([up(3001)])
  })

  it("keeps no more ports than there are dead replicas, and none when nothing answers", () => {
    const service = { id: "svc-grace-4", currentDeploymentId: "d" }
    const containers = [container("a", "running", "d"), container("b", "exited", "d")]
    const routed = [up(4001), up(4002), up(4003)]
    expect(keepDeadReplicas(service, containers, routed, [up(4001)], 0)).toHaveLength(2)
    expect(
      keepDeadReplicas({ id: "svc-grace-5", currentDeploymentId: "d" }, containers, routed, [], 0)
    ).toEqual([])
  })
})

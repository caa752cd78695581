/**
 * Per-request batching of lookups (DataLoader): every `service` and `lastDeployment` asked for
 * while one level of a query resolves is fetched in one application call, so a list of 100
 * services with their last deployments costs a fixed number of SQL statements, not 100 more.
 * Loaders live for one request only: nothing is cached across requests or principals.
 */
import type { Deployment } from "@kyozo/api/domain/Deployment"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import DataLoader from "dataloader"
import { Effect } from "effect"

import { Deployments } from "../application/Deployments.js"
import { Services } from "../application/Services.js"
import type { Run } from "./Execution.js"

/** The largest batch one application call is asked for (list pages are at most 100 anyway). */
const MAX_BATCH = 500

export interface Loaders {
  readonly service: DataLoader<string, ServiceInstance | null>
  readonly lastDeployment: DataLoader<string, Deployment | null>
}

const byKey = <A>(keys: ReadonlyArray<string>, rows: ReadonlyArray<A>, keyOf: (a: A) => string) => {
  const found = new Map(rows.map((r) => [keyOf(r), r]))
  return keys.map((k) => found.get(k) ?? null)
}

export const make = (run: Run<Services | Deployments>): Loaders => ({
  service: new DataLoader(
    (ids) =>
      run(Effect.flatMap(Services, (s) => s.getMany(ids))).then((rows) => byKey(ids, rows, (s) => s.id)),
    { maxBatchSize: MAX_BATCH }
  ),
  lastDeployment: new DataLoader(
    (serviceIds) =>
      run(Effect.flatMap(Deployments, (d) => d.latestOf(serviceIds))).then((rows) =>
        byKey(serviceIds, rows, (d) => d.serviceId)
      ),
    { maxBatchSize: MAX_BATCH }
  )
})

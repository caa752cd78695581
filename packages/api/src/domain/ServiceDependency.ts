/**
 * An edge of the service graph: a service depends either on another Kyozo service or on a backing
 * service the folder does not define (`requires`: postgres, redis, …), never both.
 */
import { Schema } from "effect"

import { DependencyId, ServiceId } from "./Ids.js"

export const DependencyCondition = Schema.Literal(
  "service_started",
  "service_healthy",
  "service_completed_successfully"
)
export type DependencyCondition = typeof DependencyCondition.Type

export class ServiceDependency extends Schema.Class<ServiceDependency>("ServiceDependency")({
  id: DependencyId,
  serviceId: ServiceId,
  dependsOnServiceId: Schema.NullOr(ServiceId),
  requires: Schema.NullOr(Schema.String),
  condition: DependencyCondition,
  createdAt: Schema.DateFromSelf
}) {}

/**
 * Labels on every object Kyozo creates. Cleanup touches nothing without `kyozo.managed=true`.
 */
export const Managed = "kyozo.managed"
export const Service = "kyozo.service"
export const Team = "kyozo.team"
export const Deployment = "kyozo.deployment"
export const Kind = "kyozo.kind"

export interface Owner {
  readonly serviceId?: string | undefined
  readonly teamId?: string | undefined
  readonly deploymentId?: string | undefined
}

/** The labels for an object, always including `kyozo.managed=true`. */
export const labelsFor = (owner: Owner = {}, extra: Record<string, string> = {}): Record<string, string> => {
  const labels: Record<string, string> = { ...extra, [Managed]: "true" }
  if (owner.serviceId) labels[Service] = owner.serviceId
  if (owner.teamId) labels[Team] = owner.teamId
  if (owner.deploymentId) labels[Deployment] = owner.deploymentId
  return labels
}

export const isManaged = (labels: Record<string, string> | null | undefined): boolean =>
  labels?.[Managed] === "true"

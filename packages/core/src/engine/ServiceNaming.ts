/**
 * Names of the engine objects a service owns. Deterministic from ids so that a retried step
 * (activities run at least once) finds the object it created before instead of making a second.
 */

/** The last characters of a deployment id: unique enough per service and short in `docker ps`. */
export const deploymentSuffix = (deploymentId: string): string => {
  const random = deploymentId.includes("_") ? deploymentId.slice(deploymentId.indexOf("_") + 1) : deploymentId
  return random.slice(-10).toLowerCase()
}

/** `kyozo-<service name>-<deployment suffix>`: one container per deployment of a service. */
export const containerName = (serviceName: string, deploymentId: string): string =>
  `kyozo-${serviceName}-${deploymentSuffix(deploymentId)}`

/** One bridge network per team: its services reach each other by service name, nothing else does. */
export const teamNetwork = (teamId: string): string => `kyozo-${teamId}`

/** `http://127.0.0.1:<port>`: the stable address of a service (its proxy port). */
export const serviceUrl = (hostPort: number | null | undefined): string | null =>
  hostPort === null || hostPort === undefined ? null : `http://127.0.0.1:${hostPort}`

/**
 * Which protocol a service's stable port carries, and so who serves that port.
 *
 * - "http": the edge router listens on the stable port and reverse-proxies to the replicas
 *   (load balancing, passive health, host names).
 * - "tcp": a database, a cache, a broker… Debian's Caddy 2.6 has no layer4 module, so it cannot
 *   carry raw TCP. Docker itself publishes the stable port on 127.0.0.1 for the service's primary
 *   container: it is reachable while Kyozo is down (docker-proxy, not Kyozo, holds the port) and
 *   survives restarts of the container (the binding is part of it). A deploy stops the old
 *   container before it starts the new one (the port and, for a database, its volume are one
 *   owner's at a time: Kubernetes' `Recreate` strategy). Replicas beyond the first run on their own
 *   127.0.0.1 ports and take no traffic from the stable URL: there is no TCP load balancer.
 *
 * The rule lives here and nowhere else: the deploy workflow, the replicas, the route sync and the
 * health worker all ask `transportOf`.
 */
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"

export type Transport = "http" | "tcp"

/**
 * Ports of protocols that are not HTTP (postgres, mysql, redis, mongo, amqp, memcached, kafka,
 * zookeeper, nats, mqtt, cassandra): a service listening on one of them is a TCP service unless its
 * health check says HTTP.
 */
export const TCP_PORTS: ReadonlySet<number> = new Set([
  5432, 3306, 6379, 27017, 5672, 11211, 9092, 2181, 4222, 1883, 9042
])

export const transportOf = (service: Pick<ServiceInstance, "healthConfig" | "internalPort">): Transport => {
  if (service.healthConfig.type === "tcp") return "tcp"
  if (service.healthConfig.type === "http") return "http"
  return service.internalPort !== null && TCP_PORTS.has(service.internalPort) ? "tcp" : "http"
}

/** True when Docker, not the edge, publishes the service's stable port (a TCP service with a port). */
export const publishedByEngine = (service: Pick<ServiceInstance, "healthConfig" | "internalPort">): boolean =>
  service.internalPort !== null && transportOf(service) === "tcp"

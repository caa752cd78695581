/**
 * The GraphQL read API's schema (SDL), served as is at `GET /graphql/schema.graphql`. Everything
 * answers for the caller's team only: another team's ids answer null or nothing, like unknown ones.
 * Times are ISO 8601 strings; `status` fields carry the same values as the REST API.
 */
export const typeDefs = /* GraphQL */ `
  """
  Kyozo's read API over the caller's team (the key's team). Lists are bounded by \`first\`
  (1 to 100); a query deeper than the depth limit or costlier than the cost limit is refused
  before it runs. A service's deployments, health history and metrics are read with the
  top-level queries (\`deployments(service:)\`, \`healthHistory(service:)\`, \`metrics(service:)\`);
  the nested fields (\`lastDeployment\`, \`service\`) are batched per request.
  """
  type Query {
    "The team's services, oldest first: at most \`first\` after the service \`after\` (an id from the list)."
    services(first: Int = 50, after: ID): [Service!]!
    "A service of the team by id or name; null when the team has no such service."
    service(id: ID!): Service
    "The team's deployments, newest first; only those of \`service\` (id or name) when given."
    deployments(service: ID, first: Int = 50): [Deployment!]!
    "A deployment of the team; null when the team has no such deployment."
    deployment(id: ID!): Deployment
    "The team's events after the event id \`after\`, oldest first; only those of \`service\` when given."
    events(service: ID, after: ID, first: Int = 100): [Event!]!
    "The latest health checks of a service, newest first."
    healthHistory(service: ID!, first: Int = 50): [HealthCheck!]!
    "Resource samples of a service over the window (minute samples; hourly roll-ups for a week)."
    metrics(service: ID!, window: MetricWindow = hour): [MetricSample!]!
    "The team's members."
    members: [Member!]!
    "The team's webhooks (their secrets are never shown)."
    webhooks: [Webhook!]!
  }

  enum MetricWindow {
    hour
    day
    week
  }

  type Service {
    id: ID!
    name: String!
    "Observed state, as in REST: pending, deploying, starting (restarted, not yet probed), running, degraded, unhealthy, failed, stopped or removed."
    status: String!
    desiredState: String!
    kind: String
    framework: String
    image: String
    "The container's published URL on this machine, when it has one."
    url: String
    "http://<service>.<team>.<domain>:<port> when the edge router names the service by host."
    hostUrl: String
    "https://<service>.<team>.<domain>:<port> when the edge serves HTTPS (KYOZO_EDGE_TLS_PORT)."
    httpsUrl: String
    "Custom domains the edge routes to the service."
    domains: [String!]!
    cpuMillis: Int!
    memoryMb: Int!
    replicas: Int!
    restartCount: Int!
    restartPolicy: String!
    "Names of the env variables (never their values)."
    envKeys: [String!]!
    createdAt: String!
    updatedAt: String!
    currentDeploymentId: ID
    "The newest deployment of the service, whatever its outcome (batched: one read for a whole list)."
    lastDeployment: Deployment
    "What the caller may do on the service (team role raised by grants), as REST's meta.can."
    can: ServiceCan!
  }

  type ServiceCan {
    "Redeploy, roll back, stop/start/restart."
    deploy: Boolean!
    "Change settings, delete."
    manage: Boolean!
    "Grant and revoke permissions on the service."
    admin: Boolean!
  }

  type Deployment {
    id: ID!
    status: String!
    image: String
    error: String
    createdAt: String!
    finishedAt: String
    serviceId: ID!
    "The deployment's service (batched); null once it is removed."
    service: Service
  }

  type Event {
    id: ID!
    type: String!
    message: String!
    serviceId: ID
    deploymentId: ID
    "The event's data as JSON text."
    data: String!
    createdAt: String!
    "The event's service (batched), if it names one that still exists."
    service: Service
  }

  type HealthCheck {
    id: ID!
    checkType: String!
    status: String!
    latencyMs: Int
    detail: String!
    checkedAt: String!
  }

  type MetricSample {
    id: ID!
    resolution: String!
    cpuPercent: Float!
    memoryBytes: Float!
    memoryLimitBytes: Float!
    netRxBytes: Float!
    netTxBytes: Float!
    pids: Int!
    sampledAt: String!
  }

  type Member {
    "the user's id; for a pending member the invitation's id"
    userId: ID!
    email: String!
    name: String!
    role: String!
    createdAt: String!
    "active, or pending: invited, not accepted yet"
    state: String!
  }

  type Webhook {
    id: ID!
    url: String!
    eventTypes: [String!]!
    enabled: Boolean!
    createdAt: String!
  }
`

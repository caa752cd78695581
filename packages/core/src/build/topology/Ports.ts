/**
 * Where ports come from: literal listen calls and port settings in sources and config, framework
 * defaults, and the usual ports of well-known images.
 */
import type { Evidence } from "@kyozo/api/domain/Topology"

export interface PortFinding {
  readonly port: number
  readonly evidence: Evidence
}

/** The framework's own default port, used when nothing in the folder names one. */
export const FRAMEWORK_DEFAULT_PORTS: Readonly<Record<string, number>> = {
  express: 3000,
  fastify: 3000,
  koa: 3000,
  nest: 3000,
  nextjs: 3000,
  nuxt: 3000,
  remix: 3000,
  hapi: 3000,
  hono: 3000,
  sveltekit: 3000,
  http: 3000,
  flask: 5000,
  django: 8000,
  fastapi: 8000,
  starlette: 8000,
  aiohttp: 8080,
  tornado: 8888,
  streamlit: 8501,
  rails: 3000,
  sinatra: 4567,
  rack: 9292,
  hanami: 2300,
  gin: 8080,
  echo: 8080,
  fiber: 3000,
  chi: 8080,
  axum: 3000,
  actix: 8080,
  rocket: 8000,
  warp: 3030,
  spring: 8080,
  quarkus: 8080,
  micronaut: 8080,
  laravel: 8000,
  symfony: 8000,
  slim: 8000,
  phoenix: 4000,
  plug: 4000,
  oak: 8000,
  fresh: 8000,
  // Front ends: the port of their preview/production server (Kyozo serves built ones on it).
  astro: 4321,
  angular: 4200,
  vite: 4173,
  "create-react-app": 3000,
  vue: 8080,
  gatsby: 9000,
  docusaurus: 3000,
  parcel: 1234
}

/** Default port per stack when no framework is known. */
export const STACK_DEFAULT_PORTS: Readonly<Record<string, number>> = {
  node: 3000,
  python: 8000,
  go: 8080,
  ruby: 3000,
  rust: 8080,
  java: 8080,
  php: 8000,
  deno: 8000,
  elixir: 4000,
  static: 8080
}

/** Usual listening port of well-known images, keyed by the image's repository basename. */
export const WELL_KNOWN_IMAGE_PORTS: Readonly<Record<string, number>> = {
  postgres: 5432,
  postgis: 5432,
  timescaledb: 5432,
  redis: 6379,
  "redis-stack-server": 6379,
  valkey: 6379,
  keydb: 6379,
  mysql: 3306,
  mariadb: 3306,
  percona: 3306,
  mongo: 27017,
  mongodb: 27017,
  "mongodb-community-server": 27017,
  nginx: 80,
  "nginx-unprivileged": 8080,
  httpd: 80,
  caddy: 80,
  traefik: 80,
  haproxy: 80,
  rabbitmq: 5672,
  memcached: 11211,
  elasticsearch: 9200,
  opensearch: 9200,
  kibana: 5601,
  kafka: 9092,
  "cp-kafka": 9092,
  zookeeper: 2181,
  "cp-zookeeper": 2181,
  minio: 9000,
  nats: 4222,
  mailhog: 8025,
  mailpit: 8025,
  adminer: 8080,
  grafana: 3000,
  prometheus: 9090,
  consul: 8500,
  vault: 8200,
  localstack: 4566,
  keycloak: 8080,
  clickhouse: 8123,
  "clickhouse-server": 8123,
  cassandra: 9042,
  neo4j: 7474,
  influxdb: 8086,
  couchdb: 5984,
  "all-in-one": 16686,
  jaeger: 16686,
  etcd: 2379,
  registry: 5000,
  wordpress: 80,
  ghost: 2368,
  sonarqube: 9000,
  jenkins: 8080,
  pgadmin4: 80,
  meilisearch: 7700,
  typesense: 8108,
  qdrant: 6333,
  mosquitto: 1883,
  "eclipse-mosquitto": 1883,
  nodered: 1880,
  "node-red": 1880,
  gitea: 3000,
  superset: 8088,
  metabase: 3000
}

/** The repository basename of an image reference: "docker.io/library/postgres:16@sha…" → "postgres". */
export const imageBaseName = (image: string): string => {
  const noDigest = image.split("@")[0] ?? image
  const lastSlash = noDigest.lastIndexOf("/")
  const tail = noDigest.slice(lastSlash + 1)
  const colon = tail.indexOf(":")
  return (colon < 0 ? tail : tail.slice(0, colon)).toLowerCase()
}

export const wellKnownImagePort = (image: string): number | undefined => {
  const base = imageBaseName(image)
  if (WELL_KNOWN_IMAGE_PORTS[base] !== undefined) return WELL_KNOWN_IMAGE_PORTS[base]
  // "bitnami/postgresql", "circleci/postgres": try the known names as prefixes of the basename.
  for (const [name, port] of Object.entries(WELL_KNOWN_IMAGE_PORTS)) {
    if (name.length >= 4 && base.startsWith(name)) return port
  }
  return undefined
}

/** Ports of the usual backing services: a literal one in app code is a client setting, not a listen port. */
const BACKING_PORTS = new Set([5432, 3306, 6379, 27017, 5672, 15672, 9200, 11211, 9092, 2181, 4222, 1883])

interface PortPattern {
  readonly re: RegExp
  readonly detail: string
}

// Each pattern captures the port in group 1. Order matters only within one line.
const PATTERNS: ReadonlyArray<PortPattern> = [
  { re: /\bserver\.port\s*[=:]\s*(\d{2,5})\b/, detail: "server.port setting" },
  { re: /ListenAndServe(?:TLS)?\(\s*"[^"]*:(\d{2,5})"/, detail: "ListenAndServe address" },
  { re: /\.(?:Run|Start|Listen|RunTLS)\(\s*"[^"]*:(\d{2,5})"/, detail: "server start address" },
  { re: /\bAddr\s*:\s*"[^"]*:(\d{2,5})"/, detail: "server Addr" },
  { re: /\bbind\(\s*["'][^"']*:(\d{2,5})["']/, detail: "bind address" },
  {
    re: /\b(?:bind|HTTPServer|ThreadingHTTPServer|TCPServer|make_server)\(\s*\(?\s*["'][^"']*["']\s*,\s*(\d{2,5})\b/,
    detail: "bind address"
  },
  { re: /SocketAddr(?:V4)?::(?:from|new)\(\s*\(?\s*\[[^\]]*\]\s*,\s*(\d{2,5})/, detail: "socket address" },
  { re: /\.listen\(\s*(?:[^()]*?(?:\|\||\?\?|,)\s*)?["']?(\d{2,5})\b/, detail: "listen call" },
  {
    re: /(?:process\.env\.PORT|process\.env\[["']PORT["']\]|env\.PORT|getenv\(\s*["']PORT["']|environ(?:\.get)?[([]\s*["']PORT["']|ENV\.fetch\(\s*["']PORT["']|ENV\[["']PORT["']\]|Deno\.env\.get\(\s*["']PORT["']\s*\)|System\.get_env\(\s*"PORT"\s*\)|\$\{PORT:-)[^\n\d]{0,24}?(\d{2,5})\b/,
    detail: "PORT variable with a default"
  },
  { re: /\bset\s+:port\s*,\s*(\d{2,5})\b/, detail: "set :port" },
  { re: /(?:^|\s)(?:-p|--port)(?:\s+|=)(\d{2,5})\b/, detail: "port flag" },
  { re: /(?:^|\s)(?:-b|--bind|-S|--listen)(?:\s+|=)["']?[\w.[\]:-]*:(\d{2,5})\b/, detail: "bind flag" },
  { re: /\b(?:port|PORT|Port)\s*:?=\s*["']?:?(\d{2,5})\b/, detail: "port setting" },
  { re: /["']?\b(?:port|PORT)\b["']?\s*[:=>]+\s*(\d{2,5})\b/, detail: "port setting" },
  { re: /(?:const|let|var)\s+(?:port|PORT)\b[^=\n]*=\s*[^;\n]*?(\d{2,5})\b/, detail: "port constant" },
  { re: /["'](?:0\.0\.0\.0|\[::\]|::):(\d{2,5})["']/, detail: "listen address" }
]

const isCommentLine = (line: string): boolean => {
  const t = line.trimStart()
  return (
    t.startsWith("//") || t.startsWith("#") || t.startsWith("/*") || t.startsWith("* ") || t.startsWith("--")
  )
}

const validPort = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65535

/** The first port a text names in a way that means "listen here". */
export const findPortInText = (
  text: string,
  file: string,
  options: { readonly allowBackingPorts?: boolean } = {}
): PortFinding | undefined => {
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line.length > 400 || isCommentLine(line)) continue
    for (const p of PATTERNS) {
      const m = p.re.exec(line)
      if (!m) continue
      const port = Number(m[1])
      if (!validPort(port)) continue
      if (!options.allowBackingPorts && BACKING_PORTS.has(port)) continue
      return { port, evidence: { file, line: i + 1, detail: `${p.detail}: ${line.trim().slice(0, 120)}` } }
    }
  }
  return undefined
}

/** A port from a shell-style start command ("next start -p 3001", "gunicorn -b 0.0.0.0:8000 app:app"). */
export const findPortInCommand = (command: string): number | undefined => {
  const m =
    /(?:^|\s)(?:-p|--port|-P)(?:\s+|=)(\d{2,5})\b/.exec(command) ??
    /(?:^|\s)(?:-b|--bind|-S|--listen|--host)(?:\s+|=)["']?[\w.[\]:-]*:(\d{2,5})\b/.exec(command) ??
    /\bPORT=(\d{2,5})\b/.exec(command) ??
    /["']?(?:0\.0\.0\.0|localhost|127\.0\.0\.1|\[::\]):(\d{2,5})\b/.exec(command)
  if (!m) return undefined
  const port = Number(m[1])
  return validPort(port) ? port : undefined
}

/**
 * Backing services (databases, caches, brokers) a service needs: read from its dependencies,
 * database settings and `.env.example`-style files. Names are canonical: postgres, mysql, redis…
 */
import type { Evidence } from "@kyozo/api/domain/Topology"

import { imageBaseName } from "./Ports.js"

export type Backing =
  | "postgres"
  | "mysql"
  | "mongodb"
  | "redis"
  | "rabbitmq"
  | "kafka"
  | "elasticsearch"
  | "memcached"
  | "nats"
  | "minio"

/** Dependency names (lower case) per ecosystem that imply a backing service. */
const DEPENDENCY_BACKINGS: ReadonlyArray<readonly [RegExp, Backing]> = [
  // node
  [/^(pg|pg-promise|postgres|@neondatabase\/serverless|@vercel\/postgres|pg-pool|slonik)$/, "postgres"],
  [/^(mysql|mysql2|@planetscale\/database|mariadb)$/, "mysql"],
  [/^(mongodb|mongoose|@typegoose\/typegoose|monk)$/, "mongodb"],
  [/^(redis|ioredis|bull|bullmq|bee-queue|connect-redis|@redis\/client|kue|rate-limit-redis)$/, "redis"],
  [/^(amqplib|amqp-connection-manager|rascal)$/, "rabbitmq"],
  [/^(kafkajs|node-rdkafka|@confluentinc\/kafka-javascript)$/, "kafka"],
  [/^(@elastic\/elasticsearch|elasticsearch)$/, "elasticsearch"],
  [/^(memcached|memjs)$/, "memcached"],
  [/^(nats|nats\.ws)$/, "nats"],
  // python
  [/^(psycopg|psycopg2|psycopg2-binary|psycopg-binary|asyncpg|pg8000|psycopg-pool)$/, "postgres"],
  [/^(mysqlclient|pymysql|aiomysql|mysql-connector-python|asyncmy)$/, "mysql"],
  [/^(pymongo|motor|mongoengine|beanie|odmantic)$/, "mongodb"],
  [/^(redis|aioredis|rq|django-redis|flask-caching-redis|hiredis|celery\[redis\])$/, "redis"],
  [/^(pika|aio-pika|aiormq)$/, "rabbitmq"],
  [/^(kafka-python|confluent-kafka|aiokafka)$/, "kafka"],
  [/^(pymemcache|python-memcached|pylibmc)$/, "memcached"],
  [/^(nats-py)$/, "nats"],
  // ruby
  [/^(pg|sequel_pg)$/, "postgres"],
  [/^(mysql2|trilogy)$/, "mysql"],
  [/^(mongoid|mongo)$/, "mongodb"],
  [/^(redis|sidekiq|resque|hiredis|redis-rails|kredis)$/, "redis"],
  [/^(bunny|sneakers)$/, "rabbitmq"],
  [/^(ruby-kafka|rdkafka|karafka)$/, "kafka"],
  [/^(dalli)$/, "memcached"],
  // go (module paths)
  [
    /^(github\.com\/lib\/pq|github\.com\/jackc\/pgx(\/v\d+)?|github\.com\/go-pg\/pg.*|gorm\.io\/driver\/postgres)$/,
    "postgres"
  ],
  [/^(github\.com\/go-sql-driver\/mysql|gorm\.io\/driver\/mysql)$/, "mysql"],
  [/^(go\.mongodb\.org\/mongo-driver(\/v\d+)?)$/, "mongodb"],
  [
    /^(github\.com\/(go-redis\/redis|redis\/go-redis)(\/v\d+)?|github\.com\/gomodule\/redigo|github\.com\/redis\/rueidis)$/,
    "redis"
  ],
  [/^(github\.com\/streadway\/amqp|github\.com\/rabbitmq\/amqp091-go)$/, "rabbitmq"],
  [
    /^(github\.com\/segmentio\/kafka-go|github\.com\/(shopify|ibm)\/sarama|github\.com\/confluentinc\/confluent-kafka-go.*)$/,
    "kafka"
  ],
  [/^(github\.com\/nats-io\/nats\.go)$/, "nats"],
  [/^(github\.com\/minio\/minio-go(\/v\d+)?)$/, "minio"],
  // rust crates
  [/^(tokio-postgres|postgres|deadpool-postgres|bb8-postgres)$/, "postgres"],
  [/^(mysql_async)$/, "mysql"],
  [/^(redis|deadpool-redis|bb8-redis|fred)$/, "redis"],
  [/^(lapin)$/, "rabbitmq"],
  [/^(rdkafka)$/, "kafka"],
  // java (artifact ids)
  [/^(postgresql|r2dbc-postgresql)$/, "postgres"],
  [/^(mysql-connector-java|mysql-connector-j|mariadb-java-client)$/, "mysql"],
  [
    /^(spring-boot-starter-data-mongodb(-reactive)?|mongodb-driver-sync|mongodb-driver-reactivestreams)$/,
    "mongodb"
  ],
  [/^(spring-boot-starter-data-redis(-reactive)?|jedis|lettuce-core|redisson)$/, "redis"],
  [/^(spring-boot-starter-amqp|amqp-client|spring-rabbit)$/, "rabbitmq"],
  [/^(spring-kafka|kafka-clients)$/, "kafka"],
  [/^(spring-boot-starter-data-elasticsearch)$/, "elasticsearch"],
  // php (composer)
  [/^(ext-pgsql|ext-pdo_pgsql)$/, "postgres"],
  [/^(ext-mysqli|ext-pdo_mysql)$/, "mysql"],
  [/^(mongodb\/mongodb|ext-mongodb)$/, "mongodb"],
  [/^(predis\/predis|ext-redis|snc\/redis-bundle)$/, "redis"],
  [/^(php-amqplib\/php-amqplib|ext-amqp)$/, "rabbitmq"],
  // elixir
  [/^(postgrex)$/, "postgres"],
  [/^(myxql)$/, "mysql"],
  [/^(mongodb_driver)$/, "mongodb"],
  [/^(redix)$/, "redis"],
  [/^(amqp|broadway_rabbitmq)$/, "rabbitmq"],
  [/^(brod|kafka_ex)$/, "kafka"]
]

export const backingFromDependency = (dep: string): Backing | undefined => {
  const d = dep.toLowerCase().trim()
  for (const [re, b] of DEPENDENCY_BACKINGS) if (re.test(d)) return b
  return undefined
}

/** A connection URL's scheme → backing service. */
export const backingFromUrl = (value: string): Backing | undefined => {
  const m = /^\s*["']?([a-z][a-z0-9+.-]*):\/\//i.exec(value)
  if (!m) {
    if (/jdbc:postgresql:/i.test(value)) return "postgres"
    if (/jdbc:(mysql|mariadb):/i.test(value)) return "mysql"
    return undefined
  }
  const scheme = m[1]!.toLowerCase().split("+")[0]!
  if (scheme === "postgres" || scheme === "postgresql" || scheme === "pgsql") return "postgres"
  if (scheme === "mysql" || scheme === "mariadb" || scheme === "mysql2") return "mysql"
  if (scheme === "mongodb" || scheme === "mongodb+srv" || scheme === "mongo") return "mongodb"
  if (scheme === "redis" || scheme === "rediss") return "redis"
  if (scheme === "amqp" || scheme === "amqps") return "rabbitmq"
  if (scheme === "kafka") return "kafka"
  if (scheme === "nats") return "nats"
  if (scheme === "memcached") return "memcached"
  return undefined
}

const ENV_KEY_BACKINGS: ReadonlyArray<readonly [RegExp, Backing]> = [
  [/^(POSTGRES|PG|POSTGRESQL)(_|HOST|USER|PASSWORD|DATABASE|PORT)/, "postgres"],
  [/^(MYSQL|MARIADB)_/, "mysql"],
  [/^(MONGO|MONGODB)_/, "mongodb"],
  [/^REDIS_/, "redis"],
  [/^(RABBITMQ|AMQP)_/, "rabbitmq"],
  [/^KAFKA_/, "kafka"],
  [/^(ELASTICSEARCH|ELASTIC|OPENSEARCH)_/, "elasticsearch"],
  [/^MEMCACHE(D)?_/, "memcached"],
  [/^NATS_/, "nats"]
]

/** Files that list the environment a service expects (never real secrets). */
export const ENV_EXAMPLE_FILES: ReadonlyArray<string> = [
  ".env.example",
  ".env.sample",
  ".env.template",
  ".env.dist",
  ".env.defaults",
  ".env.local.example",
  ".env.development.example",
  "example.env",
  "sample.env",
  "env.example",
  "env.sample"
]

export interface BackingFinding {
  readonly backing: Backing
  readonly evidence: Evidence
}

/** Backing services named by an env-example file: by URL scheme, then by variable prefix. */
export const backingsFromEnvFile = (text: string, file: string): ReadonlyArray<BackingFinding> => {
  const out: Array<BackingFinding> = []
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === "" || line.startsWith("#")) continue
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line)
    if (!m) continue
    const key = m[1]!.toUpperCase()
    const value = m[2] ?? ""
    const b = backingFromUrl(value) ?? ENV_KEY_BACKINGS.find(([re]) => re.test(key))?.[1]
    if (b) out.push({ backing: b, evidence: { file, line: i + 1, detail: `${key} names ${b}` } })
  }
  return out
}

/** The backing service an image provides, if it is one ("postgres:16" → postgres). */
export const backingFromImage = (image: string): Backing | undefined => {
  const base = imageBaseName(image)
  if (/^(postgres|postgis|postgresql|timescaledb|supabase-postgres|pgvector)/.test(base)) return "postgres"
  if (/^(mysql|mariadb|percona)/.test(base)) return "mysql"
  if (/^mongo/.test(base)) return "mongodb"
  if (/^(redis|valkey|keydb|dragonfly)/.test(base)) return "redis"
  if (/^rabbitmq/.test(base)) return "rabbitmq"
  if (/^(kafka|cp-kafka|redpanda)/.test(base)) return "kafka"
  if (/^(elasticsearch|opensearch)/.test(base)) return "elasticsearch"
  if (/^memcached/.test(base)) return "memcached"
  if (/^nats/.test(base)) return "nats"
  if (/^minio/.test(base)) return "minio"
  return undefined
}

/** Collects findings into a sorted, de-duplicated list, keeping the first evidence for each. */
export class BackingSet {
  private readonly found = new Map<Backing, Evidence>()
  add(backing: Backing | undefined, evidence: Evidence): void {
    if (backing && !this.found.has(backing)) this.found.set(backing, evidence)
  }
  addAll(other: BackingSet): void {
    for (const [b, e] of other.found) this.add(b, e)
  }
  names(): Array<string> {
    return [...this.found.keys()].sort()
  }
  evidence(): Array<Evidence> {
    return [...this.found.values()]
  }
}

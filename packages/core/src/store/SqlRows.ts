/**
 * Row decoding shared by the repositories. Columns are snake_case and models camelCase; the
 * client keeps its default (no name transform) because @effect/cluster's storage shares it, so
 * the mapping happens here, per query.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Either, Option, Schema } from "effect"

// Column names are few and repeat on every row: the regex runs once per name, not per cell.
const camelNames = new Map<string, string>()
const camel = (name: string): string => {
  let out = camelNames.get(name)
  if (out === undefined) {
    out = name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())
    if (camelNames.size < 10_000) camelNames.set(name, out)
  }
  return out
}

/** A row with its keys in camelCase. */
export const camelizeRow = (row: unknown): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  const source = row as Record<string, unknown>
  for (const key in source) out[camel(key)] = source[key]
  return out
}

export interface RowDecoderOptions {
  /**
   * The (raw, snake_case) column identifying a row: decoded rows are remembered per key and reused
   * while the raw row is the same. For tables read again and again whole (services).
   */
  readonly memoBy?: string
}

/** Remembered rows per decoder at most (then it starts over). */
const MEMO_MAX = 50_000

/**
 * Decoders from raw rows to a model. A row that does not decode means the schema and the code
 * disagree: that is a bug, so it dies rather than widening every repository's error type.
 */
export const rowDecoder = <A, I>(schema: Schema.Schema<A, I>, options: RowDecoderOptions = {}) => {
  const decodeAll = Schema.decodeUnknown(Schema.Array(schema))
  const decodeOne = Schema.decodeUnknownEither(schema)
  const memoBy = options.memoBy
  // Per key: the raw row as JSON and what it decoded to. Decoding is pure, so an identical raw row
  // decodes to an equal value; re-reading unchanged rows (the loops list every service on every
  // pass) then costs a JSON.stringify instead of a Schema decode.
  const memo = new Map<unknown, { readonly raw: string; readonly value: A }>()
  const decodeMemo = (rs: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<A>> => {
    const out: Array<A> = new Array(rs.length)
    for (let i = 0; i < rs.length; i++) {
      const row = rs[i] as Record<string, unknown>
      const key = row[memoBy!]
      let raw: string
      try {
        raw = JSON.stringify(row)
      } catch {
        return Effect.orDie(decodeAll(rs.map(camelizeRow)))
      }
      const hit = memo.get(key)
      if (hit !== undefined && hit.raw === raw) {
        out[i] = hit.value
        continue
      }
      const decoded = decodeOne(camelizeRow(row))
      if (Either.isLeft(decoded)) return Effect.die(decoded.left)
      if (memo.size >= MEMO_MAX && hit === undefined) memo.clear()
      memo.set(key, { raw, value: decoded.right })
      out[i] = decoded.right
    }
    return Effect.succeed(out)
  }
  const all = <E, R>(
    rows: Effect.Effect<ReadonlyArray<unknown>, E, R>
  ): Effect.Effect<ReadonlyArray<A>, E, R> =>
    Effect.flatMap(rows, (rs) =>
      memoBy === undefined ? Effect.orDie(decodeAll(rs.map(camelizeRow))) : decodeMemo(rs)
    )
  const first = <E, R>(
    rows: Effect.Effect<ReadonlyArray<unknown>, E, R>
  ): Effect.Effect<Option.Option<A>, E, R> => Effect.map(all(rows), (as) => Option.fromNullable(as[0]))
  const single = <E, R>(rows: Effect.Effect<ReadonlyArray<unknown>, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(first(rows), (o) =>
      Option.isSome(o)
        ? Effect.succeed(o.value)
        : Effect.dieMessage("expected one row, the statement returned none")
    )
  return { all, first, single } as const
}

/** The SQLSTATE of a failed statement (node-postgres puts it on the cause), e.g. "23505". */
export const sqlState = (error: { readonly cause?: unknown }): string | undefined => {
  const cause = error.cause as { code?: unknown } | undefined
  return typeof cause?.code === "string" ? cause.code : undefined
}

/** The constraint a failed statement violated, when PostgreSQL names it. */
export const sqlConstraint = (error: { readonly cause?: unknown }): string | undefined => {
  const cause = error.cause as { constraint?: unknown } | undefined
  return typeof cause?.constraint === "string" ? cause.constraint : undefined
}

/** One page of a keyset-paginated list; pass `nextCursor` as `after` to get the next page. */
export interface Page<A, Cursor = string> {
  readonly items: ReadonlyArray<A>
  readonly nextCursor: Cursor | null
}

export interface PageOptions<Cursor = string> {
  readonly limit?: number
  readonly after?: Cursor | null
}

/** A limit clamped to 1..500 (default 50): an API caller cannot ask for the whole table. */
export const clampLimit = (limit: number | undefined, fallback = 50): number =>
  Math.max(1, Math.min(500, Math.floor(limit ?? fallback)))

/** The columns of a patch with undefined fields dropped (node-postgres would write them as NULL). */
export const definedColumns = (patch: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(patch)) if (value !== undefined) out[key] = value
  return out
}

/** JSON for a jsonb parameter: node-postgres would send a JS array as a PostgreSQL array. */
export const jsonb = (value: unknown): string => JSON.stringify(value ?? null)

/**
 * `column IN (values)` with the values as ONE JSON parameter: `sql.in` binds one parameter per
 * value, and binding a thousand of them (a pass over every service) costs more than the query.
 * `column` is a constant of the code (it is not quoted).
 */
export const inJson = (sql: SqlClient.SqlClient, column: string, values: ReadonlyArray<string>) =>
  sql`${sql.literal(column)} IN (SELECT jsonb_array_elements_text(${JSON.stringify(values)}::jsonb))`

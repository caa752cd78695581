/**
 * Row decoding shared by the repositories. Columns are snake_case and models camelCase; the
 * client keeps its default (no name transform) because @effect/cluster's storage shares it, so
 * the mapping happens here, per query.
 */
import { Effect, Option, Schema } from "effect"

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

/**
 * Decoders from raw rows to a model. A row that does not decode means the schema and the code
 * disagree: that is a bug, so it dies rather than widening every repository's error type.
 */
export const rowDecoder = <A, I>(schema: Schema.Schema<A, I>) => {
  const decodeAll = Schema.decodeUnknown(Schema.Array(schema))
  const all = <E, R>(
    rows: Effect.Effect<ReadonlyArray<unknown>, E, R>
  ): Effect.Effect<ReadonlyArray<A>, E, R> =>
    Effect.flatMap(rows, (rs) => Effect.orDie(decodeAll(rs.map(camelizeRow))))
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

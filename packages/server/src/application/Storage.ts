/**
 * Storage failures are defects for the application services: a failing database is not something
 * a caller can act on, so the services never list `SqlError` among their typed errors. This is the
 * one place that rule is applied: a service takes its repositories through `repository(Tag)`, and
 * every call on them has `SqlError` turned into a defect (logged and answered as a 500 by the front
 * doors), while the repositories' own typed failures (a name taken, ...) stay typed.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { type Context, Effect } from "effect"

/** A repository as the services see it: the same calls, without `SqlError` in their error channel. */
export type Storage<S> = {
  readonly [K in keyof S]: S[K] extends (...args: infer A) => Effect.Effect<infer X, infer E, infer R>
    ? (...args: A) => Effect.Effect<X, Exclude<E, SqlError>, R>
    : S[K] extends Effect.Effect<infer X, infer E, infer R>
      ? Effect.Effect<X, Exclude<E, SqlError>, R>
      : S[K]
}

const isSqlError = (e: unknown): e is SqlError =>
  typeof e === "object" && e !== null && "_tag" in e && e._tag === "SqlError"

const orDieOnSql = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.catchIf(effect, isSqlError, Effect.die)

/** Wraps a repository so that each of its calls turns `SqlError` into a defect. */
export const storage = <S extends object>(repo: S): Storage<S> =>
  new Proxy(repo, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver)
      if (typeof value === "function") {
        return (...args: Array<unknown>) => {
          const out: unknown = value.apply(target, args)
          return Effect.isEffect(out) ? orDieOnSql(out) : out
        }
      }
      return Effect.isEffect(value) ? orDieOnSql(value) : value
    }
  }) as unknown as Storage<S>

/** The repository behind `tag`, through `storage`. */
export const repository = <I, S extends object>(
  tag: Context.Tag<I, S>
): Effect.Effect<Storage<S>, never, I> => Effect.map(tag, storage)

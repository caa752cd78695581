/**
 * Server-side folders a client may deploy by path. Only folders inside the workspaces root
 * (`KYOZO_WORKSPACES_ROOT`, default `<KYOZO_DATA_DIR>/workspaces`) are accepted, checked after
 * resolving symlinks on both sides, so a link inside the root cannot hand out `/etc`.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"

import { Effect, Schema } from "effect"

import { KyozoConfig } from "../KyozoConfig.js"

export class InvalidWorkspacePath extends Schema.TaggedError<InvalidWorkspacePath>()("InvalidWorkspacePath", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Cannot use ${this.path} as a workspace: ${this.reason}. Put the folder under the server's workspaces root (KYOZO_WORKSPACES_ROOT), or upload it instead.`
  }
}

/**
 * The real path of `requested` (absolute, or relative to `root`) when it is an existing directory
 * strictly inside `root` after resolving symlinks.
 */
export const resolveInside = (root: string, requested: string): Effect.Effect<string, InvalidWorkspacePath> =>
  Effect.gen(function* () {
    const invalid = (reason: string) => new InvalidWorkspacePath({ path: requested, reason })
    if (requested.trim() === "" || requested.includes("\0")) return yield* invalid("empty or malformed path")
    const realRoot = yield* Effect.tryPromise({
      try: () => fs.realpath(root),
      catch: () => invalid("the server's workspaces root does not exist")
    })
    const real = yield* Effect.tryPromise({
      try: () => fs.realpath(path.resolve(realRoot, requested)),
      catch: (e) =>
        invalid(
          (e as NodeJS.ErrnoException).code === "ENOENT"
            ? "no such folder on the server"
            : "the folder cannot be read"
        )
    })
    const rel = path.relative(realRoot, real)
    if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel))
      return yield* invalid("it is outside the workspaces root")
    const stat = yield* Effect.tryPromise({
      try: () => fs.stat(real),
      catch: () => invalid("the folder cannot be read")
    })
    if (!stat.isDirectory()) return yield* invalid("it is not a folder")
    return real
  })

export class Workspaces extends Effect.Service<Workspaces>()("@kyozo/core/Workspaces", {
  effect: Effect.gen(function* () {
    const root = (yield* KyozoConfig).workspacesRoot
    // Created up front so that "no such root" only ever means a misconfiguration.
    yield* Effect.promise(() => fs.mkdir(root, { recursive: true }).catch(() => undefined))
    return {
      root,
      resolve: (requested: string) => resolveInside(root, requested)
    } as const
  }),
  dependencies: [KyozoConfig.Default]
}) {}

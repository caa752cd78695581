/**
 * Where a team's deploys come from. A path names a folder inside the team's own workspace folder,
 * `<workspaces root>/<teamId>/`: no team sees another's folders. The deployer is handed the path
 * relative to the workspaces root (`<teamId>/<folder>`), so what it stores and reports never holds
 * the server's absolute paths. Uploads are team-scoped by their directory already.
 *
 * The workspaces root is created when the server starts.
 */
import * as fs from "node:fs"
import * as path from "node:path"

import { type DeploySource, InvalidSource } from "@kyozo/api/domain/Deploy"
import type { TeamId } from "@kyozo/api/domain/Ids"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import * as Uploads from "@kyozo/core/sources/Uploads"
import * as Workspaces from "@kyozo/core/sources/Workspaces"
import { Effect } from "effect"

export class Sources extends Effect.Service<Sources>()("@kyozo/server/application/Sources", {
  effect: Effect.gen(function* () {
    const config = yield* KyozoConfig
    const root = config.workspacesRoot
    yield* Effect.promise(() => fs.promises.mkdir(root, { recursive: true }).catch(() => undefined))
    const realRoot = yield* Effect.promise(() => fs.promises.realpath(root).catch(() => root))

    const teamRoot = (teamId: TeamId) => path.join(realRoot, teamId)

    /** A path source resolved inside the team's folder, as `<teamId>/<folder>` relative to the root. */
    const resolvePath = (teamId: TeamId, requested: string): Effect.Effect<string, InvalidSource> =>
      Effect.gen(function* () {
        yield* Effect.promise(() =>
          fs.promises.mkdir(teamRoot(teamId), { recursive: true }).catch(() => undefined)
        )
        const real = yield* Workspaces.resolveInside(teamRoot(teamId), requested).pipe(
          Effect.mapError(
            () =>
              new InvalidSource({
                source: requested,
                reason:
                  "no such folder in your team's workspace (put it under <workspaces root>/<your team id>/, or upload it)"
              })
          )
        )
        return path.relative(realRoot, real).split(path.sep).join("/")
      })

    /** The source as the deployer takes it for the team. */
    const resolve = (teamId: TeamId, source: DeploySource): Effect.Effect<DeploySource, InvalidSource> =>
      source._tag === "Upload"
        ? Effect.succeed(source)
        : Effect.map(resolvePath(teamId, source.path), (p) => ({ _tag: "Path" as const, path: p }))

    /** A stored source (already resolved once): kept when it is the team's, resolved again otherwise. */
    const resolveStored = (
      teamId: TeamId,
      source: DeploySource
    ): Effect.Effect<DeploySource, InvalidSource> =>
      source._tag === "Path" && source.path.startsWith(`${teamId}/`)
        ? Effect.succeed(source)
        : resolve(teamId, source)

    /** The folder on this server of a team's source (for detection). */
    const folderOf = (teamId: TeamId, source: DeploySource): Effect.Effect<string, InvalidSource> =>
      source._tag === "Upload"
        ? Effect.suspend(() => {
            const dir = Uploads.uploadDir(config.dataDir, teamId, source.uploadId)
            return dir !== undefined && fs.existsSync(dir)
              ? Effect.succeed(dir)
              : Effect.fail(
                  new InvalidSource({ source: source.uploadId, reason: "no such upload in your team" })
                )
          })
        : Effect.map(resolvePath(teamId, source.path), (p) => path.join(realRoot, p))

    /** How a folder of the team is shown to it: relative to its workspace, or its upload id; never absolute. */
    const display = (teamId: TeamId, folder: string): string => {
      const inTeam = path.relative(teamRoot(teamId), folder)
      if (!inTeam.startsWith("..") && !path.isAbsolute(inTeam)) return inTeam === "" ? "." : inTeam
      const inUploads = path.relative(Uploads.teamUploadsDir(config.dataDir, teamId), folder)
      if (!inUploads.startsWith("..") && !path.isAbsolute(inUploads)) return `upload:${inUploads}`
      const inRoot = path.relative(realRoot, folder)
      if (!inRoot.startsWith("..") && !path.isAbsolute(inRoot)) return inRoot
      return path.basename(folder)
    }

    return { root: realRoot, teamRoot, resolve, resolveStored, folderOf, display } as const
  })
}) {}

/**
 * Uploads, the rules around the upload door: an upload needs the deploy right: member or above, or
 * a per-service `deploy` grant on the service the upload names (`POST /v1/uploads?service=<name>`,
 * which `kyozo deploy` sends; the deploy that uses the upload is checked again for that service);
 * a team's stored uploads are capped (`KYOZO_UPLOAD_QUOTA_MB`, default 2048 MB per team); uploads
 * that no live service was deployed from are removed once older than `KYOZO_UPLOAD_TTL`
 * (default 1 hour) by a pass every `KYOZO_UPLOAD_SWEEP_INTERVAL` (default 5 minutes).
 *
 * Each upload's size is written next to it (`<uploadId>.size`) when it is stored, so the quota
 * check sums small files instead of walking folders.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"

import * as SqlClient from "@effect/sql/SqlClient"
import type { TeamId } from "@kyozo/api/domain/Ids"
import { roleAtLeast } from "@kyozo/api/domain/Membership"
import { CurrentPrincipal, Forbidden } from "@kyozo/api/KyozoRpc"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import * as Uploads from "@kyozo/core/sources/Uploads"
import { Data, Duration, Effect, Schedule, Schema } from "effect"

import { Policy } from "../Policy.js"

export class UploadQuotaExceeded extends Data.TaggedError("UploadQuotaExceeded")<{
  readonly limitBytes: number
  readonly usedBytes: number
}> {
  override get message() {
    return `Your team's uploads would take more than ${Math.round(this.limitBytes / 1024 ** 2)} MB (${Math.round(this.usedBytes / 1024 ** 2)} MB used): deploy or wait for unused uploads to expire.`
  }
}

const sizeFile = (dataDir: string, teamId: TeamId, uploadId: string) =>
  path.join(Uploads.teamUploadsDir(dataDir, teamId), `${uploadId}.size`)

export class UploadPolicy extends Effect.Service<UploadPolicy>()("@kyozo/server/application/UploadPolicy", {
  scoped: Effect.gen(function* () {
    const config = yield* KyozoConfig
    const sql = yield* SqlClient.SqlClient
    const quotaMb = config.uploadQuotaMb
    const ttl = config.uploadTtl
    const sweepEvery = config.uploadSweepInterval
    const limitBytes = quotaMb * 1024 * 1024
    const access = yield* Policy

    /**
     * The deploy right: member and above for any upload; below that, only for the service the
     * upload names, with a `deploy` grant on it (Policy.requireDeploy, the rule a deploy follows).
     */
    const requireUpload = (principal: CurrentPrincipal["Type"], service: string | undefined) =>
      roleAtLeast(principal.role, "member")
        ? Effect.void
        : service === undefined
          ? Effect.fail(
              new Forbidden({
                operation:
                  "upload folders for the whole team (with a deploy grant on a service, name it: POST /v1/uploads?service=<name>)",
                role: principal.role,
                required: "member"
              })
            )
          : access.requireDeploy(service).pipe(
              Effect.asVoid,
              Effect.mapError(
                () =>
                  new Forbidden({
                    operation: `upload a folder for ${service} (it needs a deploy grant on that service)`,
                    role: principal.role,
                    required: "member"
                  })
              ),
              Effect.provideService(CurrentPrincipal, principal)
            )

    /** Bytes the team's stored uploads take. */
    const usedBytes = (teamId: TeamId) =>
      Effect.promise(async () => {
        const dir = Uploads.teamUploadsDir(config.dataDir, teamId)
        const names = await fs.readdir(dir).catch(() => [] as Array<string>)
        let total = 0
        for (const n of names)
          if (n.endsWith(".size"))
            total += Number(await fs.readFile(path.join(dir, n), "utf8").catch(() => "0")) || 0
        return total
      })

    /** Fails when `adding` more bytes would take the team over its upload quota. */
    const checkQuota = (teamId: TeamId, adding: number) =>
      Effect.flatMap(usedBytes(teamId), (used) =>
        used + adding > limitBytes
          ? Effect.fail(new UploadQuotaExceeded({ limitBytes, usedBytes: used }))
          : Effect.void
      )

    const recordSize = (teamId: TeamId, uploadId: string, bytes: number) =>
      Effect.promise(() =>
        fs.writeFile(sizeFile(config.dataDir, teamId, uploadId), String(bytes)).catch(() => undefined)
      )

    // Uploads live in this process's data dir (one process holds it: the lock file), so one lock
    // here makes "check, then count it" atomic for every upload of every team.
    const ledger = yield* Effect.makeSemaphore(1)

    /**
     * Counts a stored upload against the quota, atomically: the check and the size record happen
     * under one lock, so concurrent uploads at the limit cannot all pass (the check before the
     * body is only a fast refusal).
     */
    const commit = (teamId: TeamId, uploadId: string, bytes: number) =>
      ledger.withPermits(1)(Effect.zipRight(checkQuota(teamId, bytes), recordSize(teamId, uploadId, bytes)))

    const InUse = Schema.Array(Schema.Struct({ team_id: Schema.String, upload_id: Schema.String }))

    /** Removes uploads older than the TTL that no live service was deployed from. */
    const sweep = Effect.gen(function* () {
      const rows =
        yield* sql`SELECT team_id, source->>'uploadId' AS upload_id FROM container_service_instances
                              WHERE deleted_at IS NULL AND source->>'type' = 'upload'`
      const inUse = new Set(
        (yield* Schema.decodeUnknown(InUse)(rows)).map((r) => `${r.team_id}/${r.upload_id}`)
      )
      const root = Uploads.uploadsRoot(config.dataDir)
      const cutoff = Date.now() - Duration.toMillis(ttl)
      return yield* Effect.promise(async () => {
        let removed = 0
        for (const team of await fs.readdir(root).catch(() => [] as Array<string>)) {
          const dir = path.join(root, team)
          for (const name of await fs.readdir(dir).catch(() => [] as Array<string>)) {
            if (!Uploads.isUploadId(name) || inUse.has(`${team}/${name}`)) continue
            const stat = await fs.stat(path.join(dir, name)).catch(() => undefined)
            if (!stat || stat.mtimeMs > cutoff) continue
            await fs.rm(path.join(dir, name), { recursive: true, force: true }).catch(() => undefined)
            await fs.rm(path.join(dir, `${name}.size`), { force: true }).catch(() => undefined)
            removed++
          }
        }
        return removed
      })
    })

    yield* sweep.pipe(
      Effect.tap((n) =>
        n > 0 ? Effect.logInfo(`upload expiry: removed ${n} unused upload(s)`) : Effect.void
      ),
      Effect.catchAllCause((cause) => Effect.logWarning("upload expiry pass failed", cause)),
      Effect.repeat(Schedule.spaced(sweepEvery)),
      Effect.delay(Duration.seconds(1)),
      Effect.forkScoped
    )

    return { requireUpload, checkQuota, commit, sweep, limitBytes } as const
  }),
  dependencies: [Policy.Default]
}) {}

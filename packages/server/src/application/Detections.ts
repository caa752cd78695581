/**
 * Detections, what Kyozo found in a folder: the team's stored detections (every member reads them;
 * another team's is DetectionNotFound), and a dry-run detection of a source of the team's, which
 * deploys nothing. A detection's folder is shown as the team sees it, never as the server's path.
 */
import type { DeploySource, InvalidSource, ServiceNotFound } from "@kyozo/api/domain/Deploy"
import { DetectionId, type ServiceId } from "@kyozo/api/domain/Ids"
import { type DetectError, type TopologyResult } from "@kyozo/api/domain/Topology"
import type { TopologyDetection } from "@kyozo/api/domain/TopologyDetection"
import { CurrentPrincipal } from "@kyozo/api/KyozoRpc"
import { toResult } from "@kyozo/core/build/topology/Topology"
import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
import { TopologyRepo } from "@kyozo/core/store/TopologyRepo"
import { Data, Effect, Option } from "effect"

import { Policy } from "../Policy.js"
import { Sources } from "./Sources.js"
import { repository } from "./Storage.js"

export class DetectionNotFound extends Data.TaggedError("DetectionNotFound")<{
  readonly detectionId: string
}> {
  override get message() {
    return "No such detection in your team: list them with GET /v1/detections."
  }
}

/** A stored detection with its folder as the team sees it. */
export interface DetectionView {
  readonly id: string
  readonly serviceId: ServiceId | null
  /** Relative to the team's workspace, or `upload:<id>`; never the server's absolute path. */
  readonly rootPath: string
  readonly result: unknown
  readonly detectedAt: Date
}

export class Detections extends Effect.Service<Detections>()("@kyozo/server/application/Detections", {
  effect: Effect.gen(function* () {
    const topology = yield* repository(TopologyRepo)
    const policy = yield* Policy
    const sources = yield* Sources

    const view = (d: TopologyDetection): DetectionView => ({
      id: d.id,
      serviceId: d.serviceId,
      rootPath: sources.display(d.teamId, d.rootPath),
      result: d.result,
      detectedAt: d.detectedAt
    })

    /** The team's detections, newest first, optionally of one service (id or name). */
    const list = (
      options: { readonly service?: string | undefined; readonly limit?: number | undefined } = {}
    ): Effect.Effect<ReadonlyArray<DetectionView>, ServiceNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const p = yield* CurrentPrincipal
        const serviceId =
          options.service === undefined ? undefined : (yield* policy.viewService(options.service)).service.id
        const rows = yield* topology.listDetections(p.teamId, {
          limit: options.limit ?? 50,
          ...(serviceId === undefined ? {} : { serviceId })
        })
        return rows.map(view)
      })

    const get = (detectionId: string): Effect.Effect<DetectionView, DetectionNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const p = yield* CurrentPrincipal
        const found = yield* topology.findDetection(p.teamId, DetectionId.make(detectionId))
        if (Option.isNone(found)) return yield* new DetectionNotFound({ detectionId })
        return view(found.value)
      })

    /** What a deploy of this source would run, without deploying anything. */
    const detect = (
      source: DeploySource
    ): Effect.Effect<TopologyResult, DetectError | InvalidSource, CurrentPrincipal> =>
      Effect.flatMap(CurrentPrincipal, (p) => sources.folderOf(p.teamId, source)).pipe(
        Effect.flatMap(detectPlan),
        Effect.map(toResult)
      )

    return { list, get, detect } as const
  }),
  dependencies: [TopologyRepo.Default, Policy.Default, Sources.Default]
}) {}

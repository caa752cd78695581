/**
 * Topology: what detection found in a folder, and the dependency edges between services. Saving a
 * detection replaces the dependencies of the services it names, in one short transaction.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import {
  type DetectionId,
  makeDependencyId,
  makeDetectionId,
  type ServiceId,
  type TeamId
} from "@kyozo/api/domain/Ids"
import { type DependencyCondition, ServiceDependency } from "@kyozo/api/domain/ServiceDependency"
import { TopologyDetection } from "@kyozo/api/domain/TopologyDetection"
import { Effect, type Option } from "effect"

import { clampLimit, jsonb, rowDecoder } from "./SqlRows.js"

/** An edge to another Kyozo service or to a backing service the folder does not define. */
export type NewDependency =
  | {
      readonly serviceId: ServiceId
      readonly dependsOnServiceId: ServiceId
      readonly condition?: DependencyCondition
    }
  | { readonly serviceId: ServiceId; readonly requires: string; readonly condition?: DependencyCondition }

export interface SaveDetection {
  readonly teamId: TeamId
  readonly serviceId?: ServiceId | null
  readonly rootPath: string
  readonly result: unknown
  /** When given, these replace all existing dependencies of the services they name. */
  readonly dependencies?: ReadonlyArray<NewDependency>
}

export class TopologyRepo extends Effect.Service<TopologyRepo>()("@kyozo/core/TopologyRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const detections = rowDecoder(TopologyDetection)
    const dependencies = rowDecoder(ServiceDependency)

    const teamService = (teamId: TeamId, serviceId: ServiceId) =>
      sql`EXISTS (SELECT 1 FROM container_service_instances s WHERE s.id = ${serviceId} AND s.team_id = ${teamId})`

    /**
     * Stores a detection and its dependencies. Edges whose services are not the team's are dropped
     * (the team's scope is enforced in SQL, not trusted from the caller).
     */
    const saveDetection = (
      input: SaveDetection
    ): Effect.Effect<
      { readonly detection: TopologyDetection; readonly dependencies: ReadonlyArray<ServiceDependency> },
      SqlError
    > =>
      Effect.gen(function* () {
        const detection = yield* detections.single(
          sql`INSERT INTO container_topology_detections (id, team_id, service_id, root_path, result)
              VALUES (${makeDetectionId()}, ${input.teamId}, ${input.serviceId ?? null}, ${input.rootPath},
                      ${jsonb(input.result)}::jsonb)
              RETURNING *`
        )
        const edges = input.dependencies ?? []
        const replaced = [...new Set(edges.map((e) => e.serviceId))]
        for (const serviceId of replaced) {
          yield* sql`DELETE FROM container_service_dependencies
                     WHERE service_id = ${serviceId} AND ${teamService(input.teamId, serviceId)}`
        }
        const saved: Array<ServiceDependency> = []
        for (const edge of edges) {
          const target = "dependsOnServiceId" in edge ? edge.dependsOnServiceId : null
          const requires = "requires" in edge ? edge.requires : null
          const targetInTeam = target === null ? sql`TRUE` : teamService(input.teamId, target)
          const row = yield* dependencies.first(
            sql`INSERT INTO container_service_dependencies (id, service_id, depends_on_service_id, requires, condition)
                SELECT ${makeDependencyId()}, ${edge.serviceId}, ${target}, ${requires}, ${edge.condition ?? "service_started"}
                WHERE ${teamService(input.teamId, edge.serviceId)} AND ${targetInTeam}
                RETURNING *`
          )
          if (row._tag === "Some") saved.push(row.value)
        }
        return { detection, dependencies: saved }
      }).pipe(sql.withTransaction, Effect.withSpan("TopologyRepo.saveDetection"))

    /** Newest first, optionally for one service. */
    const listDetections = (
      teamId: TeamId,
      options: { readonly serviceId?: ServiceId; readonly limit?: number } = {}
    ): Effect.Effect<ReadonlyArray<TopologyDetection>, SqlError> =>
      detections.all(
        sql`SELECT * FROM container_topology_detections WHERE team_id = ${teamId}
            ${options.serviceId === undefined ? sql`` : sql`AND service_id = ${options.serviceId}`}
            ORDER BY detected_at DESC, id DESC LIMIT ${clampLimit(options.limit)}`
      )

    /** One detection of the team; none for another team's id. */
    const findDetection = (
      teamId: TeamId,
      id: DetectionId
    ): Effect.Effect<Option.Option<TopologyDetection>, SqlError> =>
      detections.first(
        sql`SELECT * FROM container_topology_detections WHERE id = ${id} AND team_id = ${teamId}`
      )

    const latestDetection = (
      teamId: TeamId,
      serviceId: ServiceId
    ): Effect.Effect<Option.Option<TopologyDetection>, SqlError> =>
      detections.first(
        sql`SELECT * FROM container_topology_detections WHERE team_id = ${teamId} AND service_id = ${serviceId}
            ORDER BY detected_at DESC, id DESC LIMIT 1`
      )

    /** What the service depends on. */
    const listDependencies = (
      teamId: TeamId,
      serviceId: ServiceId
    ): Effect.Effect<ReadonlyArray<ServiceDependency>, SqlError> =>
      dependencies.all(
        sql`SELECT * FROM container_service_dependencies
            WHERE service_id = ${serviceId} AND ${teamService(teamId, serviceId)} ORDER BY created_at, id`
      )

    /** The services that depend on this one. */
    const listDependents = (
      teamId: TeamId,
      serviceId: ServiceId
    ): Effect.Effect<ReadonlyArray<ServiceDependency>, SqlError> =>
      dependencies.all(
        sql`SELECT * FROM container_service_dependencies
            WHERE depends_on_service_id = ${serviceId} AND ${teamService(teamId, serviceId)} ORDER BY created_at, id`
      )

    /** Every edge among the team's services, for a start order over the whole graph. */
    const listTeamDependencies = (
      teamId: TeamId
    ): Effect.Effect<ReadonlyArray<ServiceDependency>, SqlError> =>
      dependencies.all(
        sql`SELECT d.* FROM container_service_dependencies d
            JOIN container_service_instances s ON s.id = d.service_id
            WHERE s.team_id = ${teamId} ORDER BY d.created_at, d.id`
      )

    return {
      saveDetection,
      listDetections,
      findDetection,
      latestDetection,
      listDependencies,
      listDependents,
      listTeamDependencies
    } as const
  })
}) {}

/**
 * Custom domains of services (`service_domains`). The hostname is the primary key: unique across
 * all teams, so two concurrent adds of one name cannot both succeed (the loser sees `taken`).
 * Every team-scoped call checks that the service is the team's and not deleted.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { ServiceId, TeamId } from "@kyozo/api/domain/Ids"
import { ServiceDomain } from "@kyozo/api/domain/ServiceDomain"
import { Effect, Option } from "effect"

import { rowDecoder } from "./SqlRows.js"

/** What an add did: the row (new, or the service's already), or why not. */
export type AddOutcome =
  | { readonly _tag: "Added"; readonly domain: ServiceDomain; readonly created: boolean }
  | { readonly _tag: "Taken" }
  | { readonly _tag: "NoService" }

export class ServiceDomainRepo extends Effect.Service<ServiceDomainRepo>()("@kyozo/core/ServiceDomainRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = rowDecoder(ServiceDomain)

    const inTeam = (teamId: TeamId, serviceId: ServiceId) =>
      sql`EXISTS (SELECT 1 FROM container_service_instances s WHERE s.id = ${serviceId} AND s.team_id = ${teamId} AND s.deleted_at IS NULL)`

    const add = (
      teamId: TeamId,
      serviceId: ServiceId,
      hostname: string
    ): Effect.Effect<AddOutcome, SqlError> =>
      Effect.gen(function* () {
        const inserted = yield* rows.first(
          sql`INSERT INTO service_domains (hostname, service_id, team_id)
              SELECT ${hostname}, ${serviceId}, ${teamId} WHERE ${inTeam(teamId, serviceId)}
              ON CONFLICT (hostname) DO NOTHING
              RETURNING hostname, service_id, created_at`
        )
        if (Option.isSome(inserted)) return { _tag: "Added", domain: inserted.value, created: true } as const
        const existing = yield* rows.first(
          sql`SELECT hostname, service_id, created_at FROM service_domains WHERE hostname = ${hostname}`
        )
        if (Option.isSome(existing)) {
          // Adding a name the service has already is a no-op, not a conflict.
          return existing.value.serviceId === serviceId
            ? ({ _tag: "Added", domain: existing.value, created: false } as const)
            : ({ _tag: "Taken" } as const)
        }
        return { _tag: "NoService" } as const
      }).pipe(Effect.withSpan("ServiceDomainRepo.add"))

    /** True when the service had the name. */
    const remove = (
      teamId: TeamId,
      serviceId: ServiceId,
      hostname: string
    ): Effect.Effect<boolean, SqlError> =>
      sql`DELETE FROM service_domains
          WHERE hostname = ${hostname} AND service_id = ${serviceId} AND team_id = ${teamId}
          RETURNING hostname`.pipe(Effect.map((r) => r.length > 0))

    const listForService = (
      teamId: TeamId,
      serviceId: ServiceId
    ): Effect.Effect<ReadonlyArray<ServiceDomain>, SqlError> =>
      rows.all(
        sql`SELECT hostname, service_id, created_at FROM service_domains
            WHERE service_id = ${serviceId} AND team_id = ${teamId} ORDER BY hostname`
      )

    /** Global, for the route loops: every domain of every service, by service id. */
    const byService = (): Effect.Effect<ReadonlyMap<string, ReadonlyArray<string>>, SqlError> =>
      Effect.map(
        sql<{
          hostname: string
          service_id: string
        }>`SELECT hostname, service_id FROM service_domains ORDER BY hostname`,
        (all) => {
          const out = new Map<string, Array<string>>()
          for (const r of all) {
            const list = out.get(r.service_id) ?? []
            list.push(r.hostname)
            out.set(r.service_id, list)
          }
          return out
        }
      )

    /** One service's names (no team check: for the route loops). */
    const namesOf = (serviceId: string): Effect.Effect<ReadonlyArray<string>, SqlError> =>
      Effect.map(
        sql<{
          hostname: string
        }>`SELECT hostname FROM service_domains WHERE service_id = ${serviceId} ORDER BY hostname`,
        (all) => all.map((r) => r.hostname)
      )

    return { add, remove, listForService, byService, namesOf } as const
  })
}) {}

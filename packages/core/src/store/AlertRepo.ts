/**
 * Alert rules (per team, or per service) and the alerts firing now (`alert_rules`, `alert_states`).
 * A firing alert is a row; `fire` and `resolve` report whether they changed anything, so the
 * evaluator emits exactly one event per transition even when two passes race.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { AlertComparator, AlertMetric } from "@kyozo/api/domain/Alert"
import { randomToken, ServiceId, TeamId } from "@kyozo/api/domain/Ids"
import { Effect, type Option, Schema } from "effect"

import { inJson, rowDecoder } from "./SqlRows.js"

/** Re-exported: the rule's wire values live in the contract (domain/Alert). */
export { AlertComparator, AlertMetric } from "@kyozo/api/domain/Alert"

export class AlertRule extends Schema.Class<AlertRule>("AlertRule")({
  id: Schema.String,
  teamId: TeamId,
  /** Null: the rule applies to every service of the team. */
  serviceId: Schema.NullOr(ServiceId),
  metric: AlertMetric,
  comparator: AlertComparator,
  threshold: Schema.Number,
  durationSeconds: Schema.Int,
  enabled: Schema.Boolean,
  createdAt: Schema.DateFromSelf
}) {}

export class AlertState extends Schema.Class<AlertState>("AlertState")({
  ruleId: Schema.String,
  serviceId: ServiceId,
  firedAt: Schema.DateFromSelf,
  value: Schema.Number
}) {}

export const makeAlertRuleId = (): string => `alr_${randomToken()}`

export interface NewAlertRule {
  readonly teamId: TeamId | string
  readonly serviceId?: ServiceId | string | null
  readonly metric: AlertMetric
  readonly comparator: AlertComparator
  readonly threshold: number
  /** Default 300 (5 minutes). */
  readonly durationSeconds?: number
  readonly enabled?: boolean
}

export interface AlertRulePatch {
  readonly comparator?: AlertComparator
  readonly threshold?: number
  readonly durationSeconds?: number
  readonly enabled?: boolean
}

/** A rule bound to one service it applies to (team rules expand to every live service of the team). */
export interface BoundRule {
  readonly rule: AlertRule
  readonly serviceId: ServiceId
  readonly teamId: TeamId
}

export class AlertRepo extends Effect.Service<AlertRepo>()("@kyozo/core/AlertRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rules = rowDecoder(AlertRule)
    const states = rowDecoder(AlertState)

    const create = (input: NewAlertRule): Effect.Effect<AlertRule, SqlError> =>
      rules.single(
        sql`INSERT INTO alert_rules ${sql.insert({
          id: makeAlertRuleId(),
          team_id: input.teamId,
          service_id: input.serviceId ?? null,
          metric: input.metric,
          comparator: input.comparator,
          threshold: input.threshold,
          duration_seconds: input.durationSeconds ?? 300,
          enabled: input.enabled ?? true
        })} RETURNING *`
      )

    const get = (teamId: TeamId | string, id: string): Effect.Effect<Option.Option<AlertRule>, SqlError> =>
      rules.first(sql`SELECT * FROM alert_rules WHERE team_id = ${teamId} AND id = ${id}`)

    /** The team's rules, service rules included, oldest first. */
    const listByTeam = (teamId: TeamId | string): Effect.Effect<ReadonlyArray<AlertRule>, SqlError> =>
      rules.all(sql`SELECT * FROM alert_rules WHERE team_id = ${teamId} ORDER BY created_at, id`)

    const update = (
      teamId: TeamId | string,
      id: string,
      patch: AlertRulePatch
    ): Effect.Effect<Option.Option<AlertRule>, SqlError> =>
      rules.first(
        sql`UPDATE alert_rules SET
              comparator = COALESCE(${patch.comparator ?? null}, comparator),
              threshold = COALESCE(${patch.threshold ?? null}::double precision, threshold),
              duration_seconds = COALESCE(${patch.durationSeconds ?? null}::integer, duration_seconds),
              enabled = COALESCE(${patch.enabled ?? null}::boolean, enabled)
            WHERE team_id = ${teamId} AND id = ${id} RETURNING *`
      )

    /** Deletes the rule (its firing states go with it); false when there was none. */
    const remove = (teamId: TeamId | string, id: string): Effect.Effect<boolean, SqlError> =>
      Effect.map(
        sql`DELETE FROM alert_rules WHERE team_id = ${teamId} AND id = ${id} RETURNING id`,
        (r) => r.length > 0
      )

    /**
     * The enabled rules that apply to these services: their own rules and their team's rules.
     * Deleted services have none.
     */
    const rulesForServices = (
      serviceIds: ReadonlyArray<ServiceId | string>
    ): Effect.Effect<ReadonlyArray<BoundRule>, SqlError> =>
      serviceIds.length === 0
        ? Effect.succeed([])
        : Effect.map(
            sql<Record<string, unknown> & { bound_service_id: string }>`
              SELECT r.*, s.id AS bound_service_id FROM alert_rules r
              JOIN container_service_instances s
                ON s.team_id = r.team_id AND (r.service_id IS NULL OR r.service_id = s.id)
              WHERE r.enabled AND s.deleted_at IS NULL AND ${inJson(sql, "s.id", serviceIds)}
              ORDER BY r.created_at, r.id, s.id`,
            (rows) => rows.map(({ bound_service_id, ...rule }) => ({ rule, serviceId: bound_service_id }))
          ).pipe(
            Effect.flatMap((bound) =>
              Effect.map(
                rules.all(Effect.succeed(bound.map((b) => b.rule))),
                (decoded): ReadonlyArray<BoundRule> =>
                  decoded.map((rule, i) => ({
                    rule,
                    serviceId: ServiceId.make(bound[i]!.serviceId),
                    teamId: rule.teamId
                  }))
              )
            )
          )

    /** Alerts firing now, for these services (all when omitted). */
    const firing = (
      serviceIds?: ReadonlyArray<ServiceId | string>
    ): Effect.Effect<ReadonlyArray<AlertState>, SqlError> =>
      serviceIds !== undefined && serviceIds.length === 0
        ? Effect.succeed([])
        : states.all(
            sql`SELECT * FROM alert_states
                WHERE ${serviceIds === undefined ? sql`true` : sql.in("service_id", serviceIds)}
                ORDER BY fired_at, rule_id`
          )

    /** Marks the alert firing; true only for the call that made the transition. */
    const fire = (
      ruleId: string,
      serviceId: ServiceId | string,
      value: number,
      at: Date
    ): Effect.Effect<boolean, SqlError> =>
      Effect.map(
        sql`INSERT INTO alert_states (rule_id, service_id, fired_at, value)
            VALUES (${ruleId}, ${serviceId}, ${at}, ${value})
            ON CONFLICT (rule_id, service_id) DO NOTHING RETURNING rule_id`,
        (r) => r.length > 0
      )

    /** Clears the firing alert; the state it had, or none when it was not firing. */
    const resolve = (
      ruleId: string,
      serviceId: ServiceId | string
    ): Effect.Effect<Option.Option<AlertState>, SqlError> =>
      states.first(
        sql`DELETE FROM alert_states WHERE rule_id = ${ruleId} AND service_id = ${serviceId} RETURNING *`
      )

    return { create, get, listByTeam, update, remove, rulesForServices, firing, fire, resolve } as const
  })
}) {}

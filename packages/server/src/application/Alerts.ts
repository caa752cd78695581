/**
 * Alert rules, the rules every front door calls: every member reads the team's rules. A team-wide
 * rule is created, changed and deleted by owners and admins; a rule of one service by whoever holds
 * `manage` on that service (role-implied or granted, Policy). Another team's rule is
 * AlertRuleNotFound like an unknown id, checked before the caller's rights.
 */
import { type AlertComparator, type AlertMetric } from "@kyozo/api/domain/Alert"
import type { ServiceNotFound } from "@kyozo/api/domain/Deploy"
import type { ServiceId } from "@kyozo/api/domain/Ids"
import { CurrentPrincipal, type Forbidden } from "@kyozo/api/KyozoRpc"
import { AlertRepo, type AlertRule } from "@kyozo/core/store/AlertRepo"
import { Data, Effect, Option } from "effect"

import { Policy, requireRole } from "../Policy.js"
import { repository } from "./Storage.js"

export class AlertRuleNotFound extends Data.TaggedError("AlertRuleNotFound")<{
  readonly alertRuleId: string
}> {
  override get message() {
    return "No such alert rule in your team: list them with GET /v1/alert-rules."
  }
}

export interface NewAlertRule {
  /** A service of the team (id or name); absent: every service of the team. */
  readonly serviceId?: string | null | undefined
  readonly metric: AlertMetric
  readonly comparator: AlertComparator
  readonly threshold: number
  readonly durationSeconds?: number | undefined
  readonly enabled?: boolean | undefined
}

export interface AlertRuleChange {
  readonly comparator?: AlertComparator | undefined
  readonly threshold?: number | undefined
  readonly durationSeconds?: number | undefined
  readonly enabled?: boolean | undefined
}

export class Alerts extends Effect.Service<Alerts>()("@kyozo/server/application/Alerts", {
  effect: Effect.gen(function* () {
    const alerts = yield* repository(AlertRepo)
    const policy = yield* Policy

    /** May the caller change rules scoped to `service` (null: the whole team)? The service's id. */
    const requireManage = (
      operation: string,
      service: string | null
    ): Effect.Effect<ServiceId | null, Forbidden | ServiceNotFound, CurrentPrincipal> =>
      service === null
        ? Effect.as(requireRole(operation, "admin"), null)
        : Effect.map(policy.requireService(operation, service, "manage"), (a) => a.service.id)

    /** The team's rules, service rules included, oldest first. */
    const list: Effect.Effect<ReadonlyArray<AlertRule>, never, CurrentPrincipal> = Effect.flatMap(
      CurrentPrincipal,
      (p) => alerts.listByTeam(p.teamId)
    )

    /** A rule of the caller's team. */
    const get = (alertRuleId: string): Effect.Effect<AlertRule, AlertRuleNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const p = yield* CurrentPrincipal
        const found = yield* alerts.get(p.teamId, alertRuleId)
        if (Option.isNone(found)) return yield* new AlertRuleNotFound({ alertRuleId })
        return found.value
      })

    const create = (
      input: NewAlertRule
    ): Effect.Effect<AlertRule, Forbidden | ServiceNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const serviceId = yield* requireManage("manage alert rules", input.serviceId ?? null)
        const p = yield* CurrentPrincipal
        return yield* alerts.create({
          teamId: p.teamId,
          serviceId,
          metric: input.metric,
          comparator: input.comparator,
          threshold: input.threshold,
          ...(input.durationSeconds === undefined ? {} : { durationSeconds: input.durationSeconds }),
          ...(input.enabled === undefined ? {} : { enabled: input.enabled })
        })
      })

    const update = (
      alertRuleId: string,
      change: AlertRuleChange
    ): Effect.Effect<AlertRule, Forbidden | ServiceNotFound | AlertRuleNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        // Existence first, so another team's id is not found whatever the caller's role.
        const rule = yield* get(alertRuleId)
        yield* requireManage("change alert rules", rule.serviceId)
        const updated = yield* alerts.update(rule.teamId, rule.id, {
          ...(change.comparator === undefined ? {} : { comparator: change.comparator }),
          ...(change.threshold === undefined ? {} : { threshold: change.threshold }),
          ...(change.durationSeconds === undefined ? {} : { durationSeconds: change.durationSeconds }),
          ...(change.enabled === undefined ? {} : { enabled: change.enabled })
        })
        if (Option.isNone(updated)) return yield* new AlertRuleNotFound({ alertRuleId })
        return updated.value
      })

    const remove = (
      alertRuleId: string
    ): Effect.Effect<void, Forbidden | ServiceNotFound | AlertRuleNotFound, CurrentPrincipal> =>
      Effect.gen(function* () {
        const rule = yield* get(alertRuleId)
        yield* requireManage("delete alert rules", rule.serviceId)
        const removed = yield* alerts.remove(rule.teamId, rule.id)
        if (!removed) return yield* new AlertRuleNotFound({ alertRuleId })
      })

    return { list, get, create, update, remove } as const
  }),
  dependencies: [AlertRepo.Default, Policy.Default]
}) {}

/** REST `alerts` group (alert rules) over the Alerts application service. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { KyozoHttpApi } from "@kyozo/api/KyozoHttpApi"
import { Effect } from "effect"

import { Alerts } from "../application/Alerts.js"
import { alertRuleDoc, listDoc } from "./Documents.js"
import { alertError } from "./Errors.js"

export const layer = HttpApiBuilder.group(KyozoHttpApi, "alerts", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Alerts
    return handlers
      .handle("listAlertRules", () => Effect.flatMap(app.list, (rows) => listDoc(rows.map(alertRuleDoc))))
      .handle("createAlertRule", ({ payload }) =>
        app.create(payload.data.attributes).pipe(
          Effect.mapError((e) => alertError(e, { pointer: "/data/attributes/serviceId" })),
          Effect.map((rule) => ({ data: alertRuleDoc(rule) }))
        )
      )
      .handle("getAlertRule", ({ path }) =>
        app.get(path.alertRuleId).pipe(
          Effect.mapError((e) => alertError(e)),
          Effect.map((rule) => ({ data: alertRuleDoc(rule) }))
        )
      )
      .handle("updateAlertRule", ({ path, payload }) =>
        app.update(path.alertRuleId, payload.data.attributes).pipe(
          Effect.mapError((e) => alertError(e)),
          Effect.map((rule) => ({ data: alertRuleDoc(rule) }))
        )
      )
      .handle("deleteAlertRule", ({ path }) =>
        app.remove(path.alertRuleId).pipe(Effect.mapError((e) => alertError(e)))
      )
  })
)

/**
 * The application's typed failures as JSON:API errors, one mapping per family, exhaustive. Another
 * team's ids answer 404 exactly like unknown ones, and no text echoes what was asked for.
 */
import type { DeployError, ServiceNotFound } from "@kyozo/api/domain/Deploy"
import type { DomainNotFound, DomainTaken, InvalidDomain } from "@kyozo/api/domain/ServiceDomain"
import type { TargetRefused } from "@kyozo/api/domain/TargetUrl"
import {
  type ApiError,
  apiError,
  Conflict,
  Denied,
  NotFound,
  Unavailable,
  Unprocessable
} from "@kyozo/api/KyozoHttpApi"
import { BadRequest } from "@kyozo/api/KyozoHttpApi"
import type {
  ApiKeyNotFound,
  Forbidden,
  InstanceAdminRequired,
  MemberNotFound,
  TeamNotFound
} from "@kyozo/api/KyozoRpc"
import type { TeamNameTaken } from "@kyozo/core/store/TeamRepo"

import type { AlertRuleNotFound } from "../application/Alerts.js"
import type { DeploymentNotFound, NoStoredSource } from "../application/Deployments.js"
import type { DetectionNotFound } from "../application/Detections.js"
import type {
  AlreadyMember,
  InvitationNotFound,
  LastOwner,
  RoleNotAssignable
} from "../application/Members.js"
import type { NotAMember, PermissionNotFound } from "../application/Permissions.js"
import type { InvalidCursor } from "../application/Services.js"
import type { WebhookNotFound } from "../application/Webhooks.js"

type Source = Parameters<typeof apiError>[5]

export const notFound = (what: string, source?: Source) =>
  apiError(NotFound, 404, "not_found", "Not found", `No such ${what} in your team.`, source)

export const denied = (e: Forbidden) => apiError(Denied, 403, "forbidden", "Forbidden", e.message)

/** Policy failures: Forbidden → 403, ServiceNotFound → 404 (never naming what was asked for). */
export const policyError = (e: Forbidden | ServiceNotFound, source?: Source): NotFound | Denied =>
  e._tag === "Forbidden" ? denied(e) : notFound("service", source)

/** The Deployer's typed failures. */
export const deployError = (e: DeployError): ApiError => {
  switch (e._tag) {
    case "ServiceNotFound":
      return notFound("service")
    case "InvalidSource":
      return apiError(Unprocessable, 422, "invalid_source", "Invalid source", e.message, {
        pointer: "/data/attributes/source"
      })
    case "NothingToDeploy":
    case "DetectError":
      return apiError(Unprocessable, 422, "nothing_to_deploy", "Nothing to deploy", e.message)
    case "DeployFailed":
      return apiError(Unprocessable, 422, "deploy_failed", "Deploy failed", e.message)
    case "NoRollbackTarget":
      return apiError(Conflict, 409, "no_rollback_target", "No rollback target", e.message)
    case "QuotaExceeded":
      return apiError(Conflict, 409, "quota_exceeded", "Quota exceeded", e.message)
    default:
      return runtimeError(e)
  }
}

/** The engine's failures: unavailable (breaker open, daemon gone, timeout) is a 503 to retry later. */
const runtimeError = (e: { readonly _tag: string; readonly message: string }): ApiError =>
  e._tag === "CircuitOpen" || e._tag === "DockerUnavailable" || e._tag === "DockerTimeout"
    ? apiError(Unavailable, 503, "engine_unavailable", "Container engine unavailable", e.message)
    : apiError(Unprocessable, 422, "runtime_error", "Runtime error", e.message)

/** A deploy's failures: the deploy right (403), or the Deployer's. */
export const deployOrPolicyError = (e: Forbidden | DeployError): ApiError =>
  e._tag === "Forbidden" ? denied(e) : deployError(e)

export const deploymentError = (
  e: Forbidden | DeployError | DeploymentNotFound | NoStoredSource
): ApiError => {
  switch (e._tag) {
    case "DeploymentNotFound":
      return notFound("deployment")
    case "NoStoredSource":
      return apiError(
        Unprocessable,
        422,
        "no_source",
        "No source",
        "The service has no stored source to deploy from."
      )
    default:
      return deployOrPolicyError(e)
  }
}

export const invalidCursor = (_: InvalidCursor) =>
  apiError(BadRequest, 400, "invalid_cursor", "Invalid cursor", "page[after] is not a cursor of this list.", {
    parameter: "page[after]"
  })

/** Teams' domain errors: another team is a 404 like an unknown one. */
export const teamError = (
  e: InstanceAdminRequired | TeamNotFound | TeamNameTaken
): NotFound | Denied | Conflict => {
  switch (e._tag) {
    case "TeamNotFound":
      return notFound("team")
    case "InstanceAdminRequired":
      return apiError(Denied, 403, "instance_admin_required", "Instance admin required", e.message)
    case "TeamNameTaken":
      return apiError(Conflict, 409, "team_name_taken", "Team name taken", "A team with this name exists.", {
        pointer: "/data/attributes/name"
      })
  }
}

export const memberError = (
  e: Forbidden | MemberNotFound | RoleNotAssignable | AlreadyMember | LastOwner | InvitationNotFound
): NotFound | Denied | Conflict => {
  switch (e._tag) {
    case "Forbidden":
      return denied(e)
    case "MemberNotFound":
      return notFound("member")
    case "InvitationNotFound":
      return notFound("invitation")
    case "RoleNotAssignable":
      return apiError(
        Denied,
        403,
        "forbidden",
        "Forbidden",
        e.action === "make"
          ? `Your role ${e.callerRole} cannot make a member ${e.role}.`
          : e.action === "change"
            ? `Your role ${e.callerRole} cannot change this member to ${e.role}.`
            : `Your role ${e.callerRole} cannot remove a member who is ${e.role}.`,
        e.action === "remove" ? undefined : { pointer: "/data/attributes/role" }
      )
    case "AlreadyMember":
      return apiError(
        Conflict,
        409,
        "already_member",
        "Already a member",
        "This user is already a member; change the role with PATCH."
      )
    case "LastOwner":
      return apiError(Conflict, 409, "last_owner", "Last owner", "A team keeps at least one owner.")
  }
}

export const apiKeyError = (e: Forbidden | MemberNotFound | ApiKeyNotFound): NotFound | Denied =>
  e._tag === "Forbidden" ? denied(e) : e._tag === "MemberNotFound" ? notFound("member") : notFound("API key")

export const webhookError = (e: Forbidden | WebhookNotFound): NotFound | Denied =>
  e._tag === "Forbidden" ? denied(e) : notFound("webhook")

export const webhookCreateError = (e: Forbidden | TargetRefused): Denied | Unprocessable =>
  e._tag === "Forbidden"
    ? denied(e)
    : apiError(Unprocessable, 422, "webhook_target_refused", "Webhook target refused", e.message, {
        pointer: "/data/attributes/url"
      })

/** `source` points at the field naming the service, when the request named one. */
export const alertError = (
  e: Forbidden | ServiceNotFound | AlertRuleNotFound,
  source?: Source
): NotFound | Denied => (e._tag === "AlertRuleNotFound" ? notFound("alert rule") : policyError(e, source))

export const permissionError = (
  e: Forbidden | ServiceNotFound | NotAMember | PermissionNotFound
): NotFound | Denied | Unprocessable => {
  switch (e._tag) {
    case "NotAMember":
      return apiError(
        Unprocessable,
        422,
        "not_a_member",
        "Not a member",
        "Grants go to members of your team.",
        {
          pointer: "/data/attributes/userId"
        }
      )
    case "PermissionNotFound":
      return notFound("permission")
    default:
      return policyError(e)
  }
}

export const detectionError = (e: ServiceNotFound | DetectionNotFound): NotFound =>
  e._tag === "DetectionNotFound" ? notFound("detection") : notFound("service")

/** Custom domains: a name taken anywhere is 409 (never saying by whom), a bad one 422. */
export const domainError = (
  e: Forbidden | ServiceNotFound | InvalidDomain | DomainTaken | DomainNotFound
): NotFound | Denied | Conflict | Unprocessable => {
  switch (e._tag) {
    case "DomainTaken":
      return apiError(Conflict, 409, "domain_taken", "Domain taken", e.message, {
        pointer: "/data/attributes/hostname"
      })
    case "InvalidDomain":
      return apiError(
        Unprocessable,
        422,
        `invalid_domain_${e.reason.replace(/-/g, "_")}`,
        "Invalid domain",
        e.message,
        {
          pointer: "/data/attributes/hostname"
        }
      )
    case "DomainNotFound":
      return apiError(NotFound, 404, "not_found", "Not found", e.message, { parameter: "hostname" })
    default:
      return policyError(e)
  }
}

/**
 * An API key as stored: the visible prefix and metadata. The key itself is never stored and the
 * hash is kept out of this model so it cannot leak through an API response.
 */
import { Schema } from "effect"

import { ApiKeyId, TeamId, UserId } from "./Ids.js"

export class ApiKey extends Schema.Class<ApiKey>("ApiKey")({
  id: ApiKeyId,
  teamId: TeamId,
  userId: UserId,
  name: Schema.String,
  /** Visible part of the key, e.g. "kz_ab12cd34"; unique, used to look the key up. */
  prefix: Schema.String,
  createdAt: Schema.DateFromSelf,
  expiresAt: Schema.NullOr(Schema.DateFromSelf),
  revokedAt: Schema.NullOr(Schema.DateFromSelf),
  lastUsedAt: Schema.NullOr(Schema.DateFromSelf)
}) {
  /** Usable now: not revoked and not expired. */
  isActive(now: Date): boolean {
    return this.revokedAt === null && (this.expiresAt === null || this.expiresAt.getTime() > now.getTime())
  }
}

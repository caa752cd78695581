/** A person who signs in; belongs to teams through memberships. */
import { Schema } from "effect"

import { UserId } from "./Ids.js"

export class User extends Schema.Class<User>("User")({
  id: UserId,
  email: Schema.String,
  name: Schema.String,
  /** May create teams, change quotas, read /metrics and make others instance admins. */
  instanceAdmin: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  createdAt: Schema.DateFromSelf
}) {}

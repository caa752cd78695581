/** A team: the unit of ownership, quotas and isolation (one Docker network per team). */
import { Schema } from "effect"

import { TeamId } from "./Ids.js"

export class Team extends Schema.Class<Team>("Team")({
  id: TeamId,
  name: Schema.String,
  quotaServices: Schema.Int,
  quotaCpuMillis: Schema.Int,
  quotaMemoryMb: Schema.Int,
  createdAt: Schema.DateFromSelf
}) {}

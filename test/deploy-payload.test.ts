/** The deploy workflow's payload is stored as JSON: a planned service comes back exactly as detection made it. */
import * as fs from "node:fs"
import * as path from "node:path"

import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
import { DeployPayload } from "@kyozo/workers/deploy/DeployWorkflow"
import { Effect, Schema } from "effect"
import { describe, expect, it } from "vitest"

const FIX = path.resolve(import.meta.dirname, "fixtures/detect")

describe("deploy payload", () => {
  it("every planned service of the detection fixtures round-trips through the stored JSON", async () => {
    const folders = fs.readdirSync(FIX).filter((f) => fs.statSync(path.join(FIX, f)).isDirectory())
    let checked = 0
    for (const folder of folders) {
      const plan = await Effect.runPromise(
        detectPlan(path.join(FIX, folder)).pipe(Effect.orElseSucceed(() => ({ root: "", services: [] })))
      )
      for (const planned of plan.services) {
        const payload = {
          teamId: "team_x",
          serviceId: "svc_x",
          deploymentId: "dep_x",
          image: null,
          root: plan.root,
          planned,
          aliases: [planned.service.name]
        }
        const stored = JSON.parse(JSON.stringify(Schema.encodeUnknownSync(DeployPayload)(payload)))
        expect(Schema.decodeUnknownSync(DeployPayload)(stored).planned).toEqual(
          JSON.parse(JSON.stringify(planned))
        )
        checked++
      }
    }
    // Most fixtures hold at least one deployable service, with build hints.
    expect(checked).toBeGreaterThan(folders.length / 2)
  })
})

/**
 * The custom-domain table on PGlite and PostgreSQL: a name is one service's across all teams even
 * when adds race (the primary key decides), adds and removals are team-scoped, and a service's
 * soft deletion frees its names (the trigger of migration 0010).
 */
import { expect } from "@effect/vitest"
import { randomToken } from "@kyozo/api/domain/Ids"
import { ServiceDomainRepo } from "@kyozo/core/store/ServiceDomainRepo"
import { ServiceRepo } from "@kyozo/core/store/ServiceRepo"
import { TeamRepo } from "@kyozo/core/store/TeamRepo"
import { Effect, Layer } from "effect"

import { describeEachDatabase } from "./support/database.js"

const Repos = Layer.mergeAll(TeamRepo.Default, ServiceRepo.Default, ServiceDomainRepo.Default)

describeEachDatabase("service domains", (it) => {
  it.layer(Layer.fresh(Repos))((it) => {
    it.effect("one service per name across teams, team-scoped changes, freed on deletion", () =>
      Effect.gen(function* () {
        const teams = yield* TeamRepo
        const services = yield* ServiceRepo
        const domains = yield* ServiceDomainRepo
        const tag = randomToken(8)
        const a = yield* teams.create({ name: `dom-a-${tag}` })
        const b = yield* teams.create({ name: `dom-b-${tag}` })
        const web = yield* services.create({ teamId: a.id, name: "web", desiredState: "running" })
        const rival = yield* services.create({ teamId: b.id, name: "rival", desiredState: "running" })
        const name = `shop-${tag}.example.test`

        // Ten concurrent adds of one fresh name by both teams: exactly one service gets it.
        const race = yield* Effect.all(
          Array.from({ length: 10 }, (_, i) =>
            i % 2 === 0 ? domains.add(a.id, web.id, name) : domains.add(b.id, rival.id, name)
          ),
          { concurrency: "unbounded" }
        )
        const winners = new Set(race.flatMap((r) => (r._tag === "Added" ? [r.domain.serviceId] : [])))
        expect(winners.size).toBe(1)
        expect(race.filter((r) => r._tag === "Added" && r.created)).toHaveLength(1)
        const winner = [...winners][0]!
        const [owner, ownService, other, otherService] =
          winner === web.id ? [a, web, b, rival] : [b, rival, a, web]
        expect(race.filter((r) => r._tag === "Taken").length).toBeGreaterThan(0)
        expect((yield* domains.add(other.id, otherService.id, name))._tag).toBe("Taken")

        // Another team's service: no add, no removal, nothing listed.
        expect((yield* domains.add(other.id, ownService.id, `x-${tag}.example.test`))._tag).toBe("NoService")
        expect(yield* domains.remove(other.id, ownService.id, name)).toBe(false)
        expect(yield* domains.listForService(other.id, ownService.id)).toEqual([])
        expect((yield* domains.listForService(owner.id, ownService.id)).map((d) => d.hostname)).toEqual([
          name
        ])
        expect((yield* domains.byService()).get(ownService.id)).toEqual([name])

        // Soft deletion of the owning service frees the name for the other team.
        expect(yield* services.softDelete(owner.id, ownService.id)).toBe(true)
        expect(yield* domains.namesOf(ownService.id)).toEqual([])
        const taken = yield* domains.add(other.id, otherService.id, name)
        expect(taken).toMatchObject({ _tag: "Added", created: true })
        expect(yield* domains.remove(other.id, otherService.id, name)).toBe(true)
        expect(yield* domains.namesOf(otherService.id)).toEqual([])
      })
    )
  })
})

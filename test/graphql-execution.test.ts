/**
 * How GraphQL resolvers run application effects (graphql/Execution): typed failures become GraphQL
 * errors with a stable code and a text that names no id; a defect becomes an error that the
 * endpoint masks, and the caller's principal is the one provided.
 */
import { ServiceNotFound } from "@kyozo/api/domain/Deploy"
import type { ApiKeyId, TeamId, UserId } from "@kyozo/api/domain/Ids"
import { CurrentPrincipal, Forbidden, type Principal } from "@kyozo/api/KyozoRpc"
import { InvalidCursor } from "@kyozo/server/application/Services"
import { makeRun, toGraphQLError } from "@kyozo/server/graphql/Execution"
import { Effect, Runtime } from "effect"
import { describe, expect, it } from "vitest"

const principal: Principal = {
  userId: "usr_1" as UserId,
  teamId: "team_1" as TeamId,
  role: "viewer",
  keyId: "key_1" as ApiKeyId
}
const run = makeRun(Runtime.defaultRuntime, principal)

describe("graphql/Execution", () => {
  it("provides the request's principal", async () => {
    expect(await run(Effect.map(CurrentPrincipal, (p) => p.teamId))).toBe("team_1")
  })

  it("turns NotFound failures into NOT_FOUND errors that name no id", async () => {
    const error = await run(Effect.fail(new ServiceNotFound({ service: "svc_secret_other_team" }))).catch(
      (e: unknown) => e
    )
    // (The test imports no graphql of its own: a GraphQLError is known by its name and extensions.)
    expect((error as Error).name).toBe("GraphQLError")
    expect((error as any).extensions.code).toBe("NOT_FOUND")
    expect((error as Error).message).toBe("No such service in your team.")
    expect(JSON.stringify(error)).not.toContain("svc_secret")
  })

  it("says Forbidden and bad cursors plainly", () => {
    const forbidden = toGraphQLError(new Forbidden({ operation: "read", role: "viewer", required: "member" }))
    expect(forbidden.extensions["code"]).toBe("FORBIDDEN")
    const cursor = toGraphQLError(new InvalidCursor({ after: "svc_secret" }))
    expect(cursor.extensions).toEqual({ code: "BAD_USER_INPUT", argumentName: "after" })
    expect(cursor.message).not.toContain("svc_secret")
  })

  it("rejects a defect with a plain Error (masked by the endpoint), not with its text", async () => {
    const error = await run(Effect.die(new Error("db password is hunter2"))).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    expect((error as Error).name).not.toBe("GraphQLError")
    expect(String(error)).not.toContain("hunter2")
  })
})

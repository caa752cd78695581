/**
 * In-process wake-ups for readers of the event log: `DeploymentEventRepo` publishes the team id of
 * every event it appends. Readers treat a notice only as "look again" and read the rows from the
 * table, so a dropped notice (sliding buffer, slow reader) never loses an event: the next notice or
 * the reader's fallback poll fetches everything after its cursor.
 */
import type { TeamId } from "@kyozo/api/domain/Ids"
import { Effect, PubSub, type Queue, type Scope } from "effect"

export class DeploymentEventBus extends Effect.Service<DeploymentEventBus>()(
  "@kyozo/core/DeploymentEventBus",
  {
    scoped: Effect.gen(function* () {
      // Sliding: a slow subscriber loses old notices, never blocks the writer (the rows stay in the table).
      const hub = yield* Effect.acquireRelease(PubSub.sliding<TeamId>(256), PubSub.shutdown)
      return {
        publish: (teamId: TeamId): Effect.Effect<void> => Effect.asVoid(PubSub.publish(hub, teamId)),
        /** Notices published after this subscription was taken. */
        subscribe: PubSub.subscribe(hub) as Effect.Effect<Queue.Dequeue<TeamId>, never, Scope.Scope>
      } as const
    })
  }
) {}

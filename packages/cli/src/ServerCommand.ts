/**
 * `kyozo server`: runs the Kyozo server in this process (same as `pnpm start`): the server's own
 * built bundle, loaded on use (packages/server/bin builds it when missing), so the CLI bundle does
 * not carry the server and every other command stays fast.
 */
import * as Command from "@effect/cli/Command"
import { Effect } from "effect"

// packages/cli/src (tsx) and packages/cli/dist (bundle) are both two levels below packages/.
const serverBin = new URL("../../server/bin/kyozo-server.mjs", import.meta.url)

export const serverCommand = Command.make("server", {}, () =>
  // The server runs under its own NodeRuntime.runMain (signals, exit code); this command only waits.
  Effect.promise(() => import(serverBin.href)).pipe(Effect.zipRight(Effect.never))
).pipe(Command.withDescription("Run the Kyozo server in this process"))

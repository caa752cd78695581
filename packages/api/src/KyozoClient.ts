/**
 * A typed client of the Kyozo RPC API: `RpcClient.make(KyozoRpc)` over HTTP with NDJSON
 * serialization (streams arrive line by line), the bearer key sent on every request.
 *
 *   const program = Effect.flatMap(KyozoClient, (kyozo) => kyozo.ListServices())
 *   program.pipe(Effect.provide(KyozoClient.layer({ url: "http://127.0.0.1:4040", token })))
 *
 * This module imports the RPC contract and @effect/rpc only when a layer is built: the `kyozo`
 * command line imports the tag at start, and `kyozo --version` must not pay for the whole contract.
 */
import type { RpcClient } from "@effect/rpc"
import type { RpcGroup } from "@effect/rpc"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import { Context, Effect, Layer } from "effect"

import type { KyozoRpc } from "./KyozoRpc.js"

export interface ClientOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:4040` (the RPC endpoint is `<url>/rpc`). */
  readonly url: string
  /** An API key `kz_<prefix>_<secret>`. */
  readonly token: string
}

export type KyozoClientShape = RpcClient.RpcClient<RpcGroup.Rpcs<typeof KyozoRpc>, RpcClientError>

const load = Effect.promise(() => import("./internal/KyozoClientLayer.js"))

export class KyozoClient extends Context.Tag("@kyozo/api/KyozoClient")<KyozoClient, KyozoClientShape>() {
  static readonly layer = (options: ClientOptions): Layer.Layer<KyozoClient> =>
    Layer.unwrapEffect(Effect.map(load, (m) => m.clientLayer(KyozoClient, options)))
}

export const rpcUrl = (baseUrl: string): string => `${baseUrl.replace(/\/+$/, "")}/rpc`

/** The HTTP protocol with the bearer key; exported for callers that build their own client. */
export const protocol = (options: ClientOptions): Layer.Layer<RpcClient.Protocol> =>
  Layer.unwrapEffect(Effect.map(load, (m) => m.protocol(rpcUrl(options.url), options.token)))

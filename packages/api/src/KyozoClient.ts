/**
 * A typed client of the Kyozo RPC API: `RpcClient.make(KyozoRpc)` over HTTP with NDJSON
 * serialization (streams arrive line by line), the bearer key sent on every request.
 *
 *   const program = Effect.flatMap(KyozoClient, (kyozo) => kyozo.ListServices())
 *   program.pipe(Effect.provide(KyozoClient.layer({ url: "http://127.0.0.1:4040", token })))
 */
import { FetchHttpClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { RpcClient, RpcSerialization } from "@effect/rpc"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import type { RpcGroup } from "@effect/rpc"
import { Context, Layer } from "effect"
import { KyozoRpc } from "./KyozoRpc.js"

export interface ClientOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:4040` (the RPC endpoint is `<url>/rpc`). */
  readonly url: string
  /** An API key `kz_<prefix>_<secret>`. */
  readonly token: string
}

export type KyozoClientShape = RpcClient.RpcClient<RpcGroup.Rpcs<typeof KyozoRpc>, RpcClientError>

export class KyozoClient extends Context.Tag("@kyozo/api/KyozoClient")<KyozoClient, KyozoClientShape>() {
  static readonly layer = (options: ClientOptions): Layer.Layer<KyozoClient> =>
    Layer.scoped(KyozoClient, RpcClient.make(KyozoRpc)).pipe(Layer.provide(protocol(options)))
}

export const rpcUrl = (baseUrl: string): string => `${baseUrl.replace(/\/+$/, "")}/rpc`

/** The HTTP protocol with the bearer key; exported for callers that build their own client. */
export const protocol = (options: ClientOptions): Layer.Layer<RpcClient.Protocol> =>
  RpcClient.layerProtocolHttp({
    url: rpcUrl(options.url),
    transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(options.token))
  }).pipe(Layer.provide([RpcSerialization.layerNdjson, FetchHttpClient.layer]))

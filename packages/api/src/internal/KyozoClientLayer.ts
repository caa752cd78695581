/** The heavy half of KyozoClient: the RPC client over HTTP + NDJSON, loaded when a layer is built. */
// Module paths, not the package indexes: the CLI bundle then carries only the client side.
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as RpcClient from "@effect/rpc/RpcClient"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import { type Context, Layer } from "effect"

import { KyozoRpc } from "../KyozoRpc.js"

type Shape = RpcClient.RpcClient<RpcGroup.Rpcs<typeof KyozoRpc>, RpcClientError>

export const protocol = (url: string, token: string): Layer.Layer<RpcClient.Protocol> =>
  RpcClient.layerProtocolHttp({
    url,
    transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(token))
  }).pipe(Layer.provide([RpcSerialization.layerNdjson, FetchHttpClient.layer]))

export const clientLayer = <I>(
  tag: Context.Tag<I, Shape>,
  options: { readonly url: string; readonly token: string }
): Layer.Layer<I> =>
  Layer.scoped(tag, RpcClient.make(KyozoRpc)).pipe(
    Layer.provide(protocol(`${options.url.replace(/\/+$/, "")}/rpc`, options.token))
  )

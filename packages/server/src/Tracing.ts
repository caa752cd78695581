/**
 * Tracing over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard variable: a base
 * URL, spans go to `<endpoint>/v1/traces`). Unset or empty: no tracer is installed, so spans stay
 * Effect's no-export default and cost nothing beyond that. `OtlpTracer` batches spans and posts
 * them as OTLP JSON through an HttpClient; it needs no OpenTelemetry SDK. The exporter modules
 * (and the protobuf code they pull in) load only when tracing is on: they cost an idle server
 * tens of megabytes otherwise.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { KyozoConfig } from "@kyozo/core/KyozoConfig"
import { Duration, Effect, Either, Layer, Option } from "effect"

// A bad value elsewhere in the configuration leaves tracing off: the server's start reports it.
export const endpointConfig = Effect.map(
  Effect.either(Effect.provide(KyozoConfig, KyozoConfig.Default)),
  Either.match({ onLeft: () => Option.none<string>(), onRight: (c) => Option.fromNullable(c.otelEndpoint) })
)

/** `<endpoint>/v1/traces`, or none when tracing is off. */
export const tracesUrl = (endpoint: Option.Option<string>): Option.Option<string> =>
  Option.filter(endpoint, (e) => e.trim() !== "").pipe(
    Option.map((e) => `${e.trim().replace(/\/+$/, "")}/v1/traces`)
  )

export const layer: Layer.Layer<never, never, never> = Layer.unwrapEffect(
  Effect.gen(function* () {
    const url = tracesUrl(yield* endpointConfig)
    if (Option.isNone(url)) return Layer.empty
    yield* Effect.logInfo(`tracing: exporting spans to ${url.value}`)
    const [OtlpTracer, OtlpSerialization] = yield* Effect.promise(() =>
      Promise.all([
        import("@effect/opentelemetry/OtlpTracer"),
        import("@effect/opentelemetry/OtlpSerialization")
      ])
    )
    return OtlpTracer.layer({
      url: url.value,
      resource: { serviceName: "kyozo" },
      exportInterval: Duration.seconds(2),
      // Spans still buffered at shutdown get this long to leave.
      shutdownTimeout: Duration.seconds(2)
    }).pipe(Layer.provide(OtlpSerialization.layerJson), Layer.provide(FetchHttpClient.layer))
  })
)

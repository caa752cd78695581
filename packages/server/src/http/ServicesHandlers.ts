/**
 * REST `services` group over the Services and Deployments application services. A page of the
 * service list is encoded once and answered from memory while no service changes (the Services
 * cache holds the page; its encoded answer is kept beside it, keyed by the request and the edge's
 * host URLs).
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type { DeploySource } from "@kyozo/api/domain/Deploy"
import type { ServiceId } from "@kyozo/api/domain/Ids"
import type { ServiceInstance } from "@kyozo/api/domain/ServiceInstance"
import { JSON_API, KyozoHttpApi, ServiceCollection } from "@kyozo/api/KyozoHttpApi"
import type { Page } from "@kyozo/core/store/SqlRows"
import { Effect, Option, Schema } from "effect"

import { Deployments } from "../application/Deployments.js"
import { type EdgeNames, Services } from "../application/Services.js"
import { deploymentDoc, listDoc, selfLink, serviceDoc, withQuery } from "./Documents.js"
import { deployError, deployOrPolicyError, invalidCursor, policyError } from "./Errors.js"

const sourceOf = (source: { readonly uploadId: string } | { readonly path: string }): DeploySource =>
  "uploadId" in source ? { _tag: "Upload", uploadId: source.uploadId } : { _tag: "Path", path: source.path }

const encodeServiceList = Schema.encode(ServiceCollection)
const utf8 = new TextEncoder()

/** Encoded service lists by page (pages are held by the Services cache, and dropped with it). */
const encodedPages = new WeakMap<object, Map<string, HttpServerResponse.HttpServerResponse>>()

export const DEFAULT_PAGE_SIZE = 50

const nameKey = (n: EdgeNames): string => `${n.hostUrl}\u0001${n.httpsUrl}\u0001${n.domains.join(",")}`

/**
 * The answer to `GET /v1/services` for a page of the list (REST and the hot route alike). The page
 * object stays the same while no service changes: so does its encoded answer, as long as the edge
 * names the services alike (their URLs and domains are part of the key).
 */
export const serviceListResponse = (
  app: Services,
  page: Page<ServiceInstance, ServiceId>,
  size: number,
  self: string
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.gen(function* () {
    const names = yield* app.edgeNamesOfMany(page.items.map((s) => s.id))
    const key = `${self}\u0000${names.map(nameKey).join("\u0000")}`
    const encoded = encodedPages.get(page)?.get(key)
    if (encoded !== undefined) return encoded
    const path = self.split("?")[0]!
    const document = yield* encodeServiceList({
      data: page.items.map((s, i) => serviceDoc(s, names[i]?.hostUrl ?? null, names[i])),
      links: {
        self,
        next:
          page.nextCursor === null
            ? null
            : withQuery(path, { "page[size]": String(size), "page[after]": page.nextCursor })
      }
    }).pipe(Effect.orDie)
    const response = HttpServerResponse.uint8Array(utf8.encode(JSON.stringify(document)), {
      contentType: JSON_API
    })
    const bySelf = encodedPages.get(page) ?? new Map<string, HttpServerResponse.HttpServerResponse>()
    if (bySelf.size < 100) bySelf.set(key, response)
    encodedPages.set(page, bySelf)
    return response
  })

export const layer = HttpApiBuilder.group(KyozoHttpApi, "services", (handlers) =>
  Effect.gen(function* () {
    const app = yield* Services
    const deploys = yield* Deployments
    return handlers
      .handle("listServices", ({ urlParams }) =>
        Effect.gen(function* () {
          const size = urlParams["page[size]"] ?? DEFAULT_PAGE_SIZE
          const page = yield* app
            .listForCaller({ limit: size, after: urlParams["page[after]"] })
            .pipe(Effect.mapError(invalidCursor))
          return yield* serviceListResponse(app, page, size, yield* selfLink)
        })
      )
      .handle("createService", ({ payload }) => {
        const { source, name, force } = payload.data.attributes
        return deploys.start({ source: sourceOf(source), name, force }).pipe(
          Effect.mapError(deployOrPolicyError),
          Effect.flatMap((ds) => listDoc(ds.map(deploymentDoc)))
        )
      })
      .handle("getService", ({ path }) =>
        app.getWithCapabilities(path.serviceId).pipe(
          Effect.mapError(policyError),
          // `meta.can`: what the caller may do on this service (team role raised by grants).
          Effect.flatMap(({ can, service }) =>
            Effect.map(app.edgeNamesOf(service.id), (names) => ({
              data: serviceDoc(service, names.hostUrl, names),
              meta: { can }
            }))
          )
        )
      )
      .handle("updateService", ({ path, payload }) =>
        app.update(path.serviceId, payload.data.attributes).pipe(
          Effect.mapError(deployOrPolicyError),
          Effect.bind("names", ({ service }) => app.edgeNamesOf(service.id)),
          // The rollout of new settings goes on after the answer: follow it at its deployment.
          Effect.map(({ names, rollout, service }) =>
            Option.match(rollout, {
              onNone: () => ({ data: serviceDoc(service, names.hostUrl, names) }),
              onSome: (id) => ({
                data: serviceDoc(service, names.hostUrl, names),
                meta: { rollout: { deploymentId: id, href: `/v1/deployments/${id}` } }
              })
            })
          )
        )
      )
      .handle("deleteService", ({ path, urlParams }) =>
        app.remove(path.serviceId, { volumes: urlParams.volumes === "true" }).pipe(
          Effect.asVoid,
          Effect.mapError((e) => (e._tag === "Forbidden" ? policyError(e) : deployError(e)))
        )
      )
  })
)

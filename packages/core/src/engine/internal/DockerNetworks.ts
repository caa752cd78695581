/**
 * Network operations on the Docker engine: one labelled bridge network per team; connecting twice
 * and removing what is gone are success, because activities run at least once.
 */
import { ContainerNotFound, NameConflict, NetworkNotFound } from "@kyozo/api/domain/RuntimeErrors"
import { Effect } from "effect"

import type { ContainerRuntimeShape, NetworkInfo } from "../ContainerRuntime.js"
import { labelsFor } from "../Labels.js"
import {
  apiError,
  type DockerTransport,
  filtersQuery,
  labelFilters,
  onStatus,
  type Wire
} from "./DockerTransport.js"

export type NetworkOperations = Pick<
  ContainerRuntimeShape,
  "createNetwork" | "removeNetwork" | "listNetworks" | "connectNetwork"
>

export const networkOperations = ({ dial }: DockerTransport): NetworkOperations => ({
  createNetwork: (spec) => {
    const labels = labelsFor({}, spec.labels ?? {})
    return onStatus(
      dial<{ Id: string }>({
        operation: "createNetwork",
        method: "POST",
        path: "/networks/create",
        body: {
          Name: spec.name,
          Labels: labels,
          Internal: spec.internal === true,
          CheckDuplicate: true,
          Driver: "bridge"
        }
      }),
      {
        409: (e) => Effect.fail(new NameConflict({ kind: "network", name: spec.name, detail: e.detail }))
      }
    ).pipe(Effect.map((r): NetworkInfo => ({ id: r.Id, name: spec.name, labels })))
  },

  removeNetwork: (idOrName) =>
    onStatus(
      dial({
        operation: "removeNetwork",
        method: "DELETE",
        path: `/networks/${encodeURIComponent(idOrName)}`
      }),
      { 404: () => Effect.void }
    ).pipe(Effect.asVoid),

  listNetworks: (filter) =>
    onStatus(
      dial<Array<Wire>>({
        operation: "listNetworks",
        method: "GET",
        path: "/networks",
        query: { filters: filtersQuery(labelFilters(filter)) }
      })
    ).pipe(
      Effect.map((list) => list.map((n): NetworkInfo => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} })))
    ),

  connectNetwork: (network, container, aliases) =>
    onStatus(
      dial({
        operation: "connectNetwork",
        method: "POST",
        path: `/networks/${encodeURIComponent(network)}/connect`,
        body: { Container: container, EndpointConfig: aliases?.length ? { Aliases: aliases } : {} }
      }),
      {
        404: (e) =>
          Effect.fail(
            /container/i.test(e.detail)
              ? new ContainerNotFound({ container })
              : new NetworkNotFound({ network })
          ),
        // Connecting twice is success: activities run at least once.
        403: (e) => (/already exists/i.test(e.detail) ? Effect.void : Effect.fail(apiError(e)))
      }
    ).pipe(Effect.asVoid)
})

/**
 * Volume operations on the Docker engine: labelled named volumes; removing a missing one is success.
 */
import { NameConflict } from "@kyozo/api/domain/RuntimeErrors"
import { Effect } from "effect"

import type { ContainerRuntimeShape, VolumeInfo } from "../ContainerRuntime.js"
import { labelsFor } from "../Labels.js"
import { type DockerTransport, filtersQuery, labelFilters, onStatus, type Wire } from "./DockerTransport.js"

export type VolumeOperations = Pick<ContainerRuntimeShape, "createVolume" | "removeVolume" | "listVolumes">

export const volumeOperations = ({ dial }: DockerTransport): VolumeOperations => ({
  createVolume: (spec) => {
    const labels = labelsFor({}, spec.labels ?? {})
    return onStatus(
      dial<{ Name: string; Labels: Record<string, string> | null }>({
        operation: "createVolume",
        method: "POST",
        path: "/volumes/create",
        body: { Name: spec.name, Labels: labels }
      }),
      { 409: (e) => Effect.fail(new NameConflict({ kind: "volume", name: spec.name, detail: e.detail })) }
    ).pipe(Effect.map((v): VolumeInfo => ({ name: v.Name, labels: v.Labels ?? labels })))
  },

  removeVolume: (name) =>
    onStatus(
      dial({ operation: "removeVolume", method: "DELETE", path: `/volumes/${encodeURIComponent(name)}` }),
      {
        404: () => Effect.void
      }
    ).pipe(Effect.asVoid),

  listVolumes: (filter) =>
    onStatus(
      dial<{ Volumes: Array<Wire> | null }>({
        operation: "listVolumes",
        method: "GET",
        path: "/volumes",
        query: { filters: filtersQuery(labelFilters(filter)) }
      })
    ).pipe(
      Effect.map((r) => (r.Volumes ?? []).map((v): VolumeInfo => ({ name: v.Name, labels: v.Labels ?? {} })))
    )
})

/**
 * The Docker volumes behind a service's declared volumes. One Docker volume per team, service name
 * and declared name (`kyozo-<teamId>-<service>-<name>`): deterministic, so every container of the
 * service (any deployment, any replica) mounts the same data, and a service deleted without
 * `--volumes` and deployed again under its name finds its data again. Labelled like everything
 * Kyozo creates, plus the service's name and the declared name.
 *
 * Volumes are kept when a service is deleted unless the caller asks for them to go
 * (`kyozo rm --volumes`, `DELETE /v1/services/{id}?volumes=true`); cleanup never removes one.
 */
import type { RuntimeError } from "@kyozo/api/domain/RuntimeErrors"
import type { ServiceVolume } from "@kyozo/api/domain/ServiceVolume"
import { Effect } from "effect"

import type { ContainerRuntimeShape, VolumeInfo } from "./ContainerRuntime.js"
import * as Labels from "./Labels.js"

/** The label naming the declared volume a Docker volume stands for. */
export const VolumeLabel = "kyozo.volume"
/** The label naming the service (by name: the volume outlives one service row). */
export const VolumeServiceLabel = "kyozo.volume.service"

export const dockerVolumeName = (teamId: string, serviceName: string, name: string): string =>
  `kyozo-${teamId}-${serviceName}-${name}`

export interface VolumeOwner {
  readonly id: string
  readonly teamId: string
  readonly name: string
  readonly volumes: ReadonlyArray<ServiceVolume>
}

/** The mounts of a container of the service. */
export const mountsFor = (service: VolumeOwner): ReadonlyArray<{ source: string; target: string }> =>
  service.volumes.map((v) => ({
    source: dockerVolumeName(service.teamId, service.name, v.name),
    target: v.target
  }))

/** Creates the service's volumes that do not exist yet (an existing one, with its data, is kept). */
export const ensureVolumes = (
  runtime: ContainerRuntimeShape,
  service: VolumeOwner
): Effect.Effect<void, RuntimeError> =>
  Effect.forEach(
    service.volumes,
    (v) =>
      runtime
        .createVolume({
          name: dockerVolumeName(service.teamId, service.name, v.name),
          labels: Labels.labelsFor(
            { serviceId: service.id, teamId: service.teamId },
            { [VolumeLabel]: v.name, [VolumeServiceLabel]: service.name }
          )
        })
        .pipe(Effect.catchTag("NameConflict", () => Effect.void)),
    { discard: true }
  )

/** Every data volume of the service (declared now or earlier, by this row or an earlier one of its name). */
export const volumesOf = (
  runtime: ContainerRuntimeShape,
  service: Pick<VolumeOwner, "teamId" | "name">
): Effect.Effect<ReadonlyArray<VolumeInfo>, RuntimeError> =>
  Effect.map(
    runtime.listVolumes({ labels: { [Labels.Team]: service.teamId, [VolumeServiceLabel]: service.name } }),
    (all) => all.filter((v) => Labels.isManaged(v.labels))
  )

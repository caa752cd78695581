/**
 * The Docker volumes behind a service's data: its declared volumes (compose named volumes,
 * kyozo.json) and every `VOLUME` path of its image (a Dockerfile's `VOLUME /data`, a base image's
 * Config.Volumes), which would otherwise get an anonymous volume per container: lost on every
 * redeploy and left behind. Every container of the service (any deployment, any replica) mounts
 * the same named volumes.
 *
 * A volume belongs to its service by id (`kyozo.service`), so a renamed service keeps its data: it
 * is found by that label first. A new one is named `kyozo-<teamId>-<service>-<name>` after the
 * service's name at creation, so a service deleted without `--volumes` and deployed again under its
 * name finds its data again (the name is taken: the existing volume is mounted). Labelled like
 * everything Kyozo creates, plus the service's name and the declared name.
 *
 * Volumes are kept when a service is deleted unless the caller asks for them to go
 * (`kyozo rm --volumes`, `DELETE /v1/services/{id}?volumes=true`); cleanup never removes one.
 */
import * as crypto from "node:crypto"

import type { RuntimeError } from "@kyozo/api/domain/RuntimeErrors"
import type { ServiceVolume } from "@kyozo/api/domain/ServiceVolume"
import { Effect } from "effect"

import type { ContainerRuntimeShape, VolumeInfo, VolumeMount } from "./ContainerRuntime.js"
import * as Labels from "./Labels.js"

/** The label naming the declared volume a Docker volume stands for. */
export const VolumeLabel = "kyozo.volume"
/** The label naming the service by the name it had when the volume was made. */
export const VolumeServiceLabel = "kyozo.volume.service"

export const dockerVolumeName = (teamId: string, serviceName: string, name: string): string =>
  `kyozo-${teamId}-${serviceName}-${name}`

/**
 * The volume name standing for an image's `VOLUME` path: `image-data` for `/data`,
 * `image-var-lib-postgresql-data` for `/var/lib/postgresql/data` (a valid Docker name, at most 63
 * characters: a long path keeps a hash of itself so two never share a volume).
 */
export const imageVolumeName = (target: string): string => {
  const slug = `image-${target.replace(/[^a-zA-Z0-9_.]+/g, "-").replace(/^-+|-+$/g, "")}`.replace(/-+$/, "")
  if (slug.length <= 63) return slug
  const hash = crypto.createHash("sha256").update(target).digest("hex").slice(0, 8)
  return `${slug.slice(0, 54)}-${hash}`
}

export interface VolumeOwner {
  readonly id: string
  readonly teamId: string
  readonly name: string
  readonly volumes: ReadonlyArray<ServiceVolume>
}

/** The service's declared volumes, then one per image `VOLUME` path that no declared one covers. */
export const wantedVolumes = (
  service: Pick<VolumeOwner, "volumes">,
  imagePaths: ReadonlyArray<string>
): ReadonlyArray<ServiceVolume> => {
  const covered = new Set(service.volumes.map((v) => v.target.replace(/\/+$/, "") || "/"))
  const fromImage = imagePaths
    .filter((p) => p.startsWith("/") && !covered.has(p.replace(/\/+$/, "") || "/"))
    .map((target) => ({ name: imageVolumeName(target), target }))
  return [...service.volumes, ...fromImage]
}

/**
 * Makes sure the service's volumes exist (an existing one, with its data, is kept) and answers the
 * mounts of a container of the service running `image`: its declared volumes and its image's
 * `VOLUME` paths, each a named volume found by the service's id, else by its name.
 */
export const ensureVolumes = (
  runtime: ContainerRuntimeShape,
  service: VolumeOwner,
  image?: string
): Effect.Effect<ReadonlyArray<VolumeMount>, RuntimeError> =>
  Effect.gen(function* () {
    const imagePaths = image === undefined ? [] : (yield* runtime.inspectImage(image)).volumes
    const wanted = wantedVolumes(service, imagePaths)
    if (wanted.length === 0) return []
    const owned = new Map<string, string>()
    for (const v of yield* runtime.listVolumes({
      labels: { [Labels.Team]: service.teamId, [Labels.Service]: service.id }
    })) {
      const declared = v.labels[VolumeLabel]
      if (Labels.isManaged(v.labels) && declared !== undefined) owned.set(declared, v.name)
    }
    return yield* Effect.forEach(wanted, (v) => {
      const found = owned.get(v.name)
      if (found !== undefined) return Effect.succeed({ source: found, target: v.target })
      const name = dockerVolumeName(service.teamId, service.name, v.name)
      return runtime
        .createVolume({
          name,
          labels: Labels.labelsFor(
            { serviceId: service.id, teamId: service.teamId },
            { [VolumeLabel]: v.name, [VolumeServiceLabel]: service.name }
          )
        })
        .pipe(
          Effect.asVoid,
          Effect.catchTag("NameConflict", () => Effect.void),
          Effect.as({ source: name, target: v.target })
        )
    })
  })

/**
 * Every data volume of the service: made for its id (under any name it had), or for an earlier
 * service of its name whose data it took over; not one of another live service (`isLive`: one
 * renamed away from this name still owns its volumes).
 */
export const volumesOf = (
  runtime: ContainerRuntimeShape,
  service: Pick<VolumeOwner, "id" | "teamId" | "name">,
  isLive: (serviceId: string) => Effect.Effect<boolean> = () => Effect.succeed(false)
): Effect.Effect<ReadonlyArray<VolumeInfo>, RuntimeError> =>
  Effect.gen(function* () {
    const [byId, byName] = yield* Effect.all(
      [
        runtime.listVolumes({ labels: { [Labels.Team]: service.teamId, [Labels.Service]: service.id } }),
        runtime.listVolumes({ labels: { [Labels.Team]: service.teamId, [VolumeServiceLabel]: service.name } })
      ],
      { concurrency: 2 }
    )
    const all = new Map<string, VolumeInfo>()
    for (const v of byId) if (Labels.isManaged(v.labels)) all.set(v.name, v)
    for (const v of byName) {
      const owner = v.labels[Labels.Service]
      if (!Labels.isManaged(v.labels) || all.has(v.name)) continue
      if (owner !== undefined && owner !== service.id && (yield* isLive(owner))) continue
      all.set(v.name, v)
    }
    return [...all.values()]
  })

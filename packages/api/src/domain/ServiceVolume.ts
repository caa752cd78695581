/**
 * A volume a service declares (a compose named volume, `name:/path`): data that must outlive every
 * container of the service. Kept on the service row, so redeploys, rollbacks, settings rollouts,
 * restarts and new replicas all mount the same Docker volume.
 */
import { Schema } from "effect"

/** Compose's volume-name rule, which is also Docker's. */
export const VolumeName = Schema.String.pipe(Schema.pattern(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/))

export const ServiceVolume = Schema.Struct({
  /** The name in the folder's compose file. */
  name: VolumeName,
  /** Where the container sees it (absolute path). */
  target: Schema.String.pipe(Schema.pattern(/^\/[^\0]{0,1023}$/))
})
export type ServiceVolume = typeof ServiceVolume.Type

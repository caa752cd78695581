/**
 * Branded identifiers. Ids are readable ("svc_…", "dep_…") because they end up in Docker labels,
 * container names and logs; the random part is lower-case base32 so an id is safe in URLs and in
 * Docker object names as it is.
 */
import { randomBytes } from "node:crypto"

import { Schema } from "effect"

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz" // Crockford base32, lower case: no i, l, o, u

/** `length` random base32 characters (5 bits each): 16 characters are 80 bits. */
export const randomToken = (length = 16): string => {
  const bytes = randomBytes(length)
  let out = ""
  for (let i = 0; i < length; i++) out += alphabet[bytes[i]! & 31]
  return out
}

export const TeamId = Schema.String.pipe(Schema.brand("TeamId"))
export type TeamId = typeof TeamId.Type
export const UserId = Schema.String.pipe(Schema.brand("UserId"))
export type UserId = typeof UserId.Type
export const ApiKeyId = Schema.String.pipe(Schema.brand("ApiKeyId"))
export type ApiKeyId = typeof ApiKeyId.Type
export const ServiceId = Schema.String.pipe(Schema.brand("ServiceId"))
export type ServiceId = typeof ServiceId.Type
export const DeploymentId = Schema.String.pipe(Schema.brand("DeploymentId"))
export type DeploymentId = typeof DeploymentId.Type
export const DetectionId = Schema.String.pipe(Schema.brand("DetectionId"))
export type DetectionId = typeof DetectionId.Type
export const DependencyId = Schema.String.pipe(Schema.brand("DependencyId"))
export type DependencyId = typeof DependencyId.Type
export const PermissionId = Schema.String.pipe(Schema.brand("PermissionId"))
export type PermissionId = typeof PermissionId.Type

export const makeTeamId = (): TeamId => TeamId.make(`team_${randomToken()}`)
export const makeUserId = (): UserId => UserId.make(`usr_${randomToken()}`)
export const makeApiKeyId = (): ApiKeyId => ApiKeyId.make(`key_${randomToken()}`)
export const makeServiceId = (): ServiceId => ServiceId.make(`svc_${randomToken()}`)
export const makeDeploymentId = (): DeploymentId => DeploymentId.make(`dep_${randomToken()}`)
export const makeDetectionId = (): DetectionId => DetectionId.make(`det_${randomToken()}`)
export const makeDependencyId = (): DependencyId => DependencyId.make(`sdp_${randomToken()}`)
export const makePermissionId = (): PermissionId => PermissionId.make(`prm_${randomToken()}`)

/**
 * A bigint/bigserial column. node-postgres returns int8 as a string (it may exceed 2^53); Kyozo's
 * own bigint columns (event ids, byte counters) stay far below that, so they decode to numbers.
 */
export const BigIntColumn = Schema.Union(
  Schema.Number,
  Schema.NumberFromString,
  Schema.BigIntFromSelf.pipe(
    Schema.transform(Schema.Number, { strict: true, decode: (b) => Number(b), encode: (n) => BigInt(n) })
  )
)

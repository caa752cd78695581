/**
 * Where uploaded folders live: `<dataDir>/uploads/<teamId>/<uploadId>`. The upload endpoint writes
 * there and the deployer reads from there; both compute the path here so they cannot drift. The
 * team is part of the path, so an upload id from another team simply does not resolve.
 */
import * as path from "node:path"

import { randomToken, type TeamId } from "@kyozo/api/domain/Ids"

const UPLOAD_ID = /^upl_[0-9a-z]{16}$/

export const makeUploadId = (): string => `upl_${randomToken()}`

/** True for ids `makeUploadId` makes: nothing else may become a path segment. */
export const isUploadId = (id: string): boolean => UPLOAD_ID.test(id)

export const uploadsRoot = (dataDir: string): string => path.join(dataDir, "uploads")

export const teamUploadsDir = (dataDir: string, teamId: TeamId): string =>
  path.join(uploadsRoot(dataDir), teamId)

/** The folder of an upload, or undefined when the id is malformed (it would otherwise be a path). */
export const uploadDir = (dataDir: string, teamId: TeamId, uploadId: string): string | undefined =>
  isUploadId(uploadId) ? path.join(teamUploadsDir(dataDir, teamId), uploadId) : undefined

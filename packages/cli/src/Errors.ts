/**
 * How a failed command ends: one line that says what to do next, then the detail below it.
 * Errors whose message already says what to do are printed as they are.
 */
export interface Described {
  readonly headline: string
  readonly detail: ReadonlyArray<string>
}

const field = (e: unknown, name: string): string | undefined => {
  const v = typeof e === "object" && e !== null ? (e as Record<string, unknown>)[name] : undefined
  return typeof v === "string" ? v : undefined
}

export const messageOf = (e: unknown): string =>
  typeof e === "object" &&
  e !== null &&
  "message" in e &&
  typeof (e as { message: unknown }).message === "string"
    ? (e as { message: string }).message
    : String(e)

export const describeError = (e: unknown): Described => {
  const message = messageOf(e)
  switch (field(e, "_tag")) {
    case "DeployFailed": {
      const service = field(e, "service") ?? "the service"
      return {
        headline: `deploy of ${service} failed at ${field(e, "step") ?? "?"}: see why with \`kyozo logs ${service}\` and \`kyozo events --service ${service}\`, fix the folder, deploy again`,
        detail: [message]
      }
    }
    case "UploadFailed":
      return {
        headline: `the upload was refused: ${field(e, "detail") ?? message}`,
        detail: [
          "Shrink the folder with a .dockerignore (or raise KYOZO_UPLOAD_MAX_BYTES on the server) and deploy again."
        ]
      }
    case "RpcClientError":
      return {
        headline:
          "the server's answer could not be read: check that the CLI and the server are the same version",
        detail: [message]
      }
    default:
      return { headline: message, detail: [] }
  }
}

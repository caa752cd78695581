/**
 * Host names of services on the edge's shared port: `<service>.<team>.<KYOZO_DOMAIN>`. Each label
 * is lower-cased and every run of characters outside [a-z0-9] becomes one `-` (trimmed at the
 * ends), so any team name gives a valid DNS label.
 */
export const dnsLabel = (name: string): string =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63)
    .replace(/-+$/g, "") || "x"

export const hostNameFor = (service: string, team: string, domain: string): string =>
  `${dnsLabel(service)}.${dnsLabel(team)}.${domain.toLowerCase()}`

export const hostUrlFor = (hostName: string, sharedPort: number): string => `http://${hostName}:${sharedPort}`

export const urlFor = (hostPort: number): string => `http://127.0.0.1:${hostPort}`

export const httpsUrlFor = (hostName: string, tlsPort: number): string =>
  tlsPort === 443 ? `https://${hostName}` : `https://${hostName}:${tlsPort}`

/**
 * `kyozo domains add|rm|ls <service> [hostname] [--json]`: custom domains of a service. The edge
 * routes each by Host (and SNI over HTTPS) to the service at once, with no redeploy. A name is
 * one service's across all teams; the server checks the name and the caller's rights.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { KyozoClient } from "@kyozo/api/KyozoClient"
import { Console, Effect } from "effect"

import { ClientLive } from "./Connection.js"
import { json, printJson } from "./Output.js"
import { service } from "./ServiceCommand.js"

const hostname = Args.text({ name: "hostname" }).pipe(Args.withDescription("e.g. app.example.com"))

const addCommand = Command.make("add", { service, hostname, json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const added = yield* client.AddDomain({ service: args.service, hostname: args.hostname })
    yield* args.json
      ? printJson(added)
      : Console.log(`${added.hostname} → ${args.service} (point its DNS at the edge)`)
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Route a custom domain to a service (by Host, and over HTTPS when on)"))

const rmCommand = Command.make("rm", { service, hostname, json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    yield* client.RemoveDomain({ service: args.service, hostname: args.hostname })
    yield* args.json
      ? printJson({ removed: args.hostname.trim().toLowerCase(), service: args.service })
      : Console.log(`${args.hostname} no longer routed to ${args.service}`)
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("Stop routing a custom domain to a service"))

const lsCommand = Command.make("ls", { service, json }, (args) =>
  Effect.gen(function* () {
    const client = yield* KyozoClient
    const domains = yield* client.ListDomains({ service: args.service })
    if (args.json) return yield* printJson(domains)
    if (domains.length === 0)
      return yield* Console.log(
        `no custom domains: add one with \`kyozo domains add ${args.service} <hostname>\``
      )
    yield* Effect.forEach(domains, (d) => Console.log(d.hostname), { discard: true })
  }).pipe(Effect.provide(ClientLive))
).pipe(Command.withDescription("List a service's custom domains"))

export const domainsCommand = Command.make("domains").pipe(
  Command.withDescription("A service's custom domains: add, rm, ls"),
  Command.withSubcommands([addCommand, rmCommand, lsCommand])
)

/**
 * The web dashboard at `/`: the files Vite built into `packages/dashboard/dist` (by `pnpm install`),
 * read once at start and served from memory, gzip-compressed when the browser accepts it.
 * `index.html` is never cached (it names the current hashed bundles); `/assets/*` names change with
 * their content, so they are cached for a year. Every answer carries a strict Content-Security-Policy:
 * only this origin's scripts, styles, images and connections, no inline script, no framing.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"

import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer } from "effect"

export const defaultDistDirectory: string = fileURLToPath(new URL("../../dashboard/dist/", import.meta.url))

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join("; ")

const securityHeaders = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin"
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8"
}

interface Asset {
  readonly type: string
  readonly raw: Uint8Array
  readonly gzip: Uint8Array | undefined
}

const load = (file: string): Asset => {
  const raw = fs.readFileSync(file)
  const type = TYPES[path.extname(file)] ?? "application/octet-stream"
  const compressible = /^(text\/|image\/svg|application\/json)/.test(type) && raw.length > 512
  return { type, raw, gzip: compressible ? gzipSync(raw, { level: 9 }) : undefined }
}

/** Every file under `dir`, keyed by its URL path (`/assets/index-abc.js`). */
const loadAll = (dir: string): Map<string, Asset> => {
  const out = new Map<string, Asset>()
  const walk = (sub: string) => {
    for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = path.posix.join(sub, entry.name)
      if (entry.isDirectory()) walk(rel)
      else if (entry.isFile()) out.set(`/${rel}`, load(path.join(dir, rel)))
    }
  }
  walk("")
  return out
}

const respond = (request: HttpServerRequest.HttpServerRequest, asset: Asset, cacheControl: string) => {
  const gzip = asset.gzip !== undefined && /\bgzip\b/.test(request.headers["accept-encoding"] ?? "")
  return HttpServerResponse.uint8Array(gzip ? asset.gzip! : asset.raw, {
    contentType: asset.type,
    headers: {
      ...securityHeaders,
      "cache-control": cacheControl,
      vary: "accept-encoding",
      ...(gzip ? { "content-encoding": "gzip" } : {})
    }
  })
}

const notBuilt = (dir: string) =>
  HttpServerResponse.text(
    `The Kyozo dashboard is not built (no ${path.join(dir, "index.html")}).\n` +
      "Run `pnpm install` (it builds it) or `pnpm --filter @kyozo/dashboard build`, then restart the server.\n" +
      "The API is available meanwhile: /v1, /docs.\n",
    { status: 503, headers: { ...securityHeaders, "cache-control": "no-store" } }
  )

export const layerFrom = (dir: string) =>
  Layer.unwrapEffect(
    Effect.sync(() => {
      const files = fs.existsSync(path.join(dir, "index.html")) ? loadAll(dir) : new Map<string, Asset>()
      const index = files.get("/index.html")
      const page = (request: HttpServerRequest.HttpServerRequest) =>
        Effect.succeed(index === undefined ? notBuilt(dir) : respond(request, index, "no-cache"))
      const asset = (request: HttpServerRequest.HttpServerRequest) =>
        Effect.sync(() => {
          // Asset names are plain ASCII: the raw path is looked up as is (a malformed %-escape is just unknown).
          const pathname = request.url.split("?")[0]!
          const file = files.get(pathname)
          if (file === undefined)
            return HttpServerResponse.text("Not found", {
              status: 404,
              headers: { ...securityHeaders, "cache-control": "no-store" }
            })
          // Hashed names under /assets never change content; anything else is revalidated.
          return respond(
            request,
            file,
            pathname.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache"
          )
        })
      return Layer.mergeAll(
        HttpLayerRouter.add("GET", "/", page),
        HttpLayerRouter.add("GET", "/index.html", page),
        HttpLayerRouter.add("GET", "/assets/*", asset),
        HttpLayerRouter.add("GET", "/favicon.svg", asset)
      )
    })
  )

export const layer = layerFrom(defaultDistDirectory)

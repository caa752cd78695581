/**
 * The `FROM` lines of generated Dockerfiles. Defaults are the usual official images; users override
 * any key with `KYOZO_BASE_IMAGES` (a JSON object or `key=value,key=value`) or a JSON file named by
 * `KYOZO_BASE_IMAGES_FILE`. Tests point them at local images, since nothing can be pulled there.
 */
import * as fs from "node:fs"

import { Data, Effect, Option } from "effect"

import { currentKyozoConfig } from "../../KyozoConfig.js"

export const BASE_IMAGE_KEYS = [
  "node",
  "python",
  "go",
  "go-runtime",
  "ruby",
  "rust",
  "rust-runtime",
  "java-maven",
  "java-gradle",
  "java",
  "php",
  "php-composer",
  "deno",
  "elixir",
  "elixir-runtime",
  "static"
] as const
export type BaseImageKey = (typeof BASE_IMAGE_KEYS)[number]
export type BaseImageMap = Readonly<Record<BaseImageKey, string>>

export const DEFAULT_BASE_IMAGES: BaseImageMap = {
  node: "node:20-slim",
  python: "python:3.12-slim",
  go: "golang:1.22",
  "go-runtime": "gcr.io/distroless/static-debian12:nonroot",
  ruby: "ruby:3.3-slim",
  rust: "rust:1.79",
  "rust-runtime": "debian:bookworm-slim",
  "java-maven": "maven:3.9-eclipse-temurin-21",
  "java-gradle": "gradle:8-jdk21",
  java: "eclipse-temurin:21-jre",
  php: "php:8.3-cli",
  "php-composer": "composer:2",
  deno: "denoland/deno:2.0.0",
  elixir: "elixir:1.17",
  "elixir-runtime": "debian:bookworm-slim",
  static: "busybox:1.36"
}

/**
 * The local images scripts/base-images.sh makes, by key: they stand in for a configured base image
 * that is missing and cannot be pulled (a host without a registry).
 */
export const LOCAL_BASE_IMAGES: Partial<Record<BaseImageKey, string>> = {
  node: "kyozo-local/node:20",
  python: "kyozo-local/python:3",
  static: "kyozo-local/static:latest",
  // Static Go binaries run on busybox as well as on distroless.
  "go-runtime": "kyozo-local/static:latest"
}

export class BaseImagesError extends Data.TaggedError("BaseImagesError")<{ readonly message: string }> {}

const isKey = (k: string): k is BaseImageKey => (BASE_IMAGE_KEYS as ReadonlyArray<string>).includes(k)

/** Parses an override: JSON object or `key=value,key=value`. Unknown keys are an error (typos would be silent). */
export const parseBaseImages = (raw: string): Partial<Record<BaseImageKey, string>> => {
  const text = raw.trim()
  if (text === "") return {}
  let entries: Array<[string, string]>
  if (text.startsWith("{")) {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (e) {
      throw new BaseImagesError({ message: `base images: invalid JSON (${(e as Error).message})` })
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new BaseImagesError({ message: "base images: expected a JSON object" })
    }
    entries = Object.entries(parsed).map(([k, v]) => {
      if (typeof v !== "string" || v.trim() === "")
        throw new BaseImagesError({ message: `base images: ${k} must be an image name` })
      return [k, v.trim()]
    })
  } else {
    entries = text
      .split(",")
      .map((p) => p.trim())
      .filter((p) => p !== "")
      .map((p) => {
        const i = p.indexOf("=")
        if (i <= 0 || i === p.length - 1)
          throw new BaseImagesError({ message: `base images: expected key=value, got "${p}"` })
        return [p.slice(0, i).trim(), p.slice(i + 1).trim()]
      })
  }
  const out: Partial<Record<BaseImageKey, string>> = {}
  for (const [k, v] of entries) {
    if (!isKey(k))
      throw new BaseImagesError({
        message: `base images: unknown key "${k}" (known: ${BASE_IMAGE_KEYS.join(", ")})`
      })
    out[k] = v
  }
  return out
}

export const resolveBaseImages = (
  ...overrides: ReadonlyArray<Partial<Record<BaseImageKey, string>>>
): BaseImageMap => Object.assign({}, DEFAULT_BASE_IMAGES, ...overrides) as BaseImageMap

/** Reads the file override first, then the variable (the variable wins). */
export const loadBaseImages: Effect.Effect<BaseImageMap, BaseImagesError> = Effect.gen(function* () {
  const { baseImages, baseImagesFile } = (yield* currentKyozoConfig).build
  const file = Option.fromNullable(baseImagesFile)
  const inline = Option.fromNullable(baseImages)
  const fromFile = Option.isSome(file)
    ? yield* Effect.try({
        try: () => parseBaseImages(fs.readFileSync(file.value, "utf8")),
        catch: (e) =>
          e instanceof BaseImagesError
            ? e
            : new BaseImagesError({ message: `base images file ${file.value}: ${String(e)}` })
      })
    : {}
  const fromEnv = Option.isSome(inline)
    ? yield* Effect.try({
        try: () => parseBaseImages(inline.value),
        catch: (e) => (e instanceof BaseImagesError ? e : new BaseImagesError({ message: String(e) }))
      })
    : {}
  return resolveBaseImages(fromFile, fromEnv)
})

export class BaseImages extends Effect.Service<BaseImages>()("@kyozo/core/BaseImages", {
  effect: Effect.map(loadBaseImages, (images) => ({ images }))
}) {}

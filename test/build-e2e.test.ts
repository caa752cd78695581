/**
 * Real apps with real dependencies, deployed on the REAL engine from folders without a Dockerfile,
 * as on a host with no image registry: the generated Dockerfiles name the official base images
 * (node:20-slim, python:3.12-slim, busybox), which cannot be pulled here, so the builds run on the
 * local base images of scripts/base-images.sh. npm downloads go through the TLS proxy of this
 * machine, trusted through the build CA (the host's bundle), which never reaches the final image.
 *
 *   - Express (npm registry): answers through its URL.
 *   - Vite: built, and its output served by the static image.
 *   - Flask: installed offline from wheels the test puts in the folder (the host's `pip download`;
 *     where the host's pip has no Flask, a wheel of a small local package made with `pip wheel`).
 *
 * The npm cases need the registry: they skip loudly where it is unreachable, and fail under
 * KYOZO_REQUIRE_REGISTRY=1 (CI sets it).
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as https from "node:https"
import * as path from "node:path"

import { describe, expect, layer } from "@effect/vitest"
import { makeTeamId, type TeamId } from "@kyozo/api/domain/Ids"
import { BaseImages, resolveBaseImages } from "@kyozo/core/build/dockerfile/BaseImages"
import { HOST_CA_BUNDLES } from "@kyozo/core/build/dockerfile/BuildSettings"
import { ImageBuilder } from "@kyozo/core/build/ImageBuilder"
import { detectPlan } from "@kyozo/core/build/topology/TopologyDetector"
import * as DockerRuntime from "@kyozo/core/engine/DockerRuntime"
import { Effect, Layer } from "effect"

import { makeTempDir } from "./support/database.js"
import { deployProgress, deployStack, workspace } from "./support/deployer.js"
import { dockerSuite, removeTeamAfterAll, requireBaseImages } from "./support/docker.js"

const PythonImage = "kyozo-local/python:3"
const docker = await dockerSuite("build-e2e")
if (docker.available) {
  await requireBaseImages(docker.client)
  await docker.client
    .getImage(PythonImage)
    .inspect()
    .catch(() => {
      throw new Error(`Missing base image ${PythonImage}: run scripts/base-images.sh`)
    })
}
// The official images stay configured (the defaults): the point is the local stand-ins.
delete process.env.KYOZO_BASE_IMAGES
delete process.env.KYOZO_BASE_IMAGES_FILE

/** Whether the npm registry answers from this host (trusting the host's CA bundle, as builds do). */
const registryReachable = (): Promise<boolean> =>
  new Promise((resolve) => {
    const bundle = HOST_CA_BUNDLES.find((f) => fs.existsSync(f))
    const req = https.get(
      "https://registry.npmjs.org/express",
      {
        timeout: 5000,
        ...(bundle ? { ca: fs.readFileSync(bundle) } : {}),
        headers: { accept: "application/json" }
      },
      (res) => {
        res.resume()
        resolve(res.statusCode === 200)
      }
    )
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", () => resolve(false))
  })

const registry = docker.available ? await registryReachable() : false
if (docker.available && !registry) {
  if (process.env.KYOZO_REQUIRE_REGISTRY === "1")
    throw new Error("[build-e2e] KYOZO_REQUIRE_REGISTRY=1 but https://registry.npmjs.org is not reachable")
  const bar = "!".repeat(78)
  console.warn(
    `\n${bar}\n!! SKIPPING the npm cases of build-e2e: https://registry.npmjs.org is not reachable.\n!! They did NOT run. Set KYOZO_REQUIRE_REGISTRY=1 to fail instead.\n${bar}\n`
  )
}

const ws = workspace("kyozo-build-e2e-ws-")
const workspaces = ws.root
const teamId: TeamId = makeTeamId()
removeTeamAfterAll(docker, teamId)

const write = (folder: string, files: Record<string, string>, fresh = true) =>
  ws.write(folder, files, { fresh })

const get = (url: string): Promise<{ status: number; body: string }> =>
  new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => (body += c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", (e) => resolve({ status: 0, body: `ERROR ${e.message}` }))
  })

const E2ELayer = deployStack({
  workspaces,
  team: { id: teamId, name: `build-e2e-${teamId}` },
  settings: { healthTimeout: "40 seconds", drainTimeout: "1 second", stopTimeoutSeconds: 1 }
})

/** Deploys a folder: the deployment summaries and the build log lines. */
const deploy = (folder: string) =>
  Effect.gen(function* () {
    const started = Date.now()
    const progress = yield* deployProgress(teamId, folder, { name: folder })
    const log = progress.flatMap((p) => (p._tag === "BuildLog" ? [p.line] : []))
    const deployed = progress.flatMap((p) => (p._tag === "Deployed" ? [p.deployment] : []))
    console.log(`[build-e2e] ${folder}: deployed in ${Date.now() - started} ms`)
    return { deployed, log }
  })

/** Runs a shell command inside the service's running container (sh from busybox). */
const inContainer = (serviceId: string, script: string): string => {
  const id = execFileSync(
    "docker",
    ["ps", "-q", "--filter", `label=kyozo.service=${serviceId}`, "--filter", `label=kyozo.team=${teamId}`],
    { encoding: "utf8" }
  )
    .trim()
    .split("\n")[0]!
  return execFileSync("docker", ["exec", id, "sh", "-c", script], { encoding: "utf8" }).trim()
}

/** Python wheels for Flask from the host's pip (local caches and indexes only: no PyPI here). */
const downloadWheels = (dir: string): string | undefined => {
  fs.mkdirSync(dir, { recursive: true })
  try {
    execFileSync(
      "/usr/bin/python3",
      [
        "-m",
        "pip",
        "download",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        // No PyPI here: fail fast on it and take what the local indexes and caches hold.
        "--retries",
        "0",
        "--timeout",
        "5",
        "-d",
        dir,
        "flask"
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 }
    )
    return undefined
  } catch (e) {
    return String((e as { stderr?: string }).stderr ?? e).slice(-400)
  }
}

/** A wheel of a tiny local package, built by the host's `pip wheel` without any index. */
const buildLocalWheel = (dir: string): void => {
  const src = makeTempDir("kyozo-wheel-src-")
  fs.mkdirSync(path.join(src, "kyozo_greeting"), { recursive: true })
  fs.writeFileSync(
    path.join(src, "pyproject.toml"),
    '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n[project]\nname = "kyozo-greeting"\nversion = "1.0.0"\n'
  )
  fs.writeFileSync(path.join(src, "kyozo_greeting", "__init__.py"), 'NAME = "kyozo-greeting"\n')
  fs.mkdirSync(dir, { recursive: true })
  execFileSync(
    "/usr/bin/python3",
    ["-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", dir, src],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 }
  )
}

describe.skipIf(!docker.available)("Real apps deployed from folders without a Dockerfile", () => {
  layer(E2ELayer, { excludeTestServices: true, timeout: "300 seconds" })((it) => {
    it.effect.skipIf(!registry)(
      "an Express app installs from the npm registry through the build CA and answers through its URL",
      () =>
        Effect.gen(function* () {
          const folder = write("express-app", {
            "package.json": JSON.stringify(
              {
                name: "express-app",
                scripts: { start: "node server.js" },
                dependencies: { express: "4.21.2" }
              },
              null,
              2
            ),
            "server.js": [
              "const express = require('express')",
              "const app = express()",
              "app.get('/', (_req, res) => res.json({ framework: 'express', version: require('express/package.json').version }))",
              "app.listen(Number(process.env.PORT) || 3000)",
              ""
            ].join("\n")
          })
          const { deployed, log } = yield* deploy(folder)
          const d = deployed[0]!
          expect(d.built).toBe(true)
          // node:20-slim cannot be pulled here: the local image stood in, and the log says so.
          expect(log.join("\n")).toMatch(/base image node:20-slim cannot be pulled .*kyozo-local\/node:20/)
          const res = yield* Effect.promise(() => get(d.url!))
          expect(res.status).toBe(200)
          expect(JSON.parse(res.body)).toEqual({ framework: "express", version: "4.21.2" })
          // The CA was in the build stages only: not in the final image's files or environment.
          expect(
            inContainer(
              d.serviceId,
              "test -e /etc/kyozo/build-ca.pem || test -e /app/.kyozo-build-ca.pem || env | grep -q NODE_EXTRA_CA_CERTS; echo $?"
            )
          ).toBe("1")
          const layers = execFileSync(
            "docker",
            ["history", "--no-trunc", "--format", "{{.CreatedBy}}", d.image!],
            {
              encoding: "utf8"
            }
          )
          expect(layers).not.toContain("build-ca.pem")
        })
    )

    it.effect.skipIf(!registry)("a Vite app is built and its output served by the static image", () =>
      Effect.gen(function* () {
        const folder = write("vite-app", {
          "package.json": JSON.stringify(
            {
              name: "vite-app",
              private: true,
              type: "module",
              scripts: { dev: "vite", build: "vite build", preview: "vite preview" },
              devDependencies: { vite: "5.4.11" }
            },
            null,
            2
          ),
          "index.html":
            '<!doctype html>\n<html><head><title>vite e2e</title></head><body><div id="app"></div><script type="module" src="/src/main.js"></script></body></html>\n',
          "src/main.js": 'document.querySelector("#app").textContent = "built by vite " + (6 * 7)\n'
        })
        const { deployed, log } = yield* deploy(folder)
        const d = deployed[0]!
        expect(log.join("\n")).toMatch(/kyozo-local\/static:latest/)
        const page = yield* Effect.promise(() => get(d.url!))
        expect(page.status).toBe(200)
        expect(page.body).toContain("<title>vite e2e</title>")
        // The served page is the build output: the source entry is replaced by a hashed bundle.
        expect(page.body).not.toContain("/src/main.js")
        const asset = /src="(\/assets\/[^"]+\.js)"/.exec(page.body)?.[1]
        expect(asset).toBeDefined()
        const js = yield* Effect.promise(() => get(`${d.url}${asset}`))
        expect(js.status).toBe(200)
        expect(js.body).toContain("built by vite")
        // Only the output ships: no node_modules, no sources in the served image.
        expect(inContainer(d.serviceId, "ls /site")).not.toMatch(/node_modules|src|package\.json/)
      })
    )

    it.effect(
      "a Python app with pip dependencies installs offline from the wheels in its folder and answers",
      () =>
        Effect.gen(function* () {
          const folder = "python-offline"
          const wheels = path.join(workspaces, folder, "wheels")
          fs.rmSync(path.join(workspaces, folder), { recursive: true, force: true })
          const failure = downloadWheels(wheels)
          if (failure !== undefined) {
            // A host whose pip has no Flask at hand: a wheel of a small local package instead.
            console.warn(
              `[build-e2e] pip download flask failed on this host (${failure.trim().split("\n").pop()}): using a wheel built with pip wheel`
            )
            buildLocalWheel(wheels)
          }
          const flask = failure === undefined
          write(
            folder,
            {
              "requirements.txt": flask ? "flask\n" : "kyozo-greeting\n",
              "app.py":
                (flask
                  ? [
                      "import os",
                      "from flask import Flask",
                      "",
                      "app = Flask(__name__)",
                      "",
                      '@app.get("/")',
                      "def index():",
                      '    return {"installed": "flask", "offline": True}',
                      "",
                      'if __name__ == "__main__":',
                      '    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8000")))'
                    ]
                  : [
                      "import json, os",
                      "from http.server import BaseHTTPRequestHandler, HTTPServer",
                      "import kyozo_greeting",
                      "",
                      "class Handler(BaseHTTPRequestHandler):",
                      "    def do_GET(self):",
                      '        body = json.dumps({"installed": kyozo_greeting.NAME, "offline": True}).encode()',
                      "        self.send_response(200)",
                      '        self.send_header("content-type", "application/json")',
                      "        self.end_headers()",
                      "        self.wfile.write(body)",
                      "",
                      'HTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8000"))), Handler).serve_forever()'
                    ]
                ).join("\n") + "\n"
            },
            false
          )
          const { deployed, log } = yield* deploy(folder)
          const d = deployed[0]!
          expect(log.join("\n")).toMatch(
            /base image python:3\.12-slim cannot be pulled .*kyozo-local\/python:3/
          )
          expect(log.join("\n")).toMatch(/--no-index --find-links=\/app\/wheels/)
          const res = yield* Effect.promise(() => get(d.url!))
          expect(res.status).toBe(200)
          expect(JSON.parse(res.body)).toEqual({
            installed: flask ? "flask" : "kyozo-greeting",
            offline: true
          })
        })
    )

    it.effect(
      "a base image with neither a registry nor a local stand-in is a typed error naming the fixes",
      () =>
        Effect.gen(function* () {
          // Ruby has no local base image; its FROM is a name no registry has, on any host.
          const builder = yield* Effect.provide(
            ImageBuilder,
            ImageBuilder.DefaultWithoutDependencies.pipe(
              Layer.provide(
                Layer.succeed(
                  BaseImages,
                  BaseImages.make({ images: resolveBaseImages({ ruby: "kyozo-test-missing/ruby:1" }) })
                )
              ),
              Layer.provide(DockerRuntime.layer)
            )
          )
          const ensure = (folder: string) =>
            Effect.gen(function* () {
              const plan = yield* detectPlan(path.join(workspaces, folder))
              return yield* Effect.flip(
                builder.ensureImage({
                  serviceId: `svc_${folder}`,
                  teamId,
                  root: path.join(workspaces, folder),
                  planned: plan.services[0]!,
                  labels: docker.labels
                })
              )
            })
          const ruby = yield* ensure(
            write("ruby-app", {
              Gemfile: 'source "https://rubygems.org"\ngem "sinatra"\n',
              "app.rb": 'require "sinatra"\nget("/") { "hi" }\n'
            })
          )
          expect(ruby._tag).toBe("BaseImageUnavailable")
          if (ruby._tag !== "BaseImageUnavailable") return
          expect(ruby.image).toBe("kyozo-test-missing/ruby:1")
          expect(ruby.key).toBe("ruby")
          expect(ruby.message).toMatch(/scripts\/base-images\.sh/)
          expect(ruby.message).toMatch(/KYOZO_BASE_IMAGES=ruby=<image>/)
          // A user's own Dockerfile is never rewritten, but its failed pull is the same typed error.
          const own = yield* ensure(
            write("own-dockerfile", { Dockerfile: 'FROM kyozo-test-missing/base:1\nCMD ["true"]\n' })
          )
          expect(own._tag).toBe("BaseImageUnavailable")
          if (own._tag === "BaseImageUnavailable") expect(own.image).toBe("kyozo-test-missing/base:1")
        })
    )
  })
})

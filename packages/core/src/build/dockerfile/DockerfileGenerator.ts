/**
 * Multi-stage Dockerfiles for folders that have none: dependency manifests are copied before the
 * sources so the install layer caches, installs are production-only, the image runs as a non-root
 * user, and it EXPOSEs the detected port and starts with the detected command in exec form.
 */
import type { DetectedService } from "@kyozo/api/domain/Topology"

import type { BuildHints, PlannedService } from "../topology/Topology.js"
import { type BaseImageMap, DEFAULT_BASE_IMAGES } from "./BaseImages.js"
import { BUILD_CA_CONTEXT_FILE, BUILD_CA_PATH } from "./BuildSettings.js"

export interface GeneratedDockerfile {
  readonly service: string
  readonly path: string
  readonly content: string
  /** The Dockerfile copies BUILD_CA_CONTEXT_FILE: the build context must carry it. */
  readonly usesBuildCa?: boolean
}

/** How the build reaches package registries (see BuildSettings). */
export interface DockerfileBuildOptions {
  /** The context will carry a CA bundle (BUILD_CA_CONTEXT_FILE) that build stages trust. */
  readonly ca?: boolean
  readonly npmRegistry?: string
  readonly pipIndexUrl?: string
  readonly pipFindLinks?: string
}

/**
 * One generation: the base images, the build options, and what the Dockerfile turned out to need.
 * A build stage that installs packages calls `trust`; a stage that copies the sources calls `src`,
 * so with a CA in the context the sources come from a stage that removed it again.
 */
interface Gen {
  readonly img: BaseImageMap
  readonly opts: DockerfileBuildOptions
  usesCa: boolean
  sourceImage?: string
}

const SOURCE_STAGE = "kyozo-source"
const SRC_MARK = "\u0000src"

/** Lines that make a build stage trust the build CA for every usual package tool (build stages only). */
const trust = (g: Gen, extra: ReadonlyArray<string> = []): ReadonlyArray<string> => {
  const env = [...extra]
  if (g.opts.ca) {
    g.usesCa = true
    const p = BUILD_CA_PATH
    env.unshift(
      `NODE_EXTRA_CA_CERTS=${p} npm_config_cafile=${p} PIP_CERT=${p} SSL_CERT_FILE=${p} REQUESTS_CA_BUNDLE=${p} CURL_CA_BUNDLE=${p} GIT_SSL_CAINFO=${p} CARGO_HTTP_CAINFO=${p} DENO_CERT=${p} HEX_CACERTS_PATH=${p}`
    )
  }
  return [
    ...(g.opts.ca ? [`COPY ${BUILD_CA_CONTEXT_FILE} ${BUILD_CA_PATH}`] : []),
    ...(env.length > 0 ? [`ENV ${env.join(" ")}`] : [])
  ]
}

/** `COPY . <dest>` of the sources; resolved in `finish` (from the CA-free source stage when needed). */
const src = (g: Gen, image: string, dest: string, chown?: string): string => {
  g.sourceImage ??= image
  return `${SRC_MARK} ${chown ?? "-"} ${dest}`
}

const finish = (g: Gen, body: string): string => {
  const viaStage = g.usesCa
  const out = body.replace(
    new RegExp(`^${SRC_MARK} (\\S+) (\\S+)$`, "gm"),
    (_m, chown: string, dest: string) => {
      const own = chown === "-" ? "" : `--chown=${chown} `
      return viaStage ? `COPY --from=${SOURCE_STAGE} ${own}/src/ ${dest}` : `COPY ${own}. ${dest}`
    }
  )
  if (!viaStage || !out.includes(`--from=${SOURCE_STAGE}`)) return out
  // The sources without the CA bundle: later stages copy from here, never the context itself.
  return (
    lines(
      `FROM ${g.sourceImage} AS ${SOURCE_STAGE}`,
      "COPY . /src",
      `RUN rm -f /src/${BUILD_CA_CONTEXT_FILE}`,
      ""
    ) + out
  )
}

/** Numeric ids work in images without /etc/passwd (distroless, imported busybox images). */
const APP_UID = "10001:10001"
const NODE_UID = "1000:1000"
const STATIC_UID = "65534:65534"
/** Spelled out: `$PATH` is empty in images imported without an environment. */
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

const SHELL_CHARS = /[|&;<>$`*?(){}'"\\~]|^\s*\w+=/

/** A start command in exec form: plain words are split; anything needing a shell runs under `sh -c`. */
export const execForm = (command: string): string => {
  const parts = SHELL_CHARS.test(command) ? ["sh", "-c", command] : command.trim().split(/\s+/)
  return JSON.stringify(parts)
}

/** COPY lines for files; nested ones keep their folder (several sources into one folder flatten). */
const copyList = (files: ReadonlyArray<string>, dest: string, chown?: string): string | undefined => {
  if (files.length === 0) return undefined
  const own = chown ? `--chown=${chown} ` : ""
  const top = files.filter((f) => !f.includes("/"))
  const byDir = new Map<string, Array<string>>()
  for (const f of files.filter((f) => f.includes("/"))) {
    const dir = f.slice(0, f.lastIndexOf("/"))
    byDir.set(dir, [...(byDir.get(dir) ?? []), f])
  }
  const base = dest.endsWith("/") ? dest : `${dest}/`
  return [
    ...(top.length > 0 ? [`COPY ${own}${top.join(" ")} ${dest}`] : []),
    ...[...byDir].map(([dir, fs]) => `COPY ${own}${fs.join(" ")} ${base === "./" ? "" : base}${dir}/`)
  ].join("\n")
}

const lines = (...ls: ReadonlyArray<string | undefined | false>): string =>
  ls.filter((l): l is string => typeof l === "string").join("\n") + "\n"

const tail = (port: number | null, user: string, cmd: string): ReadonlyArray<string> => [
  `USER ${user}`,
  ...(port !== null ? [`EXPOSE ${port}`] : []),
  `CMD ${cmd}`
]

/**
 * The install step. A build needs the dev dependencies (bundlers, compilers) even where the base
 * image sets NODE_ENV=production (which makes every package manager skip them): ask for them.
 */
const nodeInstall = (h: BuildHints, prodOnly: boolean): string => {
  const lock = h.manifests
  switch (h.packageManager) {
    case "pnpm":
      return `RUN corepack enable && pnpm install ${prodOnly ? "--prod " : "--prod=false "}${lock.includes("pnpm-lock.yaml") ? "--frozen-lockfile" : "--no-frozen-lockfile"}`
    case "yarn":
      return `RUN corepack enable && yarn install ${prodOnly ? "--production " : "--production=false "}${lock.includes("yarn.lock") ? "--frozen-lockfile" : ""}`.trimEnd()
    case "bun":
      return `RUN npm install -g bun && bun install ${prodOnly ? "--production" : ""}`.trimEnd()
    default:
      return lock.includes("package-lock.json") || lock.includes("npm-shrinkwrap.json")
        ? `RUN npm ci${prodOnly ? " --omit=dev" : " --include=dev"} --no-audit --no-fund`
        : `RUN npm install${prodOnly ? " --omit=dev" : " --include=dev"} --no-audit --no-fund`
  }
}

/** Registry mirror settings for the install stage (npm, pnpm and yarn 1 read npm_config_registry). */
const npmEnv = (g: Gen): ReadonlyArray<string> =>
  g.opts.npmRegistry
    ? [
        `npm_config_registry=${g.opts.npmRegistry} COREPACK_NPM_REGISTRY=${g.opts.npmRegistry} YARN_NPM_REGISTRY_SERVER=${g.opts.npmRegistry}`
      ]
    : []

const runScript = (h: BuildHints, script: string): string =>
  h.packageManager === "npm" || !h.packageManager ? `npm run ${script}` : `${h.packageManager} run ${script}`

/** Static file server stage for a built front end (or a plain site) on `port`. */
const serveStatic = (
  g: Gen,
  port: number,
  copy: (dest: string, chown: string) => string
): ReadonlyArray<string> => {
  const image = g.img.static
  if (/nginx/.test(image)) {
    return [
      `FROM ${image} AS runtime`,
      // Unprivileged nginx: listen on the detected port, pid and caches under /tmp.
      `RUN sed -i 's/listen\\s*80;/listen ${port};/; s/listen\\s*\\[::\\]:80;/listen [::]:${port};/' /etc/nginx/conf.d/default.conf && sed -i '/^user/d; s,/var/run/nginx.pid,/tmp/nginx.pid,; s,/run/nginx.pid,/tmp/nginx.pid,' /etc/nginx/nginx.conf && chown -R 101:101 /var/cache/nginx`,
      copy("/usr/share/nginx/html/", "101:101"),
      ...tail(port, "101:101", JSON.stringify(["nginx", "-g", "daemon off;"]))
    ]
  }
  return [
    `FROM ${image} AS runtime`,
    copy("/site/", STATIC_UID),
    ...tail(port, STATIC_UID, JSON.stringify(["httpd", "-f", "-p", String(port), "-h", "/site"]))
  ]
}

const node = (s: DetectedService, h: BuildHints, g: Gen): string => {
  const img = g.img
  const cmd = execForm(s.startCommand ?? "node index.js")
  const env = `ENV NODE_ENV=production PATH=/app/node_modules/.bin:${SYSTEM_PATH}${s.port !== null ? ` PORT=${s.port}` : ""}`
  if (h.output !== undefined) {
    // A front end: build with the dev dependencies, then only the output is served.
    const out = h.output.replace(/^\.\/|\/$/g, "")
    return lines(
      `FROM ${img.node} AS build`,
      "WORKDIR /app",
      ...trust(g, npmEnv(g)),
      copyList(h.manifests, "./"),
      // NODE_ENV=production would make npm skip the build tools in devDependencies.
      nodeInstall(h, false),
      src(g, img.node, "./"),
      `RUN ${runScript(h, h.buildScriptName ?? "build")}`,
      "",
      ...serveStatic(
        g,
        s.port ?? 8080,
        (dest, chown) => `COPY --from=build --chown=${chown} /app/${out}/ ${dest}`
      )
    )
  }
  if (!h.hasDependencies) {
    // Nothing to install: no install stage, so base images without npm build too.
    return lines(
      `FROM ${img.node} AS runtime`,
      "WORKDIR /app",
      env,
      copyList(h.manifests, "./", NODE_UID),
      src(g, img.node, "./", NODE_UID),
      ...tail(s.port, NODE_UID, cmd)
    )
  }
  if (h.buildScript) {
    const prune =
      h.packageManager === "npm" || !h.packageManager
        ? "npm prune --omit=dev"
        : h.packageManager === "pnpm"
          ? "pnpm prune --prod"
          : "true"
    return lines(
      `FROM ${img.node} AS build`,
      "WORKDIR /app",
      ...trust(g, npmEnv(g)),
      copyList(h.manifests, "./"),
      nodeInstall(h, false),
      src(g, img.node, "./"),
      `RUN ${runScript(h, "build")} && ${prune}`,
      "",
      `FROM ${img.node} AS runtime`,
      "WORKDIR /app",
      env,
      `COPY --from=build --chown=${NODE_UID} /app ./`,
      ...tail(s.port, NODE_UID, cmd)
    )
  }
  return lines(
    `FROM ${img.node} AS deps`,
    "WORKDIR /app",
    ...trust(g, npmEnv(g)),
    copyList(h.manifests, "./"),
    nodeInstall(h, true),
    "",
    `FROM ${img.node} AS runtime`,
    "WORKDIR /app",
    env,
    copyList(h.manifests, "./", NODE_UID),
    `COPY --from=deps --chown=${NODE_UID} /app/node_modules ./node_modules`,
    src(g, img.node, "./", NODE_UID),
    ...tail(s.port, NODE_UID, cmd)
  )
}

const python = (s: DetectedService, h: BuildHints, g: Gen): string => {
  const img = g.img
  const m = h.manifests
  // Wheels shipped in the folder: an offline install, as air-gapped sites do it.
  const wheels = h.wheelDir
  const pip = wheels ? `pip install --no-index --find-links=/app/${wheels}` : "pip install"
  const copyWheels = wheels ? [`COPY ${wheels} ./${wheels}`] : []
  let install: Array<string>
  if (m.includes("requirements.txt"))
    install = ["COPY requirements.txt ./", ...copyWheels, `RUN ${pip} -r requirements.txt`]
  else if (m.includes("Pipfile"))
    install = [
      copyList(
        m.filter((f) => f.startsWith("Pipfile")),
        "./"
      )!,
      "RUN pip install pipenv && pipenv requirements > requirements.txt && pip install -r requirements.txt"
    ]
  else if (m.includes("pyproject.toml"))
    install = [
      copyList(
        m.filter((f) => /^(pyproject\.toml|poetry\.lock|uv\.lock|setup\.(py|cfg))$/.test(f)),
        "./"
      )!,
      ...copyWheels,
      // Dependencies first (cached), then the project itself once the sources are in.
      `RUN python -c "import tomllib;d=tomllib.load(open('pyproject.toml','rb'));print('\\n'.join(d.get('project',{}).get('dependencies',[])))" > /tmp/req.txt && ${pip} -r /tmp/req.txt`
    ]
  else {
    const reqs = m.filter((f) => f.endsWith(".txt"))
    install = reqs.length > 0 ? [copyList(reqs, "./")!, ...copyWheels, `RUN ${pip} -r ${reqs[0]}`] : []
  }
  const mirrors = [
    ...(g.opts.pipIndexUrl && !wheels ? [`PIP_INDEX_URL=${g.opts.pipIndexUrl}`] : []),
    ...(g.opts.pipFindLinks && !wheels ? [`PIP_FIND_LINKS=${g.opts.pipFindLinks}`] : [])
  ]
  const cmd = execForm(s.startCommand ?? "python main.py")
  return lines(
    `FROM ${img.python} AS build`,
    "WORKDIR /app",
    "ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
    ...(install.length > 0 && !wheels ? trust(g, mirrors) : []),
    "RUN python -m venv /opt/venv",
    `ENV PATH=/opt/venv/bin:${SYSTEM_PATH}`,
    ...install,
    "",
    `FROM ${img.python} AS runtime`,
    "WORKDIR /app",
    `ENV PATH=/opt/venv/bin:${SYSTEM_PATH} PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1${s.port !== null ? ` PORT=${s.port}` : ""}`,
    "COPY --from=build /opt/venv /opt/venv",
    src(g, img.python, ".", APP_UID),
    ...tail(s.port, APP_UID, cmd)
  )
}

const go = (s: DetectedService, h: BuildHints, g: Gen): string => {
  const img = g.img
  // Without go.mod (GOPATH-era code): a module is made for it; tidy resolves its imports.
  const moduleless = !h.manifests.includes("go.mod")
  return lines(
    `FROM ${img.go} AS build`,
    "WORKDIR /src",
    ...trust(g),
    ...(moduleless
      ? ["COPY . .", "RUN go mod init app && go mod tidy"]
      : [copyList(h.manifests, "./"), "RUN go mod download", "COPY . ."]),
    `RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/server ${h.target ?? "."}`,
    "",
    `FROM ${img["go-runtime"]} AS runtime`,
    "COPY --from=build /out/server /app/server",
    ...(s.port !== null ? [`ENV PORT=${s.port}`] : []),
    ...tail(s.port, "65532:65532", execForm("/app/server"))
  )
}

const ruby = (s: DetectedService, h: BuildHints, g: Gen): string =>
  lines(
    `FROM ${g.img.ruby} AS build`,
    "WORKDIR /app",
    ...trust(g),
    "ENV BUNDLE_WITHOUT=development:test BUNDLE_DEPLOYMENT=1 BUNDLE_PATH=/usr/local/bundle",
    copyList(h.manifests, "./"),
    "RUN bundle install",
    "",
    `FROM ${g.img.ruby} AS runtime`,
    "WORKDIR /app",
    `ENV BUNDLE_WITHOUT=development:test BUNDLE_DEPLOYMENT=1 BUNDLE_PATH=/usr/local/bundle RAILS_ENV=production RACK_ENV=production${s.port !== null ? ` PORT=${s.port}` : ""}`,
    "COPY --from=build /usr/local/bundle /usr/local/bundle",
    src(g, g.img.ruby, ".", APP_UID),
    ...tail(s.port, APP_UID, execForm(s.startCommand ?? "bundle exec rackup -o 0.0.0.0"))
  )

const rust = (s: DetectedService, h: BuildHints, g: Gen): string => {
  const bin = h.target ?? "app"
  return lines(
    `FROM ${g.img.rust} AS build`,
    "WORKDIR /src",
    ...trust(g),
    copyList(h.manifests, "./"),
    // A stub main builds the dependencies into a cached layer before the sources arrive.
    'RUN mkdir src && echo "fn main() {}" > src/main.rs && cargo build --release && rm -rf src',
    "COPY . .",
    "RUN touch src/main.rs && cargo build --release",
    "",
    `FROM ${g.img["rust-runtime"]} AS runtime`,
    `COPY --from=build /src/target/release/${bin} /app/${bin}`,
    ...(s.port !== null ? [`ENV PORT=${s.port}`] : []),
    ...tail(s.port, APP_UID, execForm(`/app/${bin}`))
  )
}

const java = (s: DetectedService, h: BuildHints, g: Gen): string => {
  const img = g.img
  const gradle = h.buildTool === "gradle"
  return lines(
    `FROM ${gradle ? img["java-gradle"] : img["java-maven"]} AS build`,
    "WORKDIR /src",
    copyList(h.manifests, "./"),
    gradle ? "RUN gradle dependencies --no-daemon -q || true" : "RUN mvn -B -q dependency:go-offline",
    "COPY . .",
    gradle
      ? "RUN gradle bootJar --no-daemon -x test || gradle build --no-daemon -x test; cp $(ls build/libs/*.jar | grep -v plain | head -n1) /app.jar"
      : "RUN mvn -B -q package -DskipTests && cp $(ls target/*.jar | grep -v original | head -n1) /app.jar",
    "",
    `FROM ${img.java} AS runtime`,
    "WORKDIR /app",
    "COPY --from=build /app.jar /app/app.jar",
    ...(s.port !== null ? [`ENV PORT=${s.port} SERVER_PORT=${s.port}`] : []),
    ...tail(s.port, APP_UID, execForm("java -jar /app/app.jar"))
  )
}

const php = (s: DetectedService, h: BuildHints, g: Gen): string => {
  const img = g.img
  const composer = h.manifests.includes("composer.json")
  return lines(
    ...(composer
      ? [
          `FROM ${img["php-composer"]} AS deps`,
          "WORKDIR /app",
          ...trust(g),
          copyList(h.manifests, "./"),
          "RUN composer install --no-dev --no-scripts --no-autoloader --prefer-dist --ignore-platform-reqs",
          src(g, img.php, "."),
          "RUN composer dump-autoload --no-dev --optimize",
          ""
        ]
      : []),
    `FROM ${img.php} AS runtime`,
    "WORKDIR /app",
    ...(composer ? [`COPY --from=deps --chown=${APP_UID} /app /app`] : [src(g, img.php, ".", APP_UID)]),
    ...(s.port !== null ? [`ENV PORT=${s.port}`] : []),
    ...tail(
      s.port,
      APP_UID,
      execForm(s.startCommand ?? `php -S 0.0.0.0:${s.port ?? 8000} -t ${h.siteDir ?? "."}`)
    )
  )
}

const deno = (s: DetectedService, h: BuildHints, g: Gen): string =>
  lines(
    `FROM ${g.img.deno} AS deps`,
    "WORKDIR /app",
    ...trust(g),
    copyList(h.manifests, "./"),
    src(g, g.img.deno, "."),
    h.target ? `RUN deno cache ${h.target}` : "RUN deno install || true",
    "",
    `FROM ${g.img.deno} AS runtime`,
    "WORKDIR /app",
    "ENV DENO_DIR=/deno-dir",
    "COPY --from=deps --chown=1993:1993 /deno-dir /deno-dir",
    `COPY --from=deps --chown=1993:1993 /app /app`,
    ...(s.port !== null ? [`ENV PORT=${s.port}`] : []),
    ...tail(
      s.port,
      "1993:1993",
      execForm(s.startCommand ?? `deno run --allow-net --allow-env ${h.target ?? "main.ts"}`)
    )
  )

const elixir = (s: DetectedService, h: BuildHints, g: Gen): string => {
  const app = h.target ?? "app"
  return lines(
    `FROM ${g.img.elixir} AS build`,
    "WORKDIR /src",
    ...trust(g),
    "ENV MIX_ENV=prod",
    "RUN mix local.hex --force && mix local.rebar --force",
    copyList(h.manifests, "./"),
    "RUN mix deps.get --only prod && mix deps.compile",
    "COPY . .",
    "RUN mix release --path /out",
    "",
    `FROM ${g.img["elixir-runtime"]} AS runtime`,
    "WORKDIR /app",
    `ENV LANG=C.UTF-8 PHX_SERVER=true${s.port !== null ? ` PORT=${s.port}` : ""}`,
    `COPY --from=build --chown=${APP_UID} /out /app`,
    ...tail(s.port, APP_UID, execForm(s.startCommand ?? `/app/bin/${app} start`))
  )
}

const staticSite = (s: DetectedService, h: BuildHints, g: Gen): string => {
  const port = s.port ?? 8080
  const from = h.siteDir && h.siteDir !== "." ? `${h.siteDir}/` : "."
  return lines(...serveStatic(g, port, (dest, chown) => `COPY --chown=${chown} ${from} ${dest}`))
}

const GENERATORS: Record<BuildHints["stack"], (s: DetectedService, h: BuildHints, g: Gen) => string> = {
  node,
  python,
  go,
  ruby,
  rust,
  java,
  php,
  deno,
  elixir,
  static: staticSite
}

/** The Dockerfile for a planned service; undefined when it brings its own Dockerfile or is an image. */
export const generateDockerfile = (
  planned: PlannedService,
  images: BaseImageMap = DEFAULT_BASE_IMAGES,
  build: DockerfileBuildOptions = {}
): GeneratedDockerfile | undefined => {
  if (!planned.hints) return undefined
  const g: Gen = { img: images, opts: build, usesCa: false }
  const body = finish(g, GENERATORS[planned.hints.stack](planned.service, planned.hints, g))
  // No service name in the text: an upload's folder (and so its detected name) is new on every
  // upload, and the Dockerfile is part of the content hash that lets an unchanged redeploy skip work.
  const content = `# Generated by kyozo (${planned.hints.stack})\n${body}`
  return {
    service: planned.service.name,
    path: planned.service.path,
    content,
    ...(g.usesCa ? { usesBuildCa: true } : {})
  }
}

/** Entries never worth sending to a build: dependencies, VCS data, local env files, build output. */
export const DEFAULT_DOCKERIGNORE =
  [
    ".git",
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    "target",
    "_build",
    "deps",
    ".next",
    ".env",
    ".env.*",
    "!.env.example",
    "Dockerfile.kyozo",
    ".kyozo-build-ca.pem"
  ].join("\n") + "\n"

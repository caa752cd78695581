/**
 * Multi-stage Dockerfiles for folders that have none: dependency manifests are copied before the
 * sources so the install layer caches, installs are production-only, the image runs as a non-root
 * user, and it EXPOSEs the detected port and starts with the detected command in exec form.
 */
import type { BuildHints, DetectedService, PlannedService } from "../topology/Topology.js"
import { type BaseImageMap, DEFAULT_BASE_IMAGES } from "./BaseImages.js"

export interface GeneratedDockerfile {
  readonly service: string
  readonly path: string
  readonly content: string
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

const copyList = (files: ReadonlyArray<string>, dest: string, chown?: string): string | undefined =>
  files.length === 0 ? undefined : `COPY ${chown ? `--chown=${chown} ` : ""}${files.join(" ")} ${dest}`

const lines = (...ls: ReadonlyArray<string | undefined | false>): string =>
  ls.filter((l): l is string => typeof l === "string").join("\n") + "\n"

const tail = (port: number | null, user: string, cmd: string): ReadonlyArray<string> => [
  `USER ${user}`,
  ...(port !== null ? [`EXPOSE ${port}`] : []),
  `CMD ${cmd}`
]

const nodeInstall = (h: BuildHints, prodOnly: boolean): string => {
  const lock = h.manifests
  switch (h.packageManager) {
    case "pnpm":
      return `RUN corepack enable && pnpm install ${prodOnly ? "--prod " : ""}${lock.includes("pnpm-lock.yaml") ? "--frozen-lockfile" : "--no-frozen-lockfile"}`
    case "yarn":
      return `RUN corepack enable && yarn install ${prodOnly ? "--production " : ""}${lock.includes("yarn.lock") ? "--frozen-lockfile" : ""}`.trimEnd()
    case "bun":
      return `RUN npm install -g bun && bun install ${prodOnly ? "--production" : ""}`.trimEnd()
    default:
      return lock.includes("package-lock.json") || lock.includes("npm-shrinkwrap.json")
        ? `RUN npm ci${prodOnly ? " --omit=dev" : ""}`
        : `RUN npm install${prodOnly ? " --omit=dev" : ""}`
  }
}

const node = (s: DetectedService, h: BuildHints, img: BaseImageMap): string => {
  const cmd = execForm(s.startCommand ?? "node index.js")
  const env = `ENV NODE_ENV=production PATH=/app/node_modules/.bin:${SYSTEM_PATH}${s.port !== null ? ` PORT=${s.port}` : ""}`
  if (!h.hasDependencies) {
    // Nothing to install: no install stage, so base images without npm build too.
    return lines(
      `FROM ${img.node} AS runtime`,
      "WORKDIR /app",
      env,
      copyList(h.manifests, "./", NODE_UID),
      `COPY --chown=${NODE_UID} . .`,
      ...tail(s.port, NODE_UID, cmd)
    )
  }
  if (h.buildScript) {
    const run =
      h.packageManager === "npm" || !h.packageManager ? "npm run build" : `${h.packageManager} run build`
    const prune =
      h.packageManager === "npm" || !h.packageManager
        ? "npm prune --omit=dev"
        : h.packageManager === "pnpm"
          ? "pnpm prune --prod"
          : "true"
    return lines(
      `FROM ${img.node} AS build`,
      "WORKDIR /app",
      copyList(h.manifests, "./"),
      nodeInstall(h, false),
      "COPY . .",
      `RUN ${run} && ${prune}`,
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
    copyList(h.manifests, "./"),
    nodeInstall(h, true),
    "",
    `FROM ${img.node} AS runtime`,
    "WORKDIR /app",
    env,
    copyList(h.manifests, "./", NODE_UID),
    `COPY --from=deps --chown=${NODE_UID} /app/node_modules ./node_modules`,
    `COPY --chown=${NODE_UID} . .`,
    ...tail(s.port, NODE_UID, cmd)
  )
}

const python = (s: DetectedService, h: BuildHints, img: BaseImageMap): string => {
  const m = h.manifests
  let install: Array<string>
  if (m.includes("requirements.txt"))
    install = ["COPY requirements.txt ./", "RUN pip install -r requirements.txt"]
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
      // Dependencies first (cached), then the project itself once the sources are in.
      `RUN python -c "import tomllib;d=tomllib.load(open('pyproject.toml','rb'));print('\\n'.join(d.get('project',{}).get('dependencies',[])))" > /tmp/req.txt && pip install -r /tmp/req.txt`
    ]
  else {
    const reqs = m.filter((f) => f.endsWith(".txt"))
    install = reqs.length > 0 ? [copyList(reqs, "./")!, `RUN pip install -r ${reqs[0]}`] : []
  }
  const cmd = execForm(s.startCommand ?? "python main.py")
  return lines(
    `FROM ${img.python} AS build`,
    "WORKDIR /app",
    "ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
    "RUN python -m venv /opt/venv",
    `ENV PATH=/opt/venv/bin:${SYSTEM_PATH}`,
    ...install,
    "",
    `FROM ${img.python} AS runtime`,
    "WORKDIR /app",
    `ENV PATH=/opt/venv/bin:${SYSTEM_PATH} PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1${s.port !== null ? ` PORT=${s.port}` : ""}`,
    "COPY --from=build /opt/venv /opt/venv",
    `COPY --chown=${APP_UID} . .`,
    ...tail(s.port, APP_UID, cmd)
  )
}

const go = (s: DetectedService, h: BuildHints, img: BaseImageMap): string =>
  lines(
    `FROM ${img.go} AS build`,
    "WORKDIR /src",
    copyList(h.manifests, "./"),
    "RUN go mod download",
    "COPY . .",
    `RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/server ${h.target ?? "."}`,
    "",
    `FROM ${img["go-runtime"]} AS runtime`,
    "COPY --from=build /out/server /app/server",
    ...(s.port !== null ? [`ENV PORT=${s.port}`] : []),
    ...tail(s.port, "65532:65532", execForm("/app/server"))
  )

const ruby = (s: DetectedService, h: BuildHints, img: BaseImageMap): string =>
  lines(
    `FROM ${img.ruby} AS build`,
    "WORKDIR /app",
    "ENV BUNDLE_WITHOUT=development:test BUNDLE_DEPLOYMENT=1 BUNDLE_PATH=/usr/local/bundle",
    copyList(h.manifests, "./"),
    "RUN bundle install",
    "",
    `FROM ${img.ruby} AS runtime`,
    "WORKDIR /app",
    `ENV BUNDLE_WITHOUT=development:test BUNDLE_DEPLOYMENT=1 BUNDLE_PATH=/usr/local/bundle RAILS_ENV=production RACK_ENV=production${s.port !== null ? ` PORT=${s.port}` : ""}`,
    "COPY --from=build /usr/local/bundle /usr/local/bundle",
    `COPY --chown=${APP_UID} . .`,
    ...tail(s.port, APP_UID, execForm(s.startCommand ?? "bundle exec rackup -o 0.0.0.0"))
  )

const rust = (s: DetectedService, h: BuildHints, img: BaseImageMap): string => {
  const bin = h.target ?? "app"
  return lines(
    `FROM ${img.rust} AS build`,
    "WORKDIR /src",
    copyList(h.manifests, "./"),
    // A stub main builds the dependencies into a cached layer before the sources arrive.
    'RUN mkdir src && echo "fn main() {}" > src/main.rs && cargo build --release && rm -rf src',
    "COPY . .",
    "RUN touch src/main.rs && cargo build --release",
    "",
    `FROM ${img["rust-runtime"]} AS runtime`,
    `COPY --from=build /src/target/release/${bin} /app/${bin}`,
    ...(s.port !== null ? [`ENV PORT=${s.port}`] : []),
    ...tail(s.port, APP_UID, execForm(`/app/${bin}`))
  )
}

const java = (s: DetectedService, h: BuildHints, img: BaseImageMap): string => {
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

const php = (s: DetectedService, h: BuildHints, img: BaseImageMap): string =>
  lines(
    ...(h.manifests.includes("composer.json")
      ? [
          `FROM ${img["php-composer"]} AS deps`,
          "WORKDIR /app",
          copyList(h.manifests, "./"),
          "RUN composer install --no-dev --no-scripts --no-autoloader --prefer-dist --ignore-platform-reqs",
          "COPY . .",
          "RUN composer dump-autoload --no-dev --optimize",
          ""
        ]
      : []),
    `FROM ${img.php} AS runtime`,
    "WORKDIR /app",
    ...(h.manifests.includes("composer.json")
      ? [`COPY --from=deps --chown=${APP_UID} /app /app`]
      : [`COPY --chown=${APP_UID} . .`]),
    ...(s.port !== null ? [`ENV PORT=${s.port}`] : []),
    ...tail(
      s.port,
      APP_UID,
      execForm(s.startCommand ?? `php -S 0.0.0.0:${s.port ?? 8000} -t ${h.siteDir ?? "."}`)
    )
  )

const deno = (s: DetectedService, h: BuildHints, img: BaseImageMap): string =>
  lines(
    `FROM ${img.deno} AS deps`,
    "WORKDIR /app",
    copyList(h.manifests, "./"),
    "COPY . .",
    h.target ? `RUN deno cache ${h.target}` : "RUN deno install || true",
    "",
    `FROM ${img.deno} AS runtime`,
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

const elixir = (s: DetectedService, h: BuildHints, img: BaseImageMap): string => {
  const app = h.target ?? "app"
  return lines(
    `FROM ${img.elixir} AS build`,
    "WORKDIR /src",
    "ENV MIX_ENV=prod",
    "RUN mix local.hex --force && mix local.rebar --force",
    copyList(h.manifests, "./"),
    "RUN mix deps.get --only prod && mix deps.compile",
    "COPY . .",
    "RUN mix release --path /out",
    "",
    `FROM ${img["elixir-runtime"]} AS runtime`,
    "WORKDIR /app",
    `ENV LANG=C.UTF-8 PHX_SERVER=true${s.port !== null ? ` PORT=${s.port}` : ""}`,
    `COPY --from=build --chown=${APP_UID} /out /app`,
    ...tail(s.port, APP_UID, execForm(s.startCommand ?? `/app/bin/${app} start`))
  )
}

const staticSite = (s: DetectedService, h: BuildHints, img: BaseImageMap): string => {
  const port = s.port ?? 8080
  const src = h.siteDir && h.siteDir !== "." ? `${h.siteDir}/` : "."
  if (/nginx/.test(img.static)) {
    return lines(
      `FROM ${img.static} AS runtime`,
      // Unprivileged nginx: listen on the detected port, pid and caches under /tmp.
      `RUN sed -i 's/listen\\s*80;/listen ${port};/; s/listen\\s*\\[::\\]:80;/listen [::]:${port};/' /etc/nginx/conf.d/default.conf && sed -i '/^user/d; s,/var/run/nginx.pid,/tmp/nginx.pid,; s,/run/nginx.pid,/tmp/nginx.pid,' /etc/nginx/nginx.conf && chown -R 101:101 /var/cache/nginx`,
      `COPY --chown=101:101 ${src} /usr/share/nginx/html/`,
      ...tail(port, "101:101", JSON.stringify(["nginx", "-g", "daemon off;"]))
    )
  }
  return lines(
    `FROM ${img.static} AS runtime`,
    `COPY --chown=${STATIC_UID} ${src} /site/`,
    ...tail(port, STATIC_UID, JSON.stringify(["httpd", "-f", "-p", String(port), "-h", "/site"]))
  )
}

const GENERATORS: Record<
  BuildHints["stack"],
  (s: DetectedService, h: BuildHints, img: BaseImageMap) => string
> = {
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
  images: BaseImageMap = DEFAULT_BASE_IMAGES
): GeneratedDockerfile | undefined => {
  if (!planned.hints) return undefined
  const content = `# Generated by kyozo for ${planned.service.name} (${planned.hints.stack})\n${GENERATORS[planned.hints.stack](planned.service, planned.hints, images)}`
  return { service: planned.service.name, path: planned.service.path, content }
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
    "Dockerfile.kyozo"
  ].join("\n") + "\n"

/**
 * Java/Kotlin on the JVM: pom.xml or build.gradle(.kts); Spring Boot, Quarkus, Micronaut;
 * `server.port` from application.properties / application.yml.
 */
import type { Evidence } from "@kyozo/api/domain/Topology"
import { Effect } from "effect"

import { backingFromDependency, backingFromUrl, BackingSet } from "./BackingServices.js"
import { ev, lineOf, scanForPort, type StackDetector } from "./Stack.js"

const BUILD_FILES = ["pom.xml", "build.gradle", "build.gradle.kts"]
const SETTINGS_FILES = ["settings.gradle", "settings.gradle.kts"]

/** Gradle scripts (Groovy and Kotlin) without their comments: an `include` in a comment is not one. */
const stripComments = (text: string): string =>
  text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'])\/\/.*$/gm, "$1")

export const detectJava: StackDetector = (ctx) =>
  Effect.gen(function* () {
    // A Gradle root may have only settings.gradle: its projects hold the build files.
    const buildFile = BUILD_FILES.find((f) => ctx.has(f)) ?? SETTINGS_FILES.find((f) => ctx.has(f))
    if (!buildFile) return undefined
    const text = (yield* ctx.read(buildFile)) ?? ""
    const file = ctx.rel(buildFile)
    const buildTool = buildFile === "pom.xml" ? "maven" : "gradle"
    const evidence: Array<Evidence> = [ev(file, `${buildTool} build file`)]
    let framework: string | null = null
    for (const [needle, fw] of [
      ["spring-boot", "spring"],
      ["org.springframework.boot", "spring"],
      ["io.quarkus", "quarkus"],
      ["io.micronaut", "micronaut"],
      ["io.ktor", "ktor"],
      ["io.javalin", "javalin"],
      ["io.dropwizard", "dropwizard"]
    ] as const) {
      if (text.includes(needle)) {
        framework = fw
        evidence.push(ev(file, `uses ${needle}`, lineOf(text, needle)))
        break
      }
    }
    const requires = new BackingSet()
    const artifacts =
      buildFile === "pom.xml"
        ? [...text.matchAll(/<artifactId>\s*([\w.-]+)\s*<\/artifactId>/g)].map((m) => m[1]!)
        : [...text.matchAll(/["'][\w.-]+:([\w.-]+)(?::[^"']*)?["']/g)].map((m) => m[1]!)
    for (const a of artifacts)
      requires.add(backingFromDependency(a), ev(file, `depends on ${a}`, lineOf(text, a)))

    // Multi-module builds: the root aggregates, the modules run.
    const modules =
      buildFile === "pom.xml"
        ? [...text.matchAll(/<module>\s*([^<\s]+)\s*<\/module>/g)].map((m) => m[1]!)
        : []
    if (buildTool === "gradle") {
      for (const s of ["settings.gradle", "settings.gradle.kts"]) {
        const raw = yield* ctx.read(s)
        const st = raw === undefined ? undefined : stripComments(raw)
        if (st)
          for (const m of st.matchAll(/include\s*\(?\s*((?:["'][:\w.-]+["']\s*,?\s*)+)/g)) {
            for (const inc of m[1]!.matchAll(/["']:?([\w.-]+)["']/g)) modules.push(inc[1]!.replace(/:/g, "/"))
          }
      }
    }
    const configs = [
      "src/main/resources/application.properties",
      "src/main/resources/application.yml",
      "src/main/resources/application.yaml"
    ]
    for (const c of configs) {
      const ct = yield* ctx.read(c)
      if (!ct) continue
      const url = /(?:spring\.datasource\.url|url)\s*[=:]\s*(\S+)/.exec(ct)
      if (url) requires.add(backingFromUrl(url[1]!), ev(ctx.rel(c), "datasource url", lineOf(ct, url[0])))
      if (/spring\.(data\.)?redis\.|^\s*redis:/m.test(ct))
        requires.add("redis", ev(ctx.rel(c), "redis settings", lineOf(ct, /redis/)))
      if (/spring\.rabbitmq\./.test(ct))
        requires.add("rabbitmq", ev(ctx.rel(c), "rabbitmq settings", lineOf(ct, "rabbitmq")))
    }
    const port = yield* scanForPort(ctx, [
      ...configs,
      "src/main/resources/META-INF/microprofile-config.properties"
    ])
    const hasMainClass =
      framework !== null ||
      (yield* Effect.forEach(
        ctx.filesBelow(8, /^src\/main\/(java|kotlin)\/.*\.(java|kt)$/).slice(0, 40),
        (f) =>
          Effect.map(ctx.read(f), (s) => (s ? /static\s+void\s+main\s*\(|^fun\s+main\s*\(/m.test(s) : false))
      )).some(Boolean)
    const settingsOnly = SETTINGS_FILES.includes(buildFile)
    if (settingsOnly) evidence.push(ev(file, "Gradle settings without a root build file: its projects build"))
    const aggregator = (modules.length > 0 || settingsOnly) && !ctx.has("src/main")
    const library = aggregator || !hasMainClass
    const name =
      buildFile === "pom.xml"
        ? (/<\/parent>[\s\S]*?<artifactId>\s*([\w.-]+)\s*<\/artifactId>/.exec(text)?.[1] ??
          /<artifactId>\s*([\w.-]+)\s*<\/artifactId>/.exec(text)?.[1])
        : /rootProject\.name\s*=\s*["']([\w.-]+)["']/.exec(
            (yield* ctx.read("settings.gradle")) ?? (yield* ctx.read("settings.gradle.kts")) ?? ""
          )?.[1]
    const manifests =
      buildTool === "maven"
        ? ["pom.xml", ".mvn", "mvnw"].filter((f) => ctx.has(f))
        : [
            "build.gradle",
            "build.gradle.kts",
            "settings.gradle",
            "settings.gradle.kts",
            "gradle.properties",
            "gradlew"
          ].filter((f) => ctx.has(f))
    return {
      kind: "java",
      framework,
      ...(name ? { name } : {}),
      ...(port ? { port } : {}),
      startCommand: library ? null : "java -jar /app/app.jar",
      requires,
      evidence,
      confidence: framework ? 0.9 : hasMainClass ? 0.7 : 0.4,
      library,
      ...(library
        ? {
            libraryReason: aggregator
              ? "multi-module build root"
              : "JVM project without a main class (a library)"
          }
        : {}),
      ...(aggregator ? { workspaces: modules } : {}),
      hints: { stack: "java", manifests, buildTool }
    }
  })

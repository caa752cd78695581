/**
 * DockerRuntime against the real engine on this machine (through the ContainerRuntime layer).
 * Needs the local base images: `bash scripts/base-images.sh`.
 */
import * as fs from "node:fs"
import * as net from "node:net"

import { describe, expect, it, layer } from "@effect/vitest"
import { type BuildEvent, ContainerRuntime, type ContainerSpec } from "@kyozo/core/engine/ContainerRuntime"
import {
  createBody,
  Demuxer,
  layerWith,
  make,
  parseDockerHost,
  splitTimestamp
} from "@kyozo/core/engine/DockerRuntime"
import { Managed } from "@kyozo/core/engine/Labels"
import { Chunk, Duration, Effect, Either, Fiber, Schedule, Stream } from "effect"

import { dockerSuite, requireBaseImages, StaticImage, tarOf, uniqueName } from "./support/docker.js"

const docker = await dockerSuite("docker-runtime")
if (docker.available) await requireBaseImages(docker.client)

const Runtime = layerWith({ timeout: Duration.seconds(20) })

/** A container spec from the static image, labelled for this test run's cleanup. */
const spec = (overrides: Partial<ContainerSpec> = {}): ContainerSpec => ({
  name: uniqueName(),
  image: StaticImage,
  cmd: ["sleep", "30"],
  ...overrides,
  labels: { ...docker.labels, ...overrides.labels }
})

const contextOf = (files: Record<string, string>) =>
  Stream.unwrap(
    Effect.promise(() => tarOf(files)).pipe(Effect.map((buf) => Stream.make(new Uint8Array(buf))))
  )

const httpGet = (url: string) =>
  Effect.tryPromise(() => fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.text())).pipe(
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.intersect(Schedule.recurs(40))))
  )

const rawInspect = (id: string) => Effect.promise(() => docker.client.getContainer(id).inspect())

describe("Docker wire formats", () => {
  const frame = (stream: 1 | 2, text: string) => {
    const payload = Buffer.from(text)
    const header = Buffer.alloc(8)
    header[0] = stream
    header.writeUInt32BE(payload.length, 4)
    return Buffer.concat([header, payload])
  }

  it("demultiplexes frames split at any byte into lines per stream", () => {
    const bytes = Buffer.concat([frame(1, "one\ntw"), frame(2, "err ☃\n"), frame(1, "o\nlast")])
    for (let cut = 0; cut <= bytes.length; cut++) {
      const d = new Demuxer(false)
      const lines = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut)), ...d.end()]
      expect(lines).toEqual([
        { stream: "stdout", text: "one" },
        { stream: "stderr", text: "err ☃" },
        { stream: "stdout", text: "two" },
        { stream: "stdout", text: "last" }
      ])
    }
    // With a TTY there is no framing.
    const tty = new Demuxer(true)
    expect([...tty.push(Buffer.from("a\r\nb")), ...tty.end()]).toEqual([
      { stream: "stdout", text: "a" },
      { stream: "stdout", text: "b" }
    ])
  })

  it("splits the RFC3339Nano timestamp prefix", () => {
    expect(splitTimestamp("2024-05-01T10:00:00.123456789Z hello world")).toEqual({
      timestamp: Date.parse("2024-05-01T10:00:00.123Z"),
      line: "hello world"
    })
    expect(splitTimestamp("no timestamp")).toEqual({ timestamp: null, line: "no timestamp" })
  })

  it("parses DOCKER_HOST forms", () => {
    expect(parseDockerHost(undefined).endpoint).toBe("unix:///var/run/docker.sock")
    expect(parseDockerHost("unix:///tmp/d.sock").options).toMatchObject({
      socketPath: "/tmp/d.sock",
      host: undefined
    })
    expect(parseDockerHost("tcp://10.0.0.5:2375")).toMatchObject({
      endpoint: "tcp://10.0.0.5:2375",
      options: { host: "10.0.0.5", port: "2375", protocol: "http" }
    })
  })

  it("always merges kyozo.managed into the labels and applies the safety defaults", () => {
    const body = createBody({
      name: "x",
      image: "img",
      labels: { a: "b" },
      ports: [{ containerPort: 80, hostPort: 8081 }]
    })
    expect(body.Labels).toEqual({ a: "b", [Managed]: "true" })
    expect(body.HostConfig).toMatchObject({
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      Privileged: false,
      PortBindings: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "8081" }] }
    })
    // A caller cannot switch the managed label off.
    expect(createBody({ name: "x", image: "img", labels: { [Managed]: "false" } }).Labels).toEqual({
      [Managed]: "true"
    })
  })
})

describe.skipIf(!docker.available)("DockerRuntime (real engine)", () => {
  layer(Runtime, { excludeTestServices: true })((it) => {
    it.scoped(
      "runs a container end to end: create, start, inspect, HTTP, logs, stats, exec, stop, remove",
      () =>
        Effect.gen(function* () {
          const rt = yield* ContainerRuntime
          const ref = yield* rt.createContainer(
            spec({
              cmd: ["sh", "-c", "echo hello-out; echo hello-err >&2; exec httpd -f -p 8080 -h /var/www"],
              ports: [{ containerPort: 8080 }]
            })
          )
          yield* rt.startContainer(ref.id)
          // Starting twice is fine (304).
          yield* rt.startContainer(ref.id)

          const info = yield* rt.inspectContainer(ref.id)
          expect(info.name).toBe(ref.name)
          expect(info.running).toBe(true)
          expect(info.state).toBe("running")
          expect(info.labels[Managed]).toBe("true")
          expect(info.labels["kyozo.test"]).toBe(docker.runId)
          expect(info.ports).toHaveLength(1)
          const port = info.ports[0]!
          expect(port).toMatchObject({ containerPort: 8080, protocol: "tcp", hostIp: "127.0.0.1" })
          expect(port.hostPort).toBeGreaterThan(0)

          // Safety defaults, as the engine recorded them.
          const raw = yield* rawInspect(ref.id)
          expect(raw.HostConfig.CapDrop).toEqual(["ALL"])
          expect(raw.HostConfig.SecurityOpt).toEqual(["no-new-privileges"])
          expect(raw.HostConfig.PidsLimit).toBe(256)
          expect(raw.HostConfig.Memory).toBe(512 * 1024 * 1024)
          expect(raw.HostConfig.NanoCpus).toBe(1_000_000_000)
          expect(raw.HostConfig.Privileged).toBe(false)
          expect(raw.HostConfig.PortBindings["8080/tcp"]).toEqual([{ HostIp: "127.0.0.1", HostPort: "" }])

          const body = yield* httpGet(`http://127.0.0.1:${port.hostPort}/`)
          expect(body.trim()).toBe("kyozo static")

          const lines = Chunk.toArray(yield* Stream.runCollect(rt.logs(ref.id)))
          const out = lines.find((l) => l.line === "hello-out")
          const err = lines.find((l) => l.line === "hello-err")
          expect(out?.stream).toBe("stdout")
          expect(err?.stream).toBe("stderr")
          expect(out?.timestamp).toBeGreaterThan(Date.now() - 60_000)
          expect(out?.timestamp).toBeLessThanOrEqual(Date.now() + 1000)

          // Follow mode hands over what is there and keeps the stream open until we stop reading.
          const followed = yield* rt
            .logs(ref.id, { follow: true, tail: 10 })
            .pipe(Stream.take(2), Stream.runCollect, Effect.timeout("5 seconds"))
          expect(Chunk.toArray(followed).map((l) => l.line)).toEqual(
            expect.arrayContaining(["hello-out", "hello-err"])
          )

          const stats = yield* rt.stats(ref.id)
          expect(stats.containerId).toBe(ref.id)
          expect(stats.cpuTotalNs).toBeGreaterThan(0)
          expect(stats.memoryBytes).toBeGreaterThan(0)
          expect(stats.memoryLimitBytes).toBe(512 * 1024 * 1024)
          expect(stats.pids).toBeGreaterThanOrEqual(1)
          expect(stats.netRxBytes).toBeGreaterThan(0)
          expect(stats.readAt).toBeGreaterThan(Date.now() - 60_000)

          const result = yield* rt.exec(ref.id, ["sh", "-c", "echo from-exec; echo to-stderr >&2; exit 3"])
          expect(result.exitCode).toBe(3)
          expect(result.output).toContain("from-exec")
          expect(result.output).toContain("to-stderr")
          const ok = yield* rt.exec(ref.id, ["cat", "/var/www/index.html"])
          expect(ok).toEqual({ exitCode: 0, output: "kyozo static\n" })

          yield* rt.stopContainer(ref.id, { timeoutSeconds: 1 })
          // Stopping a stopped container succeeds (304).
          yield* rt.stopContainer(ref.id, { timeoutSeconds: 1 })
          const stopped = yield* rt.inspectContainer(ref.id)
          expect(stopped.running).toBe(false)
          expect(stopped.state).toBe("exited")
          expect(stopped.finishedAt).not.toBeNull()

          const execStopped = yield* Effect.either(rt.exec(ref.id, ["true"]))
          expect(Either.isLeft(execStopped) && execStopped.left._tag).toBe("InvalidContainerState")

          yield* rt.removeContainer(ref.id)
          yield* rt.removeContainer(ref.id)
          const gone = yield* Effect.either(rt.inspectContainer(ref.id))
          expect(Either.isLeft(gone) && gone.left._tag).toBe("ContainerNotFound")
          const noStart = yield* Effect.either(rt.startContainer(ref.id))
          expect(Either.isLeft(noStart) && noStart.left._tag).toBe("ContainerNotFound")
        }),
      30_000
    )

    it.effect("maps create failures: NameConflict, ImageNotFound", () =>
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const first = spec()
        yield* rt.createContainer(first)
        const again = yield* Effect.either(rt.createContainer(first))
        expect(Either.isLeft(again) && again.left).toMatchObject({
          _tag: "NameConflict",
          kind: "container",
          name: first.name
        })

        const missing = yield* Effect.either(rt.createContainer(spec({ image: "kyozo-test-missing:nope" })))
        expect(Either.isLeft(missing) && missing.left).toMatchObject({
          _tag: "ImageNotFound",
          image: "kyozo-test-missing:nope"
        })
        yield* rt.removeContainer(first.name, { force: true })
      })
    )

    it.effect("label listing finds only kyozo containers", () =>
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const ours = yield* rt.createContainer(spec())
        // A container made behind Kyozo's back: test label, but no kyozo.managed.
        const foreign = yield* Effect.promise(() =>
          docker.client.createContainer({
            name: uniqueName(),
            Image: StaticImage,
            Cmd: ["sleep", "30"],
            Labels: docker.labels
          })
        )
        const managed = yield* rt.listContainers({
          all: true,
          labels: { [Managed]: "true", "kyozo.test": docker.runId }
        })
        const ids = managed.map((c) => c.id)
        expect(ids).toContain(ours.id)
        expect(ids).not.toContain(foreign.id)
        // The filter is what excludes it: without kyozo.managed both are listed.
        const everything = yield* rt.listContainers({ all: true, labels: { "kyozo.test": docker.runId } })
        expect(everything.map((c) => c.id)).toEqual(expect.arrayContaining([ours.id, foreign.id]))
        // `null` matches the key with any value.
        const byKey = yield* rt.listContainers({
          all: true,
          labels: { [Managed]: null, "kyozo.test": docker.runId }
        })
        expect(byKey.map((c) => c.id)).toEqual([ours.id])
        expect(byKey[0]!.name).toBe(ours.name)
        expect(byKey[0]!.state).toBe("created")
      })
    )

    it.effect(
      "a failing RUN step fails with BuildFailed and the command's output in the log tail",
      () =>
        Effect.gen(function* () {
          const rt = yield* ContainerRuntime
          const tag = `${uniqueName()}:broken`
          const events = yield* rt
            .buildImage({
              tag,
              labels: docker.labels,
              context: contextOf({
                Dockerfile: `FROM ${StaticImage}\nRUN echo about-to-fail-marker && exit 7\n`
              })
            })
            .pipe(Stream.either, Stream.runCollect, Effect.map(Chunk.toArray))
          const last = events[events.length - 1]!
          expect(Either.isLeft(last)).toBe(true)
          if (Either.isLeft(last)) {
            expect(last.left._tag).toBe("BuildFailed")
            if (last.left._tag === "BuildFailed") {
              expect(last.left.image).toBe(tag)
              // The classic builder says "returned a non-zero code: 7", BuildKit "exit code: 7".
              expect(last.left.reason).toMatch(/non-zero code: 7|exit code: 7/)
              expect(last.left.logTail.some((l) => l.includes("about-to-fail-marker"))).toBe(true)
              expect(last.left.logTail.length).toBeLessThanOrEqual(30)
            }
          }
          const steps = events.filter(Either.isRight).map((e) => e.right)
          expect(
            steps.some((s) => s._tag === "Step" && s.line.includes("RUN echo about-to-fail-marker"))
          ).toBe(true)
          expect(steps.some((s) => s._tag === "Built")).toBe(false)
        }),
      30_000
    )

    it.effect("a build context stream that fails ends the build with BuildFailed", () =>
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const tag = `${uniqueName()}:nocontext`
        const context = Stream.concat(
          Stream.make(new Uint8Array(512)),
          Stream.fail(new Error("upload connection lost"))
        )
        const result = yield* Effect.either(
          Stream.runDrain(rt.buildImage({ tag, labels: docker.labels, context }))
        )
        expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "BuildFailed", image: tag })
        if (Either.isLeft(result) && result.left._tag === "BuildFailed") {
          expect(result.left.reason).toContain("upload connection lost")
        }
      })
    )

    it.effect(
      "builds an image with kyozo labels; pruneImages removes it but never an unlabelled one",
      () =>
        Effect.gen(function* () {
          const rt = yield* ContainerRuntime
          const tag = `${uniqueName()}:v1`
          const events: Array<BuildEvent> = Chunk.toArray(
            yield* Stream.runCollect(
              rt.buildImage({
                tag,
                labels: docker.labels,
                context: contextOf({
                  Dockerfile: `FROM ${StaticImage}\nRUN echo built-ok > /built.txt\nEXPOSE 8080\nHEALTHCHECK --interval=5s --timeout=2s --retries=2 CMD wget -q -O- http://127.0.0.1:8080/ || exit 1\nCMD ["cat", "/built.txt"]\n`
                })
              })
            )
          )
          const built = events[events.length - 1]!
          expect(built._tag).toBe("Built")
          expect(events.filter((e) => e._tag === "Built")).toHaveLength(1)
          if (built._tag !== "Built") return
          expect(built.tag).toBe(tag)
          expect(built.imageId).toMatch(/^sha256:[0-9a-f]{64}$/)

          const image = yield* rt.inspectImage(tag)
          expect(image.id).toBe(built.imageId)
          expect(image.labels[Managed]).toBe("true")
          expect(image.labels["kyozo.test"]).toBe(docker.runId)
          expect(image.tags).toContain(tag)
          expect(image.exposedPorts).toEqual([8080])
          expect(image.healthcheck).toMatchObject({ intervalMs: 5000, timeoutMs: 2000, retries: 2 })
          const listed = yield* rt.listImages({ labels: { "kyozo.test": docker.runId } })
          expect(listed.map((i) => i.id)).toContain(built.imageId)

          // The image runs and has the file the RUN step wrote.
          const ref = yield* rt.createContainer(spec({ image: tag, cmd: ["cat", "/built.txt"] }))
          yield* rt.startContainer(ref.id)
          yield* rt
            .inspectContainer(ref.id)
            .pipe(
              Effect.repeat({ until: (i) => !i.running, schedule: Schedule.spaced("100 millis") }),
              Effect.timeout("10 seconds")
            )
          const out = Chunk.toArray(yield* Stream.runCollect(rt.logs(ref.id))).map((l) => l.line)
          expect(out).toEqual(["built-ok"])
          yield* rt.removeContainer(ref.id)

          // An unused image without kyozo.managed, built behind Kyozo's back.
          const foreignTag = `${uniqueName()}:foreign`
          const tarball = yield* Effect.promise(() =>
            tarOf({ Dockerfile: `FROM ${StaticImage}\nLABEL foreign=yes\n` })
          )
          yield* Effect.promise(async () => {
            const stream = await docker.client.buildImage(
              (await import("node:stream")).Readable.from([tarball]) as unknown as NodeJS.ReadableStream,
              { t: foreignTag, labels: docker.labels }
            )
            await new Promise((resolve, reject) =>
              docker.client.modem.followProgress(stream, (e) => (e ? reject(e) : resolve(null)))
            )
          })
          const foreignBefore = yield* rt.inspectImage(foreignTag)
          expect(foreignBefore.labels[Managed]).toBeUndefined()

          const tagged = `${uniqueName()}:alias`
          docker.track("image", tagged)
          yield* rt.tagImage(tag, tagged)
          expect((yield* rt.inspectImage(tagged)).id).toBe(built.imageId)

          const report = yield* rt.pruneImages({ labels: { "kyozo.test": docker.runId } })
          expect(report.removed).toContain(built.imageId)
          const gone = yield* Effect.either(rt.inspectImage(tag))
          expect(Either.isLeft(gone) && gone.left._tag).toBe("ImageNotFound")
          const foreignAfter = yield* rt.inspectImage(foreignTag)
          expect(foreignAfter.id).toBe(foreignBefore.id)
          // Base images carry no kyozo label either. (No unfiltered prune here: other suites share the engine.)
          expect((yield* rt.inspectImage(StaticImage)).labels[Managed]).toBeUndefined()

          // A budget far above this engine's cache: the call is accepted and removes nothing.
          const cache = yield* rt.pruneBuildCache({ keepBytes: 1024 ** 4 })
          expect(cache.removed).toEqual([])

          yield* rt.removeImage(foreignTag)
          yield* rt.removeImage(foreignTag)
          const removed = yield* Effect.either(rt.inspectImage(foreignTag))
          expect(Either.isLeft(removed) && removed.left._tag).toBe("ImageNotFound")
        }),
      40_000
    )

    it.effect(
      "networks and volumes: create with labels, conflict, connect with aliases, list, remove twice",
      () =>
        Effect.gen(function* () {
          const rt = yield* ContainerRuntime
          const name = uniqueName()
          const network = yield* rt.createNetwork({ name, labels: docker.labels })
          expect(network.labels[Managed]).toBe("true")
          const dup = yield* Effect.either(rt.createNetwork({ name, labels: docker.labels }))
          expect(Either.isLeft(dup) && dup.left).toMatchObject({ _tag: "NameConflict", kind: "network" })
          const networks = yield* rt.listNetworks({
            labels: { [Managed]: "true", "kyozo.test": docker.runId }
          })
          expect(networks.map((n) => n.id)).toContain(network.id)

          const a = yield* rt.createContainer(spec({ network: name, networkAliases: ["web"] }))
          expect((yield* rt.inspectContainer(a.id)).networks).toEqual([name])
          const aliases = (yield* rawInspect(a.id)).NetworkSettings.Networks[name]?.Aliases ?? []
          expect(aliases).toContain("web")

          // A running container: the engine checks the network exists only then.
          yield* rt.startContainer(a.id)
          const other = uniqueName()
          yield* rt.createNetwork({ name: other, labels: docker.labels })
          yield* rt.connectNetwork(other, a.id, ["api"])
          expect([...(yield* rt.inspectContainer(a.id)).networks].sort()).toEqual([name, other].sort())
          const missingNet = yield* Effect.either(rt.connectNetwork(uniqueName(), a.id))
          expect(Either.isLeft(missingNet) && missingNet.left._tag).toBe("NetworkNotFound")

          yield* rt.removeContainer(a.id, { force: true })
          yield* rt.removeNetwork(name)
          yield* rt.removeNetwork(name)
          yield* rt.removeNetwork(other)
          const after = yield* rt.listNetworks({ labels: { "kyozo.test": docker.runId } })
          expect(after.map((n) => n.name)).not.toContain(name)

          const volume = yield* rt.createVolume({ name: uniqueName(), labels: docker.labels })
          expect(volume.labels[Managed]).toBe("true")
          const volumes = yield* rt.listVolumes({ labels: { "kyozo.test": docker.runId } })
          expect(volumes.map((v) => v.name)).toContain(volume.name)
          yield* rt.removeVolume(volume.name)
          yield* rt.removeVolume(volume.name)
          expect(
            (yield* rt.listVolumes({ labels: { "kyozo.test": docker.runId } })).map((v) => v.name)
          ).not.toContain(volume.name)
        })
    )

    it.effect("events: replays from `since`, filtered by label", () =>
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const since = Date.now() - 1000
        const label = uniqueName()
        const ref = yield* rt.createContainer(spec({ labels: { "kyozo.events": label } }))
        const events = yield* rt
          .events({ since, labels: { "kyozo.events": label } })
          .pipe(Stream.take(1), Stream.runCollect, Effect.timeout("5 seconds"))
        const first = Chunk.unsafeHead(events)
        expect(first).toMatchObject({ type: "container", action: "create", id: ref.id })
        expect(first.labels["kyozo.events"]).toBe(label)
        expect(first.time).toBeGreaterThanOrEqual(since - 1000)
        yield* rt.removeContainer(ref.id, { force: true })
      })
    )

    it.effect("a silent followed log stream fails with DockerTimeout after its idle timeout", () =>
      Effect.gen(function* () {
        const rt = yield* make({ streamIdleTimeout: Duration.millis(500) })
        const ref = yield* rt.createContainer(spec())
        yield* rt.startContainer(ref.id)
        const started = Date.now()
        const fiber = yield* Effect.fork(Stream.runCollect(rt.logs(ref.id, { follow: true })))
        const exit = yield* Fiber.join(fiber).pipe(Effect.either, Effect.timeout("5 seconds"))
        expect(Either.isLeft(exit) && exit.left).toMatchObject({ _tag: "DockerTimeout" })
        expect(Date.now() - started).toBeLessThan(4000)
        yield* rt.removeContainer(ref.id, { force: true })
      })
    )
  })

  layer(Runtime, { excludeTestServices: true })("unreachable or hung engines", (it) => {
    it.effect("an unreachable DOCKER_HOST fails quickly with DockerUnavailable", () =>
      Effect.gen(function* () {
        for (const dockerHost of ["unix:///tmp/nope.sock", "tcp://127.0.0.1:1"]) {
          const rt = yield* make({ dockerHost })
          const started = Date.now()
          const result = yield* Effect.either(rt.ping)
          expect(Either.isLeft(result) && result.left._tag).toBe("DockerUnavailable")
          expect(Date.now() - started).toBeLessThan(2000)
          const list = yield* Effect.either(rt.listContainers())
          expect(Either.isLeft(list) && list.left._tag).toBe("DockerUnavailable")
        }
      })
    )

    it.scoped("a call to an engine that never answers fails with DockerTimeout at its deadline", () =>
      Effect.gen(function* () {
        const socketPath = `/tmp/${uniqueName()}.sock`
        const connections = { opened: 0, closed: 0 }
        const sockets = new Set<net.Socket>()
        yield* Effect.acquireRelease(
          Effect.async<net.Server>((resume) => {
            // Accepts connections, reads the request and never answers: a hung dockerd.
            const server = net.createServer((s) => {
              connections.opened++
              sockets.add(s)
              s.resume()
              s.on("close", () => void connections.closed++)
            })
            server.listen(socketPath, () => resume(Effect.succeed(server)))
          }),
          (server) =>
            Effect.sync(() => {
              for (const s of sockets) s.destroy()
              server.close()
              fs.rmSync(socketPath, { force: true })
            })
        )
        const rt = yield* make({ dockerHost: `unix://${socketPath}`, timeout: Duration.millis(300) })
        const started = Date.now()
        const result = yield* Effect.either(rt.inspectContainer("anything"))
        expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "DockerTimeout", timeoutMs: 300 })
        expect(Date.now() - started).toBeLessThan(2000)
        // The aborted request closed its connection.
        yield* Effect.sleep("100 millis")
        expect(connections.opened).toBe(1)
        expect(connections.closed).toBe(1)
      })
    )

    it.effect("pulling without a registry fails with a typed error, not a hang", () =>
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const result = yield* Effect.either(Stream.runDrain(rt.pullImage(`${uniqueName()}:1`)))
        // No registry on this machine: the engine answers 500 (DNS); with a registry it is a 404.
        expect(Either.isLeft(result) && ["DockerApiError", "ImageNotFound"].includes(result.left._tag)).toBe(
          true
        )
      }).pipe(Effect.timeout("15 seconds"))
    )

    it.effect("the version and ping of the real engine", () =>
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        yield* rt.ping
        const v = yield* rt.version
        expect(v.version.length).toBeGreaterThan(0)
        expect(v.os).toBe("linux")
        expect(rt.mode).toBe("docker")
        expect(rt.endpoint).toMatch(/^(unix|tcp):\/\//)
      })
    )
  })
})

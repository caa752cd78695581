/**
 * The in-memory engine: Docker's state machine, images and builds, stats/logs/events on the
 * TestClock, and every fault MockRuntimeControl can inject.
 */
import { describe, expect, it } from "@effect/vitest"
import { DockerUnavailable, MockFault, NameConflict } from "@kyozo/api/domain/RuntimeErrors"
import { ContainerRuntime, type ContainerSpec, cpuPercent } from "@kyozo/core/engine/ContainerRuntime"
import * as MockRuntime from "@kyozo/core/engine/MockRuntime"
import { MockRuntimeControl } from "@kyozo/core/engine/MockRuntime"
import { Chunk, Duration, Effect, Either, Exit, Fiber, Option, Stream, TestClock } from "effect"

const spec = (name: string, extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
  name,
  image: "busybox",
  labels: { "kyozo.service": `svc_${name}` },
  ports: [{ containerPort: 8080 }],
  ...extra
})

/** A minimal ustar archive, like the build-context module produces. */
const tar = (files: Record<string, string>): Uint8Array => {
  const enc = new TextEncoder()
  const blocks: Array<Uint8Array> = []
  const field = (header: Uint8Array, offset: number, length: number, value: string) =>
    header.set(enc.encode(value).subarray(0, length), offset)
  for (const [name, content] of Object.entries(files)) {
    const body = enc.encode(content)
    const header = new Uint8Array(512)
    field(header, 0, 100, name)
    field(header, 100, 8, "0000644\0")
    field(header, 108, 8, "0000000\0")
    field(header, 116, 8, "0000000\0")
    field(header, 124, 12, body.length.toString(8).padStart(11, "0") + "\0")
    field(header, 136, 12, "00000000000\0")
    field(header, 148, 8, "        ")
    field(header, 156, 1, "0")
    field(header, 257, 6, "ustar\0")
    field(header, 263, 2, "00")
    const sum = header.reduce((a, b) => a + b, 0)
    field(header, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ")
    blocks.push(header)
    const padded = new Uint8Array(Math.ceil(body.length / 512) * 512)
    padded.set(body)
    blocks.push(padded)
  }
  blocks.push(new Uint8Array(1024))
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0))
  let off = 0
  for (const b of blocks) {
    out.set(b, off)
    off += b.length
  }
  return out
}

const contextOf = (files: Record<string, string>) => {
  const bytes = tar(files)
  // Two chunks, so the engine must really consume a stream.
  return Stream.make(bytes.subarray(0, 700), bytes.subarray(700))
}

const withMock = <A, E>(
  effect: Effect.Effect<A, E, ContainerRuntime | MockRuntimeControl>,
  options?: MockRuntime.MockRuntimeOptions
) => Effect.provide(effect, MockRuntime.layerWith(options))

describe("MockRuntime state machine", () => {
  it.effect("create → start → stop → remove, with Docker's idempotent answers", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        expect(rt.mode).toBe("mock")
        expect(rt.endpoint).toBe("in-memory")
        const ref = yield* rt.createContainer(spec("web"))
        expect(ref.name).toBe("web")
        expect(ref.id).toMatch(/^[0-9a-f]{64}$/)

        let info = yield* rt.inspectContainer(ref.id)
        expect(info.state).toBe("created")
        expect(info.labels["kyozo.managed"]).toBe("true")
        expect(info.labels["kyozo.service"]).toBe("svc_web")
        expect(yield* rt.listContainers()).toHaveLength(0)
        expect(yield* rt.listContainers({ all: true })).toHaveLength(1)

        yield* rt.startContainer(ref.id)
        yield* rt.startContainer("web") // running already: a no-op success (304)
        info = yield* rt.inspectContainer("web")
        expect(info.state).toBe("running")
        expect(info.running).toBe(true)
        expect(info.ports).toEqual([
          { containerPort: 8080, protocol: "tcp", hostIp: "127.0.0.1", hostPort: 32768 }
        ])
        expect(info.networks).toEqual(["bridge"])
        expect(
          (yield* rt.listContainers({ labels: { "kyozo.service": "svc_web" } })).map((c) => c.id)
        ).toEqual([ref.id])
        expect(yield* rt.listContainers({ labels: { "kyozo.service": "other" } })).toHaveLength(0)

        // Removing a running container without force is refused, like Docker's 409.
        const refused = yield* Effect.flip(rt.removeContainer(ref.id))
        expect(refused._tag).toBe("InvalidContainerState")

        yield* TestClock.adjust(Duration.minutes(5))
        yield* rt.stopContainer(ref.id)
        yield* rt.stopContainer(ref.id) // already stopped: success
        info = yield* rt.inspectContainer(ref.id)
        expect(info.state).toBe("exited")
        expect(info.exitCode).toBe(0)
        expect(info.finishedAt).toBe(5 * 60_000)
        expect(info.status).toMatch(/^Exited \(0\)/)
        expect(yield* rt.listContainers()).toHaveLength(0)

        yield* rt.removeContainer(ref.id)
        yield* rt.removeContainer(ref.id) // gone already: success
        const missing = yield* Effect.flip(rt.inspectContainer(ref.id))
        expect(missing._tag).toBe("ContainerNotFound")
        // The name is free again.
        yield* rt.createContainer(spec("web"))
      })
    )
  )

  it.effect("force removal kills first; restart counts a start; ports are deterministic", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const a = yield* rt.createContainer(
          spec("a", { ports: [{ containerPort: 80 }, { containerPort: 443 }] })
        )
        const b = yield* rt.createContainer(spec("b", { ports: [{ containerPort: 80, hostPort: 8080 }] }))
        yield* rt.startContainer(a.id)
        yield* rt.startContainer(b.id)
        expect((yield* rt.inspectContainer(a.id)).ports.map((p) => p.hostPort)).toEqual([32768, 32769])
        expect((yield* rt.inspectContainer(b.id)).ports.map((p) => p.hostPort)).toEqual([8080])

        yield* rt.restartContainer(a.id)
        expect((yield* rt.inspectContainer(a.id)).state).toBe("running")

        yield* rt.removeContainer(a.id, { force: true })
        expect(Either.isLeft(yield* Effect.either(rt.inspectContainer(a.id)))).toBe(true)
      })
    )
  )

  it.effect("name conflicts, unknown images and networks are typed failures", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        yield* rt.createContainer(spec("dup"))
        const conflict = yield* Effect.flip(rt.createContainer(spec("dup")))
        expect(conflict).toBeInstanceOf(NameConflict)
        expect(conflict._tag === "NameConflict" && conflict.kind).toBe("container")

        const noImage = yield* Effect.flip(rt.createContainer(spec("x", { image: "nope:1" })))
        expect(noImage._tag).toBe("ImageNotFound")
        const noNet = yield* Effect.flip(rt.createContainer(spec("y", { network: "kyozo-team-x" })))
        expect(noNet._tag).toBe("NetworkNotFound")
      })
    )
  )

  it.effect("a fixed host port in use makes the second start fail like Docker (500)", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const one = yield* rt.createContainer(spec("one", { ports: [{ containerPort: 80, hostPort: 9000 }] }))
        const two = yield* rt.createContainer(spec("two", { ports: [{ containerPort: 80, hostPort: 9000 }] }))
        yield* rt.startContainer(one.id)
        const error = yield* Effect.flip(rt.startContainer(two.id))
        expect(error._tag === "DockerApiError" && error.status).toBe(500)
        yield* rt.stopContainer(one.id)
        yield* rt.startContainer(two.id)
      })
    )
  )

  it.effect("exec echoes on a running container and is refused on a stopped one", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const c = yield* rt.createContainer(spec("ex"))
        const early = yield* Effect.flip(rt.exec(c.id, ["echo", "hi"]))
        expect(early._tag).toBe("InvalidContainerState")
        yield* rt.startContainer(c.id)
        expect(yield* rt.exec(c.id, ["echo", "hello", "world"])).toEqual({
          exitCode: 0,
          output: "hello world\n"
        })
        expect((yield* rt.exec(c.id, ["false"])).exitCode).toBe(1)
      })
    )
  )
})

describe("MockRuntime observability on the Clock", () => {
  it.effect("stats: counters grow with time, CPU % is sensible, memory stays under the limit", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const c = yield* rt.createContainer(spec("st", { memoryBytes: 256 * 1024 * 1024 }))
        yield* rt.startContainer(c.id)
        const s1 = yield* rt.stats(c.id)
        yield* TestClock.adjust(Duration.seconds(60))
        const s2 = yield* rt.stats(c.id)
        expect(s2.readAt - s1.readAt).toBe(60_000)
        expect(s2.cpuTotalNs).toBeGreaterThan(s1.cpuTotalNs)
        expect(s2.netRxBytes).toBeGreaterThan(s1.netRxBytes)
        const cpu = cpuPercent(s1, s2)
        expect(cpu).toBeGreaterThan(0)
        expect(cpu).toBeLessThanOrEqual(100)
        expect(s2.memoryLimitBytes).toBe(256 * 1024 * 1024)
        expect(s2.memoryBytes).toBeGreaterThan(0)
        expect(s2.memoryBytes).toBeLessThan(s2.memoryLimitBytes)

        // Same figures for the same elapsed time: deterministic.
        yield* TestClock.adjust(Duration.seconds(60))
        const s3 = yield* rt.stats(c.id)
        expect(cpuPercent(s2, s3)).toBeCloseTo(cpu, 6)

        yield* rt.stopContainer(c.id)
        const stopped = yield* rt.stats(c.id)
        yield* TestClock.adjust(Duration.seconds(60))
        const later = yield* rt.stats(c.id)
        expect(later.cpuTotalNs).toBe(stopped.cpuTotalNs)
        expect(later.memoryBytes).toBe(0)
      })
    )
  )

  it.effect("logs: a few lines per start, heartbeats as time passes, tail and follow", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const c = yield* rt.createContainer(spec("lg"))
        yield* rt.startContainer(c.id)
        const first = Chunk.toReadonlyArray(yield* Stream.runCollect(rt.logs(c.id)))
        expect(first.map((l) => l.line)).toEqual([
          "[lg] starting from busybox",
          "[lg] listening on 0.0.0.0:8080",
          "[lg] ready"
        ])
        yield* TestClock.adjust(Duration.seconds(30))
        const later = Chunk.toReadonlyArray(yield* Stream.runCollect(rt.logs(c.id)))
        expect(later).toHaveLength(6)
        expect(later[5]!.line).toContain("heartbeat ok uptime=30s")
        expect(later[5]!.timestamp).toBe(30_000)
        const tail = Chunk.toReadonlyArray(yield* Stream.runCollect(rt.logs(c.id, { tail: 2 })))
        expect(tail.map((l) => l.timestamp)).toEqual([20_000, 30_000])
        const since = Chunk.toReadonlyArray(yield* Stream.runCollect(rt.logs(c.id, { since: 15_000 })))
        expect(since).toHaveLength(2)

        // follow: existing lines, then new ones as the clock moves, and the end when it stops.
        const follower = yield* rt.logs(c.id, { follow: true, tail: 1 }).pipe(Stream.runCollect, Effect.fork)
        yield* TestClock.adjust(Duration.seconds(20))
        yield* rt.stopContainer(c.id)
        yield* TestClock.adjust(Duration.seconds(10))
        const followed = Chunk.toReadonlyArray(yield* Fiber.join(follower)).map((l) => l.line)
        expect(followed[0]).toContain("uptime=30s")
        expect(followed.some((l) => l.includes("uptime=50s"))).toBe(true)
        expect(followed[followed.length - 1]).toContain("SIGTERM")
      })
    )
  )

  it.effect("events: every state change, live with label filters and replayed from `since`", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const control = yield* MockRuntimeControl
        const live = yield* (
          rt
            // since: 0 makes the test independent of when the fork subscribes (history, then live).
            .events({ since: 0, labels: { "kyozo.service": "svc_ev" } })
            .pipe(Stream.take(5), Stream.runCollect, Effect.fork)
        )
        yield* Effect.yieldNow()
        const c = yield* rt.createContainer(spec("ev"))
        yield* rt.createContainer(spec("other"))
        yield* TestClock.adjust(Duration.seconds(1))
        yield* rt.startContainer(c.id)
        yield* control.killContainer(c.id)
        yield* rt.removeContainer(c.id)

        const events = Chunk.toReadonlyArray(yield* Fiber.join(live))
        expect(events.map((e) => e.action)).toEqual(["create", "start", "kill", "die", "destroy"])
        expect(events.every((e) => e.id === c.id && e.type === "container")).toBe(true)
        expect(events[1]!.time).toBe(1_000)

        // Replay from `since`: the history, then live events, without a gap or a repeat.
        const replay = yield* rt.events({ since: 1_000 }).pipe(Stream.take(5), Stream.runCollect, Effect.fork)
        yield* Effect.yieldNow()
        yield* rt.createContainer(spec("late"))
        const replayed = Chunk.toReadonlyArray(yield* Fiber.join(replay)).map((e) => e.action)
        expect(replayed).toEqual(["start", "kill", "die", "destroy", "create"])
      })
    )
  )
})

describe("MockRuntime images, networks, volumes", () => {
  it.effect("build consumes the context, emits steps and Built; the image is usable", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const dockerfile =
          'FROM node:20-slim\nWORKDIR /app\nCOPY . .\nEXPOSE 3000\nUSER node\nCMD ["node", "index.js"]\n'
        const events = Chunk.toReadonlyArray(
          yield* Stream.runCollect(
            rt.buildImage({
              context: contextOf({ Dockerfile: dockerfile, "index.js": "console.log('hi')\n" }),
              tag: "kyozo/svc_a:ctx-1",
              labels: { "kyozo.service": "svc_a" }
            })
          )
        )
        const steps = events.filter((e) => e._tag === "Step").map((e) => (e._tag === "Step" ? e.line : ""))
        expect(steps).toContain("Step 1/6 : FROM node:20-slim")
        expect(steps).toContain("Step 4/6 : EXPOSE 3000")
        const built = events[events.length - 1]!
        expect(built._tag).toBe("Built")
        if (built._tag !== "Built") return
        expect(built.tag).toBe("kyozo/svc_a:ctx-1")

        const image = yield* rt.inspectImage("kyozo/svc_a:ctx-1")
        expect(image.id).toBe(built.imageId)
        expect(image.exposedPorts).toEqual([3000])
        expect(image.labels).toEqual({ "kyozo.service": "svc_a", "kyozo.managed": "true" })

        const c = yield* rt.createContainer(spec("from-build", { image: "kyozo/svc_a:ctx-1" }))
        yield* rt.startContainer(c.id)
        // In use: removal without force is refused (409); prune skips it.
        const refused = yield* Effect.flip(rt.removeImage("kyozo/svc_a:ctx-1"))
        expect(refused._tag === "DockerApiError" && refused.status).toBe(409)
        expect((yield* rt.pruneImages()).removed).toEqual([])
        yield* rt.removeContainer(c.id, { force: true })
        const pruned = yield* rt.pruneImages({ labels: { "kyozo.service": "svc_a" } })
        expect(pruned.removed).toEqual([built.imageId])
        // Preloaded, unmanaged images are never pruned.
        yield* rt.inspectImage("node:20-slim")
        // The build cache is trimmed to a budget: within it nothing goes, at 0 every entry does.
        expect((yield* rt.pruneBuildCache({ keepBytes: 1024 ** 3 })).removed).toEqual([])
        expect((yield* rt.pruneBuildCache({ keepBytes: 0 })).removed).toHaveLength(1)
        yield* rt.removeImage("kyozo/svc_a:ctx-1") // gone already: success
      })
    )
  )

  it.effect("a `RUN false` step fails the build with BuildFailed and a log tail", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const seen: Array<string> = []
        const exit = yield* rt
          .buildImage({
            context: contextOf({ Dockerfile: 'FROM busybox\nRUN false\nCMD ["true"]\n' }),
            tag: "kyozo/broken:1"
          })
          .pipe(
            Stream.runForEach((e) => Effect.sync(() => seen.push(e._tag))),
            Effect.exit
          )
        expect(Exit.isFailure(exit)).toBe(true)
        const error = yield* Effect.flip(exit)
        expect(error._tag).toBe("BuildFailed")
        if (error._tag !== "BuildFailed") return
        expect(error.reason).toContain("returned a non-zero code")
        expect(error.logTail[error.logTail.length - 1]).toBe("Step 2/3 : RUN false")
        expect(seen).not.toContain("Built")
        expect(Either.isLeft(yield* Effect.either(rt.inspectImage("kyozo/broken:1")))).toBe(true)
      })
    )
  )

  it.effect("configurable images, tags, pull of a local image, unknown pull", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        expect((yield* rt.listImages()).flatMap((i) => i.tags)).toEqual(["local/base:1"])
        yield* rt.tagImage("local/base:1", "local/base:latest")
        expect((yield* rt.inspectImage("local/base")).tags).toEqual(["local/base:1", "local/base:latest"])
        const pulled = Chunk.toReadonlyArray(yield* Stream.runCollect(rt.pullImage("local/base:1")))
        expect(pulled).toHaveLength(1)
        const missing = yield* Effect.flip(Stream.runDrain(rt.pullImage("node:20-slim")))
        expect(missing._tag).toBe("ImageNotFound")
        // With two tags, removing one only untags.
        yield* rt.removeImage("local/base:latest")
        expect((yield* rt.inspectImage("local/base:1")).tags).toEqual(["local/base:1"])
      }),
      { images: ["local/base:1"] }
    )
  )

  it.effect("networks and volumes", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const net = yield* rt.createNetwork({ name: "kyozo-team-1", labels: { "kyozo.team": "t1" } })
        expect(net.labels["kyozo.managed"]).toBe("true")
        expect((yield* Effect.flip(rt.createNetwork({ name: "kyozo-team-1" })))._tag).toBe("NameConflict")
        expect((yield* rt.listNetworks({ labels: { "kyozo.managed": "true" } })).map((n) => n.name)).toEqual([
          "kyozo-team-1"
        ])
        const c = yield* rt.createContainer(spec("netted", { network: "kyozo-team-1" }))
        yield* rt.connectNetwork("bridge", c.id)
        yield* rt.connectNetwork("bridge", c.id) // already connected: done
        yield* rt.startContainer(c.id)
        expect((yield* rt.inspectContainer(c.id)).networks).toEqual(["bridge", "kyozo-team-1"])
        const busy = yield* Effect.flip(rt.removeNetwork("kyozo-team-1"))
        expect(busy._tag === "DockerApiError" && busy.status).toBe(403)
        yield* rt.stopContainer(c.id)
        yield* rt.removeNetwork(net.id.slice(0, 12))
        expect((yield* Effect.flip(rt.removeNetwork("kyozo-team-1")))._tag).toBe("NetworkNotFound")

        const vol = yield* rt.createVolume({ name: "data", labels: { "kyozo.service": "s" } })
        expect(yield* rt.createVolume({ name: "data" })).toEqual(vol)
        expect(yield* rt.listVolumes({ labels: { "kyozo.service": "s" } })).toHaveLength(1)
        yield* rt.removeVolume("data")
        expect((yield* Effect.flip(rt.removeVolume("data")))._tag).toBe("VolumeNotFound")
      })
    )
  )
})

describe("MockRuntimeControl faults", () => {
  it.effect("failNext: n failures (MockFault or the given error), optionally for one operation", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const control = yield* MockRuntimeControl
        yield* control.failNext(2)
        const e1 = yield* Effect.flip(rt.ping)
        expect(e1).toBeInstanceOf(MockFault)
        expect(e1._tag === "MockFault" && e1.operation).toBe("ping")
        expect((yield* Effect.flip(rt.listContainers()))._tag).toBe("MockFault")
        yield* rt.ping

        yield* control.failNext(1, new DockerUnavailable({ endpoint: "x", cause: "y" }))
        expect((yield* Effect.flip(rt.version))._tag).toBe("DockerUnavailable")

        yield* control.failNext(1, undefined, { operation: "startContainer" })
        const c = yield* rt.createContainer(spec("f"))
        expect((yield* Effect.flip(rt.startContainer(c.id)))._tag).toBe("MockFault")
        yield* rt.startContainer(c.id)

        const calls = yield* control.calls
        expect(calls.total).toBe(7)
        expect(calls.byOperation["startContainer"]).toBe(2)
        expect(calls.injectedFailures).toBe(4)
        yield* control.resetCalls
        expect((yield* control.calls).total).toBe(0)
      })
    )
  )

  it.effect("setDown: every call and open streams fail DockerUnavailable until it is back", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const control = yield* MockRuntimeControl
        const c = yield* rt.createContainer(spec("d"))
        yield* rt.startContainer(c.id)
        const watcher = yield* rt.events().pipe(Stream.runDrain, Effect.either, Effect.fork)
        const follower = yield* rt
          .logs(c.id, { follow: true })
          .pipe(Stream.runDrain, Effect.either, Effect.fork)
        yield* Effect.yieldNow()
        yield* control.setDown(true)
        expect((yield* Effect.flip(rt.ping))._tag).toBe("DockerUnavailable")
        expect((yield* Effect.flip(rt.inspectContainer(c.id)))._tag).toBe("DockerUnavailable")
        expect((yield* Effect.flip(Stream.runDrain(rt.events())))._tag).toBe("DockerUnavailable")
        const watched = yield* Fiber.join(watcher)
        expect(Either.isLeft(watched) && watched.left._tag).toBe("DockerUnavailable")
        yield* TestClock.adjust(Duration.seconds(10))
        const followed = yield* Fiber.join(follower)
        expect(Either.isLeft(followed) && followed.left._tag).toBe("DockerUnavailable")

        yield* control.setDown(false)
        expect((yield* rt.inspectContainer(c.id)).state).toBe("running")
      })
    )
  )

  it.effect("hang: calls wait until released, and stay interruptible", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const control = yield* MockRuntimeControl
        yield* control.hang(true)
        const stuck = yield* Effect.fork(rt.ping)
        const released = yield* Effect.fork(rt.version)
        yield* TestClock.adjust(Duration.hours(1))
        expect(Option.isNone(yield* Fiber.poll(stuck))).toBe(true)

        // A caller's deadline interrupts the hung call.
        const timed = yield* Effect.fork(rt.ping.pipe(Effect.timeout(Duration.seconds(5))))
        yield* TestClock.adjust(Duration.seconds(5))
        const timedExit = yield* Fiber.await(timed)
        expect(Exit.isFailure(timedExit)).toBe(true)

        const interrupted = yield* Fiber.interrupt(stuck)
        expect(Exit.isInterrupted(interrupted)).toBe(true)

        yield* control.hang(false)
        const version = yield* Fiber.join(released)
        expect(version.version).toContain("mock")
        yield* rt.ping
      })
    )
  )

  it.effect("slow: each call takes that long on the Clock", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const control = yield* MockRuntimeControl
        yield* control.slow(Duration.seconds(3))
        const call = yield* Effect.fork(rt.listContainers({ all: true }))
        yield* TestClock.adjust(Duration.millis(2_999))
        expect(Option.isNone(yield* Fiber.poll(call))).toBe(true)
        yield* TestClock.adjust(Duration.millis(1))
        expect(yield* Fiber.join(call)).toEqual([])
        yield* control.slow(null)
        yield* rt.ping
      })
    )
  )

  it.effect("killContainer: dies behind Kyozo's back with 137; setHealth, pause and unpause", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const control = yield* MockRuntimeControl
        const c = yield* rt.createContainer(
          spec("k", { healthcheck: { test: ["CMD", "true"], intervalMs: 5_000 } })
        )
        yield* rt.startContainer(c.id)
        expect((yield* rt.inspectContainer(c.id)).health).toBe("starting")
        yield* TestClock.adjust(Duration.seconds(5))
        expect((yield* rt.inspectContainer(c.id)).health).toBe("healthy")
        yield* control.setHealth(c.id, "unhealthy")
        expect((yield* rt.inspectContainer(c.id)).status).toContain("(unhealthy)")
        // A restart clears the forced health, as a fresh process would.
        yield* rt.restartContainer(c.id)
        expect((yield* rt.inspectContainer(c.id)).health).toBe("starting")

        yield* control.pauseContainer(c.id)
        expect((yield* rt.inspectContainer(c.id)).state).toBe("paused")
        expect((yield* Effect.flip(rt.startContainer(c.id)))._tag).toBe("InvalidContainerState")
        yield* control.unpauseContainer(c.id)

        yield* control.killContainer(c.id, { oomKilled: true })
        const info = yield* rt.inspectContainer(c.id)
        expect(info.state).toBe("exited")
        expect(info.exitCode).toBe(137)
        expect(info.oomKilled).toBe(true)
        expect(yield* rt.listContainers()).toHaveLength(0)
        expect((yield* Effect.flip(control.killContainer("nope")))._tag).toBe("ContainerNotFound")
        // Docker's answer for a dead container: start it again.
        yield* rt.startContainer(c.id)
        expect((yield* rt.inspectContainer(c.id)).exitCode).toBeNull()
      })
    )
  )

  it.effect("cheap: 1,000 containers through an hour of hourly checks", () =>
    withMock(
      Effect.gen(function* () {
        const rt = yield* ContainerRuntime
        const ids: Array<string> = []
        for (let i = 0; i < 1_000; i++) {
          const c = yield* rt.createContainer(spec(`svc-${i}`))
          yield* rt.startContainer(c.id)
          ids.push(c.id)
        }
        const started = performance.now()
        for (let minute = 0; minute < 60; minute++) {
          yield* TestClock.adjust(Duration.minutes(1))
          for (const id of ids) yield* rt.inspectContainer(id)
        }
        for (const id of ids) yield* rt.stats(id)
        const elapsed = performance.now() - started
        expect((yield* rt.listContainers({ labels: { "kyozo.managed": "true" } })).length).toBe(1_000)
        expect(elapsed).toBeLessThan(15_000)
      })
    )
  )
})

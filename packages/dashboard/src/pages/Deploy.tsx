/**
 * Guided deploy: a folder from the directory picker or dropped, packed as a tar in the browser,
 * uploaded with progress, detected (evidence and confidence per service), named, its ports
 * adjusted, deployed, and watched live until its health gate passes; then the service page.
 * An adjusted port travels the way a CLI user's correction does: as a `kyozo.json` entry in the
 * folder (the file `kyozo init` writes), so detection and the deploy read one rule.
 */
import { createTar } from "nanotar"
import { useEffect, useState } from "preact/hooks"

import { api, type Topology, upload } from "../api.js"
import { navigate, useApp } from "../app.js"
import { bytes, ErrorBox, Section, StatusDot } from "../ui.js"

interface Picked {
  readonly name: string
  readonly files: ReadonlyArray<{ readonly path: string; readonly file: File }>
}

/** Never worth uploading: dependencies and VCS data are rebuilt or irrelevant. */
const SKIP = /(^|\/)(node_modules|\.git|\.hg|\.svn|__pycache__|\.venv|target|\.DS_Store)(\/|$)/

const fromInput = (list: FileList): Picked => {
  const files: Array<{ path: string; file: File }> = []
  let root = ""
  for (const file of Array.from(list)) {
    const rel = file.webkitRelativePath || file.name
    const [top, ...rest] = rel.split("/")
    root = top ?? root
    const path = rest.length > 0 ? rest.join("/") : rel
    if (!SKIP.test(path)) files.push({ path, file })
  }
  return { name: root, files }
}

const readEntry = async (
  entry: FileSystemEntry,
  prefix: string,
  out: Array<{ path: string; file: File }>
) => {
  const path = prefix === "" ? entry.name : `${prefix}/${entry.name}`
  if (SKIP.test(path)) return
  if (entry.isFile) {
    const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej))
    out.push({ path, file })
  } else if (entry.isDirectory) {
    const reader = (entry as FileSystemDirectoryEntry).createReader()
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej))
      if (batch.length === 0) break
      for (const child of batch) await readEntry(child, path, out)
    }
  }
}

const fromDrop = async (items: DataTransferItemList): Promise<Picked | undefined> => {
  const entries = Array.from(items)
    .map((i) => i.webkitGetAsEntry?.())
    .filter((e): e is FileSystemEntry => !!e)
  if (entries.length === 0) return undefined
  const out: Array<{ path: string; file: File }> = []
  if (entries.length === 1 && entries[0]!.isDirectory) {
    const dir = entries[0] as FileSystemDirectoryEntry
    const reader = dir.createReader()
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej))
      if (batch.length === 0) break
      for (const child of batch) await readEntry(child, "", out)
    }
    return { name: dir.name, files: out }
  }
  for (const e of entries) await readEntry(e, "", out)
  return { name: "upload", files: out }
}

const pack = async (picked: Picked, extra: ReadonlyArray<{ name: string; data: Uint8Array }> = []) =>
  createTar([
    ...(await Promise.all(
      picked.files
        .filter(({ path }) => !extra.some((e) => e.name === path))
        .map(async ({ path, file }) => ({
          name: path,
          data: new Uint8Array(await file.arrayBuffer()),
          attrs: { mode: "644", mtime: Math.floor(file.lastModified / 1000) || undefined }
        }))
    )),
    ...extra.map((e) => ({ name: e.name, data: e.data, attrs: { mode: "644" } }))
  ])

interface KyozoJsonEntry {
  name: string
  path?: string
  port?: number | null
  [key: string]: unknown
}

/** kyozo.json names: lower-case letters, digits and '-' (the file's own rule). */
const entryName = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63) || "app"

const samePath = (a: string | undefined, b: string) =>
  (a ?? ".").replace(/^\.\/|\/$/g, "") === b.replace(/^\.\/|\/$/g, "") ||
  ((a ?? ".") === "." && (b === "" || b === "."))

/**
 * The folder's kyozo.json with the adjusted ports written in: an entry of the service (same name,
 * else same path) gets the port, others are kept as the user wrote them.
 */
const withPorts = async (
  picked: Picked,
  changed: ReadonlyArray<{ name: string; path: string; port: number }>
): Promise<Uint8Array> => {
  const existing = picked.files.find((f) => f.path === "kyozo.json")
  const config = existing
    ? (JSON.parse(await existing.file.text()) as { services: Array<KyozoJsonEntry> })
    : { services: [] as Array<KyozoJsonEntry> }
  for (const c of changed) {
    const entry =
      config.services.find((e) => e.name === c.name) ?? config.services.find((e) => samePath(e.path, c.path))
    if (entry) entry.port = c.port
    else config.services.push({ name: c.name, path: c.path === "" ? "." : c.path, port: c.port })
  }
  return new TextEncoder().encode(`${JSON.stringify(config, null, 2)}\n`)
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 63) || "app"

type Stage = "pick" | "uploading" | "detected" | "deploying" | "done"

export const DeployPage = () => {
  const app = useApp()
  const [picked, setPicked] = useState<Picked | undefined>(undefined)
  const [stage, setStage] = useState<Stage>("pick")
  const [progress, setProgress] = useState(0)
  const [uploadId, setUploadId] = useState<string | undefined>(undefined)
  const [topology, setTopology] = useState<Topology | undefined>(undefined)
  const [name, setName] = useState("")
  const [ports, setPorts] = useState<Record<string, string>>({})
  const [error, setError] = useState<unknown>(undefined)
  const [over, setOver] = useState(false)
  const [steps, setSteps] = useState<ReadonlyArray<{ step: string; message: string }>>([])
  const [buildLog, setBuildLog] = useState<ReadonlyArray<string>>([])
  const [result, setResult] = useState<{ serviceId: string; status: string; url: string | null } | undefined>(
    undefined
  )
  const healthy = result !== undefined && (result.status === "succeeded" || result.status === "unchanged")
  useEffect(() => {
    if (!healthy || !result) return undefined
    const t = setTimeout(() => navigate(`/services/${encodeURIComponent(result.serviceId)}`), 1200)
    return () => clearTimeout(t)
  }, [healthy, result?.serviceId])

  const choose = async (p: Picked | undefined) => {
    if (!p || p.files.length === 0) {
      setError(new Error("That folder has no files to deploy."))
      return
    }
    setPicked(p)
    setError(undefined)
    setStage("uploading")
    setProgress(0)
    try {
      const tar = await pack(p)
      const up = await upload(tar, setProgress)
      setUploadId(up.uploadId)
      const topo = await api.detect(up.uploadId)
      setTopology(topo)
      // A single service named after the upload folder (upl_…) takes the picked folder's name instead.
      const only = topo.services.length === 1 ? topo.services[0]!.name : undefined
      setName(slug(only && only !== up.uploadId ? only : p.name))
      setPorts(
        Object.fromEntries(topo.services.map((svc) => [svc.name, svc.port === null ? "" : String(svc.port)]))
      )
      setStage("detected")
    } catch (e) {
      setError(e)
      setStage("pick")
    }
  }

  const deploy = async () => {
    if (!uploadId) return
    setError(undefined)
    setStage("deploying")
    setSteps([])
    setBuildLog([])
    setResult(undefined)
    try {
      let source = uploadId
      const single = topology?.services.length === 1
      const changed = (topology?.services ?? []).flatMap((svc) => {
        const port = Number(ports[svc.name])
        return ports[svc.name] !== "" && port !== svc.port && Number.isInteger(port)
          ? [{ name: entryName(single && name ? name : svc.name), path: svc.path, port }]
          : []
      })
      if (changed.length > 0 && picked) {
        // The corrected ports go in the folder's kyozo.json, uploaded again with it.
        const config = await withPorts(picked, changed)
        source = (await upload(await pack(picked, [{ name: "kyozo.json", data: config }]), setProgress))
          .uploadId
        setUploadId(source)
      }
      // The same Deploy the CLI runs: detection, build log, each step, then the result, as they happen.
      await api.deploy(source, name || undefined, (p) => {
        if (p._tag === "BuildLog") setBuildLog((l) => [...l.slice(-499), p.line])
        else if (p._tag === "Step") setSteps((s) => [...s, { step: p.step, message: p.message }])
        else if (p._tag === "Deployed")
          setResult({ serviceId: p.deployment.serviceId, status: p.deployment.status, url: p.deployment.url })
      })
      setStage("done")
    } catch (e) {
      setError(e)
      setStage("detected")
    }
  }

  const total = picked?.files.reduce((n, f) => n + f.file.size, 0) ?? 0

  return (
    <div class="page">
      <div class="page-head">
        <h1>Deploy a folder</h1>
      </div>
      {app.engineDown ? <p class="banner banner-bad">Deploys are paused: {app.engineDown}</p> : null}
      <ErrorBox error={error} onDismiss={() => setError(undefined)} />
      {stage === "pick" || stage === "uploading" ? (
        <Section title="1. Choose a folder" id="pick">
          <div
            class={over ? "drop over" : "drop"}
            onDragOver={(e) => {
              e.preventDefault()
              setOver(true)
            }}
            onDragLeave={() => setOver(false)}
            onDrop={(e) => {
              e.preventDefault()
              setOver(false)
              if (e.dataTransfer) void fromDrop(e.dataTransfer.items).then(choose)
            }}
          >
            <p>Drop a folder here, or</p>
            <label class="btn btn-primary file-btn">
              Choose a folder
              <input
                type="file"
                class="sr-only"
                // The directory picker: a DOM property (a boolean), so it is set on the element.
                ref={(el) => {
                  if (el) el.webkitdirectory = true
                }}
                multiple
                disabled={stage === "uploading" || app.engineDown !== undefined}
                onChange={(e) => {
                  const list = e.currentTarget.files
                  if (list && list.length > 0) void choose(fromInput(list))
                }}
              />
            </label>
            <p class="hint">It is packed in your browser and uploaded; node_modules and .git are left out.</p>
          </div>
          {stage === "uploading" && picked ? (
            <div class="upload">
              <label for="upload-progress">
                Uploading {picked.name}: {picked.files.length} files, {bytes(total)}
              </label>
              <progress id="upload-progress" max={1} value={progress}>
                {Math.round(progress * 100)}%
              </progress>
            </div>
          ) : null}
        </Section>
      ) : null}
      {topology && stage !== "pick" && stage !== "uploading" ? (
        <Section title="2. What Kyozo found" id="detected">
          {topology.services.length === 0 ? (
            <p>Nothing deployable was recognised{topology.reason ? `: ${topology.reason}` : "."}</p>
          ) : (
            <ul class="detected">
              {topology.services.map((svc) => (
                <li key={svc.name} class="card inner">
                  <div class="row">
                    <strong>{svc.name === uploadId ? (picked?.name ?? svc.name) : svc.name}</strong>
                    <span class="tag">{svc.kind}</span>
                    {svc.framework ? <span class="tag">{svc.framework}</span> : null}
                    <span class="muted">detected port {svc.port ?? "none"}</span>
                    <span class="confidence" title="How sure the detection is">
                      confidence {Math.round(svc.confidence * 100)}%
                      <meter
                        min={0}
                        max={1}
                        value={svc.confidence}
                        aria-label={`Confidence for ${svc.name}`}
                      />
                    </span>
                  </div>
                  <ul class="evidence" aria-label={`Evidence for ${svc.name}`}>
                    {svc.evidence.map((ev, i) => (
                      <li key={i}>
                        <span class="mono">
                          {ev.file}
                          {ev.line ? `:${ev.line}` : ""}
                        </span>{" "}
                        — {ev.detail}
                      </li>
                    ))}
                  </ul>
                </li>
              ))}
            </ul>
          )}
          {stage === "detected" ? (
            <form
              class="row"
              onSubmit={(e) => {
                e.preventDefault()
                void deploy()
              }}
            >
              <label class="field inline">
                <span>Service name</span>
                <input
                  value={name}
                  onInput={(e) => setName(e.currentTarget.value)}
                  pattern="[a-z0-9][a-z0-9_.\-]{0,62}"
                  required
                />
              </label>
              {topology.services.map((svc) => (
                <label class="field inline" key={`port-${svc.name}`}>
                  <span>
                    Port
                    {topology.services.length > 1
                      ? ` of ${svc.name === uploadId ? (picked?.name ?? svc.name) : svc.name}`
                      : ""}
                  </span>
                  <input
                    type="number"
                    min={1}
                    max={65535}
                    inputMode="numeric"
                    value={ports[svc.name] ?? ""}
                    placeholder="none"
                    onInput={(e) => setPorts((p) => ({ ...p, [svc.name]: e.currentTarget.value }))}
                  />
                </label>
              ))}
              <p class="hint">The service listens on this port; the health gate checks it.</p>
              <button
                type="submit"
                class="btn btn-primary"
                disabled={app.engineDown !== undefined || topology.services.length === 0}
              >
                Deploy
              </button>
              <button type="button" class="btn" onClick={() => (setStage("pick"), setTopology(undefined))}>
                Choose another folder
              </button>
            </form>
          ) : null}
        </Section>
      ) : null}
      {stage === "deploying" || stage === "done" ? (
        <Section title="3. Build and health gate" id="progress">
          <ol class="steps deploy-steps" aria-live="polite">
            {steps.length === 0 ? <li class="muted">Waiting for the first step…</li> : null}
            {steps.map((e, i) => (
              <li key={i}>
                <span class="mono step-type">{e.step}</span> {e.message}
              </li>
            ))}
          </ol>
          {buildLog.length > 0 ? (
            <details open={!result}>
              <summary>Build log ({buildLog.length} lines)</summary>
              <pre class="log" tabIndex={0} aria-label="Build log">
                {buildLog.join("\n")}
              </pre>
            </details>
          ) : null}
          {healthy ? (
            <p role="status">
              <StatusDot status="running" label="Healthy" /> {result?.url ? `Serving on ${result.url}. ` : ""}
              Opening the service…
            </p>
          ) : result ? (
            <p role="alert" class="error-text">
              The deploy ended {result.status}.
            </p>
          ) : (
            <progress aria-label="Deploy in progress" />
          )}
        </Section>
      ) : null}
    </div>
  )
}

/** One service: status and actions, charts, health, deployments with their steps, logs, settings. */
import { useEffect, useMemo, useState } from "preact/hooks"

import {
  api,
  ApiError,
  type Deployment,
  type KyozoEvent,
  type Permission,
  type Service,
  type ServiceCan
} from "../api.js"
import { navigate, useApp } from "../app.js"
import { TimeChart } from "../chart.js"
import * as events from "../events.js"
import { bytes, Confirm, ErrorBox, Section, StatusDot, useLoad, when } from "../ui.js"

type Window = "hour" | "day" | "week"

export const ServicePage = ({ id }: { id: string }) => {
  const app = useApp()
  const loaded = useLoad(() => api.serviceWithCan(id), [id])
  const service = { ...loaded, data: loaded.data?.service }
  const deployments = useLoad(() => api.deployments(id), [id])
  const history = useLoad(() => api.serviceEvents(id), [id])
  const [actionError, setActionError] = useState<unknown>(undefined)
  const [busy, setBusy] = useState<string | undefined>(undefined)
  const [confirm, setConfirm] = useState<"delete" | "rollback" | undefined>(undefined)
  const [rollbackTo, setRollbackTo] = useState("")
  const [notice, setNotice] = useState<string | undefined>(undefined)

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined
    return events.onEvent((e) => {
      if (e.serviceId !== id) return
      clearTimeout(timer)
      timer = setTimeout(() => {
        service.reload()
        deployments.reload()
        history.reload()
      }, 250)
    })
  }, [id])

  const s = service.data
  if (service.error && !s)
    return (
      <div class="page">
        <p>
          <a href="#/services">← Services</a>
        </p>
        <ErrorBox error={service.error} />
      </div>
    )
  if (!s) return <div class="page muted">Loading…</div>
  const a = s.attributes
  // Controls follow what the server says the caller may do on this service (grants included).
  const can: ServiceCan = loaded.data?.can ?? {
    deploy: app.can.deploy,
    manage: app.can.deploy,
    admin: app.can.admin
  }

  /**
   * Runs an action. When its answer was lost (the connection failed, `ApiError` status 0), `made`
   * (if given) reads the server to tell whether the change was made anyway: the user learns the
   * outcome, never a guess, and nothing is sent twice.
   */
  const act = (label: string, run: () => Promise<unknown>, done?: string, made?: () => Promise<boolean>) => {
    setBusy(label)
    setActionError(undefined)
    setNotice(undefined)
    const settle = () => {
      setBusy(undefined)
      service.reload()
      deployments.reload()
    }
    run().then(
      () => {
        if (done) setNotice(done)
        settle()
      },
      async (e) => {
        const lost = e instanceof ApiError && e.status === 0
        if (lost && made !== undefined && (await made().catch(() => false))) {
          setNotice(
            `${done ?? `${label}: done.`} (The server's answer was lost on the way; the service shows the change made.)`
          )
        } else setActionError(e)
        // What the server has now (a change whose answer was lost may have been made).
        settle()
      }
    )
  }
  const retained = (deployments.data ?? []).filter(
    (d) => d.attributes.image && d.attributes.image !== a.image
  )
  const off = app.engineDown !== undefined || busy !== undefined
  const offTitle = app.engineDown ?? (busy ? `${busy}…` : undefined)

  return (
    <div class="page">
      <p class="crumbs">
        <a href="#/services">← Services</a>
      </p>
      <div class="page-head">
        <div>
          <h1>{a.name}</h1>
          <p class="sub">
            <StatusDot status={a.status} /> <span class="muted">desired: {a.desiredState}</span>
            <span class="muted" data-replicas={a.replicas ?? 1}>
              · {a.replicas ?? 1} replica{(a.replicas ?? 1) === 1 ? "" : "s"}
            </span>
            {a.framework ? <span class="tag">{a.framework}</span> : null}
            {a.kind ? <span class="tag">{a.kind}</span> : null}
          </p>
          <p class="sub">
            {a.url ? (
              <a href={a.url} target="_blank" rel="noopener noreferrer" class="url-link">
                {a.url}
              </a>
            ) : (
              <span class="muted">No URL yet</span>
            )}{" "}
            · <span class="mono">{a.image ?? "no image"}</span>
          </p>
        </div>
        {can.deploy ? (
          <div class="actions" role="group" aria-label="Service actions">
            <button
              type="button"
              class="btn btn-primary"
              disabled={off}
              title={offTitle}
              onClick={() => act("Redeploy", () => api.redeploy(id), "Redeploy started.")}
            >
              Redeploy
            </button>
            {a.desiredState === "stopped" ? (
              <button
                type="button"
                class="btn"
                disabled={off}
                title={offTitle}
                onClick={() =>
                  act(
                    "Start",
                    () => api.start(id),
                    "Started.",
                    () => api.service(id).then((now) => now.attributes.desiredState === "running")
                  )
                }
              >
                Start
              </button>
            ) : (
              <button
                type="button"
                class="btn"
                disabled={off}
                title={offTitle}
                onClick={() =>
                  act(
                    "Stop",
                    () => api.stop(id),
                    "Stopped.",
                    () => api.service(id).then((now) => now.attributes.desiredState === "stopped")
                  )
                }
              >
                Stop
              </button>
            )}
            <button
              type="button"
              class="btn"
              disabled={off}
              title={offTitle}
              onClick={() => act("Restart", () => api.restart(id), "Restarted.")}
            >
              Restart
            </button>
            <button
              type="button"
              class="btn"
              disabled={off || retained.length === 0}
              title={retained.length === 0 ? "No earlier image is retained" : offTitle}
              onClick={() => {
                setRollbackTo(retained[0]?.id ?? "")
                setConfirm("rollback")
              }}
            >
              Roll back
            </button>
            {can.manage ? (
              <button
                type="button"
                class="btn btn-danger"
                disabled={busy !== undefined}
                onClick={() => setConfirm("delete")}
              >
                Delete
              </button>
            ) : null}
          </div>
        ) : null}
      </div>
      {can.manage ? (
        <ScaleForm
          service={s}
          disabled={off}
          title={offTitle}
          onScale={(n) =>
            act(
              "Scale",
              () => api.updateService(id, { replicas: n }),
              `Scaled to ${n} replica${n === 1 ? "" : "s"}.`,
              () => api.service(id).then((now) => now.attributes.replicas === n)
            )
          }
        />
      ) : null}
      {app.engineDown && can.deploy ? <p class="hint">Actions are disabled: {app.engineDown}</p> : null}
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <ErrorBox error={actionError} onDismiss={() => setActionError(undefined)} />

      {confirm === "delete" ? (
        <Confirm
          title={`Delete ${a.name}?`}
          body={<p>Its containers, proxy and retained images are removed. This cannot be undone.</p>}
          confirmLabel="Delete service"
          typeToConfirm={a.name}
          onCancel={() => setConfirm(undefined)}
          onConfirm={() => {
            setConfirm(undefined)
            act("Delete", () => api.deleteService(id).then(() => navigate("/services")))
          }}
        />
      ) : null}
      {confirm === "rollback" ? (
        <Confirm
          title={`Roll ${a.name} back`}
          body={
            <label class="field">
              <span>Image to roll back to</span>
              <select value={rollbackTo} onChange={(e) => setRollbackTo(e.currentTarget.value)}>
                {retained.map((d) => (
                  <option value={d.id} key={d.id}>
                    {d.attributes.image} — {new Date(d.attributes.createdAt).toLocaleString()}
                  </option>
                ))}
              </select>
            </label>
          }
          confirmLabel="Roll back"
          onCancel={() => setConfirm(undefined)}
          onConfirm={() => {
            setConfirm(undefined)
            act("Roll back", () => api.rollback(id, rollbackTo || undefined), "Rollback started.")
          }}
        />
      ) : null}

      <div class="grid">
        <Metrics id={id} />
        <Section title="Limits and cost" id="limits">
          <Limits service={s} canEdit={can.manage} onSaved={service.reload} />
          <Autoscale service={s} canEdit={can.manage} onSaved={service.reload} />
          <Recommendations id={id} />
        </Section>
        <Section title="Health history" id="health">
          <Health id={id} />
        </Section>
        <Section title="Environment" id="env">
          {a.envKeys.length === 0 ? (
            <p class="muted">No environment variables.</p>
          ) : (
            <ul class="keys" aria-label="Environment variable names (values are never shown)">
              {a.envKeys.map((k) => (
                <li key={k} class="mono">
                  {k} <span class="muted">= ••••</span>
                </li>
              ))}
            </ul>
          )}
          <p class="hint">Values are secrets and are never sent to the dashboard.</p>
          <AlertRules id={id} />
        </Section>
      </div>
      <Section title="Volumes" id="volumes">
        <Volumes service={s} />
      </Section>
      {can.admin ? (
        <Section title="Access to this service" id="access">
          <Grants id={id} />
        </Section>
      ) : null}
      <Section title="Deployments" id="deployments">
        <Timeline
          deployments={deployments.data ?? []}
          events={history.data ?? []}
          error={deployments.error}
        />
      </Section>
      <Section title="Logs" id="logs">
        <Logs id={id} />
      </Section>
    </div>
  )
}

/** Replicas: how many containers serve the service behind the edge (1–20, quotas count each). */
const ScaleForm = ({
  service,
  disabled,
  title,
  onScale
}: {
  service: Service
  disabled: boolean
  title: string | undefined
  onScale: (replicas: number) => void
}) => {
  const current = service.attributes.replicas ?? 1
  const [value, setValue] = useState(String(current))
  useEffect(() => setValue(String(current)), [current])
  const n = Number(value)
  const valid = Number.isInteger(n) && n >= 1 && n <= 20
  return (
    <form
      class="scale"
      aria-label="Scale"
      onSubmit={(e) => {
        e.preventDefault()
        if (valid) onScale(n)
      }}
    >
      <label class="scale-field">
        <span>Replicas (1–20)</span>
        <input
          type="number"
          name="replicas"
          min={1}
          max={20}
          step={1}
          required
          value={value}
          aria-describedby="scale-hint"
          onInput={(e) => setValue(e.currentTarget.value)}
        />
      </label>
      <button type="submit" class="btn" disabled={disabled || !valid || n === current} title={title}>
        Scale
      </button>
      <span id="scale-hint" class="muted">
        Now {current}; each replica counts against the team's CPU and memory quota.
      </span>
    </form>
  )
}

const Metrics = ({ id }: { id: string }) => {
  const [win, setWin] = useState<Window>("hour")
  const metrics = useLoad(() => api.metrics(id, win), [id, win])
  useEffect(() => {
    const t = setInterval(metrics.reload, 60_000)
    return () => clearInterval(t)
  }, [id, win])
  const series = useMemo(() => {
    const rows = [...(metrics.data ?? [])].sort((x, y) =>
      x.attributes.sampledAt.localeCompare(y.attributes.sampledAt)
    )
    const to = Date.now() / 1000
    const from = to - (win === "hour" ? 3600 : win === "day" ? 86_400 : 7 * 86_400)
    return {
      from,
      to,
      times: rows.map((r) => new Date(r.attributes.sampledAt).getTime() / 1000),
      cpu: rows.map((r) => Math.round(r.attributes.cpuPercent * 10) / 10),
      mem: rows.map((r) => Math.round((r.attributes.memoryBytes / 1024 / 1024) * 10) / 10)
    }
  }, [metrics.data, win])
  return (
    <Section
      title="CPU and memory"
      id="metrics"
      actions={
        <div
          class="tabs"
          role="radiogroup"
          aria-label="Time window"
          onKeyDown={(e) => {
            // Arrow keys move between the windows, as in any radio group.
            const order = ["hour", "day", "week"] as const
            const step =
              e.key === "ArrowRight" || e.key === "ArrowDown"
                ? 1
                : e.key === "ArrowLeft" || e.key === "ArrowUp"
                  ? -1
                  : 0
            if (step === 0) return
            e.preventDefault()
            const next = order[(order.indexOf(win) + step + order.length) % order.length]!
            setWin(next)
            const group = e.currentTarget as HTMLElement
            requestAnimationFrame(() => group.querySelector<HTMLElement>(`[data-window="${next}"]`)?.focus())
          }}
        >
          {(["hour", "day", "week"] as const).map((w) => (
            <button
              type="button"
              role="radio"
              aria-checked={w === win}
              tabIndex={w === win ? 0 : -1}
              data-window={w}
              class={w === win ? "tab on" : "tab"}
              onClick={() => setWin(w)}
              key={w}
            >
              {w === "hour" ? "Hour" : w === "day" ? "Day" : "Week"}
            </button>
          ))}
        </div>
      }
    >
      <ErrorBox error={metrics.error} />
      <div class="charts">
        <TimeChart
          label="CPU"
          unit="%"
          times={series.times}
          values={series.cpu}
          color="#4338ca"
          from={series.from}
          to={series.to}
        />
        <TimeChart
          label="Memory"
          unit=" MiB"
          times={series.times}
          values={series.mem}
          color="#0f766e"
          from={series.from}
          to={series.to}
        />
      </div>
    </Section>
  )
}

const Limits = ({
  service,
  canEdit,
  onSaved
}: {
  service: Service
  canEdit: boolean
  onSaved: () => void
}) => {
  const a = service.attributes
  const [cpu, setCpu] = useState(String(a.cpuMillis))
  const [mem, setMem] = useState(String(a.memoryMb))
  const [error, setError] = useState<unknown>(undefined)
  // After a save: the rollout applying it (a deployment id), or null when nothing had to roll out.
  const [saved, setSaved] = useState<{ readonly rollout: string | null } | undefined>(undefined)
  if (!canEdit)
    return (
      <dl class="facts">
        <dt>CPU</dt>
        <dd>{a.cpuMillis} millicores</dd>
        <dt>Memory</dt>
        <dd>{a.memoryMb} MiB</dd>
        <dt>Restarts</dt>
        <dd>{a.restartCount}</dd>
      </dl>
    )
  return (
    <form
      class="limits"
      onSubmit={(e) => {
        e.preventDefault()
        setError(undefined)
        setSaved(undefined)
        api
          .updateServiceRollout(service.id, { cpuMillis: Number(cpu), memoryMb: Number(mem) })
          .then(({ rollout }) => {
            setSaved({ rollout: rollout ?? null })
            onSaved()
          }, setError)
      }}
    >
      <label class="field inline">
        <span>CPU (millicores)</span>
        <input
          type="number"
          min={10}
          max={64000}
          value={cpu}
          onInput={(e) => setCpu(e.currentTarget.value)}
        />
      </label>
      <label class="field inline">
        <span>Memory (MiB)</span>
        <input type="number" min={6} value={mem} onInput={(e) => setMem(e.currentTarget.value)} />
      </label>
      <button type="submit" class="btn">
        Save limits
      </button>
      {saved ? (
        <span role="status" class="muted">
          {" "}
          {saved.rollout === null
            ? "Saved; nothing running had to change (a stopped service starts with these limits)."
            : `Saved; rolling out to the running containers now (deployment ${saved.rollout}).`}
        </span>
      ) : null}
      <p class="muted">
        Restarts so far: {a.restartCount} · policy: {JSON.stringify(a.restartPolicy)}
      </p>
      <ErrorBox error={error} />
    </form>
  )
}

/** Autoscaling (HPA-like): min/max replicas and a target CPU; PATCH `autoscale` (null turns it off). */
const Autoscale = ({
  service,
  canEdit,
  onSaved
}: {
  service: Service
  canEdit: boolean
  onSaved: () => void
}) => {
  const policy = service.attributes.autoscale ?? null
  const [min, setMin] = useState(String(policy?.minReplicas ?? 1))
  const [max, setMax] = useState(String(policy?.maxReplicas ?? 3))
  const [cpu, setCpu] = useState(String(policy?.targetCpuPercent ?? 70))
  const [error, setError] = useState<unknown>(undefined)
  const [saved, setSaved] = useState<string | undefined>(undefined)
  useEffect(() => {
    setMin(String(policy?.minReplicas ?? 1))
    setMax(String(policy?.maxReplicas ?? 3))
    setCpu(String(policy?.targetCpuPercent ?? 70))
  }, [policy?.minReplicas, policy?.maxReplicas, policy?.targetCpuPercent])
  const summary = policy
    ? `On: ${policy.minReplicas}–${policy.maxReplicas} replicas${
        policy.targetCpuPercent === undefined ? "" : `, target CPU ${policy.targetCpuPercent}%`
      }${policy.targetMemoryPercent === undefined ? "" : `, target memory ${policy.targetMemoryPercent}%`}`
    : "Off: the replica count is fixed."
  if (!canEdit)
    return (
      <div class="autoscale">
        <h3>Autoscaling</h3>
        <p class="muted">{summary}</p>
      </div>
    )
  const save = (autoscale: Record<string, unknown> | null, done: string) => {
    setError(undefined)
    setSaved(undefined)
    api.updateService(service.id, { autoscale }).then(() => {
      setSaved(done)
      onSaved()
    }, setError)
  }
  return (
    <form
      class="autoscale"
      aria-label="Autoscaling"
      onSubmit={(e) => {
        e.preventDefault()
        save(
          {
            minReplicas: Number(min),
            maxReplicas: Number(max),
            targetCpuPercent: Number(cpu),
            ...(policy?.targetMemoryPercent === undefined
              ? {}
              : { targetMemoryPercent: policy.targetMemoryPercent }),
            ...(policy?.stabilizationSeconds === undefined
              ? {}
              : { stabilizationSeconds: policy.stabilizationSeconds })
          },
          "Autoscaling saved."
        )
      }}
    >
      <h3>Autoscaling</h3>
      <p class="muted">{summary}</p>
      <label class="field inline">
        <span>Min replicas</span>
        <input
          type="number"
          name="minReplicas"
          min={1}
          max={20}
          value={min}
          onInput={(e) => setMin(e.currentTarget.value)}
        />
      </label>
      <label class="field inline">
        <span>Max replicas</span>
        <input
          type="number"
          name="maxReplicas"
          min={1}
          max={20}
          value={max}
          onInput={(e) => setMax(e.currentTarget.value)}
        />
      </label>
      <label class="field inline">
        <span>Target CPU (%)</span>
        <input
          type="number"
          name="targetCpuPercent"
          min={1}
          max={100}
          value={cpu}
          onInput={(e) => setCpu(e.currentTarget.value)}
        />
      </label>
      <button type="submit" class="btn">
        Save autoscaling
      </button>
      {policy ? (
        <button type="button" class="btn" onClick={() => save(null, "Autoscaling turned off.")}>
          Turn off
        </button>
      ) : null}
      {saved ? (
        <span role="status" class="muted">
          {" "}
          {saved}
        </span>
      ) : null}
      <ErrorBox error={error} />
    </form>
  )
}

/** The service's data volumes (kept across redeploys; deleting the service keeps them unless asked). */
const Volumes = ({ service }: { service: Service }) => {
  const volumes = service.attributes.volumes ?? []
  if (volumes.length === 0) return <p class="muted">No data volumes.</p>
  return (
    <ul class="keys" aria-label="Data volumes">
      {volumes.map((v) => (
        <li key={v.name} class="mono">
          {v.name} <span class="muted">→ {v.target}</span>
        </li>
      ))}
    </ul>
  )
}

const money = (n: number) => `$${n.toFixed(2)}`

const Recommendations = ({ id }: { id: string }) => {
  const r = useLoad(() => api.recommendations(id), [id])
  if (r.error) return <ErrorBox error={r.error} />
  if (!r.data) return null
  const x = r.data.attributes
  return (
    <div class="reco">
      <h3>Recommendation (past week)</h3>
      <p>
        {x.cpuMillis} millicores, {x.memoryMb} MiB — <strong>{money(x.monthlyCost)}/month</strong>{" "}
        <span class="muted">
          (now {x.currentCpuMillis} m, {x.currentMemoryMb} MiB, {money(x.currentMonthlyCost)}/month; p95 CPU{" "}
          {x.p95CpuPercent.toFixed(1)}%, memory {bytes(x.p95MemoryBytes)}, {x.samples} samples)
        </span>
      </p>
    </div>
  )
}

const Health = ({ id }: { id: string }) => {
  const h = useLoad(() => api.health(id), [id])
  useEffect(() => {
    const t = setInterval(h.reload, 30_000)
    return () => clearInterval(t)
  }, [id])
  if (h.error) return <ErrorBox error={h.error} />
  const rows = h.data ?? []
  if (rows.length === 0) return <p class="muted">No health checks yet.</p>
  return (
    <>
      <div class="healthbar" role="img" aria-label={`Last ${rows.length} checks, newest first`}>
        {rows.map((c) => (
          <span
            key={c.id}
            class={`tick tick-${c.attributes.status === "healthy" ? "ok" : "bad"}`}
            title={`${c.attributes.status} ${c.attributes.checkedAt}`}
          />
        ))}
      </div>
      <ul class="plain">
        {rows.slice(0, 5).map((c) => (
          <li key={c.id}>
            <StatusDot status={c.attributes.status} /> {c.attributes.checkType}
            {c.attributes.latencyMs !== null ? ` · ${c.attributes.latencyMs} ms` : ""} ·{" "}
            {when(c.attributes.checkedAt)}
            {c.attributes.detail ? <span class="muted"> — {c.attributes.detail}</span> : null}
          </li>
        ))}
      </ul>
    </>
  )
}

const AlertRules = ({ id }: { id: string }) => {
  const rules = useLoad(() => api.alertRules(), [id])
  const mine = (rules.data ?? []).filter(
    (r) => r.attributes.serviceId === null || r.attributes.serviceId === id
  )
  return (
    <>
      <h3>Alert rules</h3>
      {rules.error ? <ErrorBox error={rules.error} /> : null}
      {mine.length === 0 ? (
        <p class="muted">No alert rules apply.</p>
      ) : (
        <ul class="plain">
          {mine.map((r) => (
            <li key={r.id}>
              {r.attributes.metric} {r.attributes.comparator} {r.attributes.threshold} for{" "}
              {r.attributes.durationSeconds} s
              {r.attributes.serviceId === null ? <span class="tag">team-wide</span> : null}
              {!r.attributes.enabled ? <span class="tag">off</span> : null}
            </li>
          ))}
        </ul>
      )}
    </>
  )
}

export const Timeline = ({
  deployments,
  events: evs,
  error
}: {
  deployments: ReadonlyArray<Deployment>
  events: ReadonlyArray<KyozoEvent>
  error: unknown
}) => {
  if (error) return <ErrorBox error={error} />
  if (deployments.length === 0) return <p class="muted">No deployments yet.</p>
  return (
    <ol class="timeline">
      {deployments.map((d) => {
        const steps = evs.filter((e) => e.deploymentId === d.id)
        const log = steps.flatMap((e) => {
          const l =
            (e.data as { log?: unknown; buildLog?: unknown }).log ??
            (e.data as { buildLog?: unknown }).buildLog
          return typeof l === "string" ? [l] : Array.isArray(l) ? l.map(String) : []
        })
        return (
          <li key={d.id} class="deploy">
            <div class="deploy-head">
              <StatusDot status={d.attributes.status} />
              <span class="mono">{d.attributes.image ?? "—"}</span>
              <span class="muted">
                {when(d.attributes.createdAt)}
                {d.attributes.finishedAt
                  ? ` · ${Math.max(0, Math.round((new Date(d.attributes.finishedAt).getTime() - new Date(d.attributes.createdAt).getTime()) / 1000))} s`
                  : ""}
              </span>
            </div>
            {d.attributes.error ? <p class="error-text">{d.attributes.error}</p> : null}
            <details>
              <summary>
                Steps ({steps.length}){log.length > 0 ? " and build log" : ""}
              </summary>
              <ol class="steps">
                {steps.map((e) => (
                  <li key={e.id}>
                    <span class="mono step-type">{e.type}</span> {e.message}{" "}
                    <span class="muted">{new Date(e.createdAt).toLocaleTimeString()}</span>
                  </li>
                ))}
              </ol>
              {log.length > 0 ? <pre class="log">{log.join("\n")}</pre> : null}
            </details>
          </li>
        )
      })}
    </ol>
  )
}

const Logs = ({ id }: { id: string }) => {
  const [follow, setFollow] = useState(true)
  const [lines, setLines] = useState<ReadonlyArray<string>>([])
  const [error, setError] = useState<unknown>(undefined)
  useEffect(() => {
    const show = (l: { stream: string; line: string }) => (l.stream === "stderr" ? "! " : "") + l.line
    if (!follow) {
      api.logs(id, 300).then((rows) => setLines(rows.map((r) => show(r.attributes))), setError)
      return undefined
    }
    // Live: the CLI's `logs -f` stream; lines are appended as the container writes them.
    const stop = new AbortController()
    setLines([])
    setError(undefined)
    // A dropped stream (network blip, server restart) is reopened; an error shows only if it persists.
    void (async () => {
      for (let attempt = 0; !stop.signal.aborted; attempt++) {
        try {
          setLines([])
          await api.followLogs(
            id,
            300,
            (l) => setLines((prev) => [...prev.slice(-999), show(l)]),
            stop.signal
          )
          setError(undefined)
          attempt = 0
        } catch (e) {
          if (stop.signal.aborted) return
          if (attempt >= 2) setError(e)
        }
        await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 10_000)))
      }
    })()
    return () => stop.abort()
  }, [id, follow])
  return (
    <>
      <label class="check">
        <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} /> Follow
        new lines live
      </label>
      {error ? <ErrorBox error={error} /> : null}
      <pre class="log" tabIndex={0} aria-label="Service logs">
        {lines.join("\n") || "No log lines."}
      </pre>
    </>
  )
}

const PERMISSIONS: ReadonlyArray<Permission> = ["view", "deploy", "manage", "admin"]

/** Per-service grants (admins): they add to what a member's team role already allows. */
const Grants = ({ id }: { id: string }) => {
  const grants = useLoad(() => api.grants(id), [id])
  const members = useLoad(() => api.members(), [])
  const [userId, setUserId] = useState("")
  const [permission, setPermission] = useState<Permission>("deploy")
  const [error, setError] = useState<unknown>(undefined)
  const emailOf = (uid: string) => members.data?.find((m) => m.id === uid)?.attributes.email ?? uid
  // Grants go to members: someone still invited (pending) gets one after accepting.
  const candidates = (members.data ?? []).filter(
    (m) =>
      m.attributes.state === "active" && (m.attributes.role === "viewer" || m.attributes.role === "member")
  )
  return (
    <>
      <p class="hint">
        Team roles apply to every service; a grant raises one member's permission on this one.
      </p>
      <ErrorBox error={grants.error ?? error} onDismiss={() => setError(undefined)} />
      {(grants.data ?? []).length === 0 ? (
        <p class="muted">No grants on this service.</p>
      ) : (
        <ul class="plain">
          {(grants.data ?? []).map((g) => (
            <li key={g.id}>
              {emailOf(g.attributes.userId)} may <strong>{g.attributes.permission}</strong>{" "}
              <button
                type="button"
                class="btn btn-small"
                aria-label={`Revoke ${g.attributes.permission} of ${emailOf(g.attributes.userId)}`}
                onClick={() => api.revokeGrant(id, g.id).then(grants.reload, setError)}
              >
                Revoke
              </button>
            </li>
          ))}
        </ul>
      )}
      {candidates.length > 0 ? (
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault()
            const who = userId || candidates[0]!.id
            api.grant(id, who, permission).then(grants.reload, setError)
          }}
        >
          <label class="field inline">
            <span>Member</span>
            <select value={userId || candidates[0]!.id} onChange={(e) => setUserId(e.currentTarget.value)}>
              {candidates.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.attributes.email} ({m.attributes.role})
                </option>
              ))}
            </select>
          </label>
          <label class="field inline">
            <span>Permission</span>
            <select value={permission} onChange={(e) => setPermission(e.currentTarget.value as Permission)}>
              {PERMISSIONS.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" class="btn">
            Grant
          </button>
        </form>
      ) : null}
    </>
  )
}

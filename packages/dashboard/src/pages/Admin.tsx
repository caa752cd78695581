/** Admin (owner/admin): members and roles, API keys, webhooks and deliveries, team quotas, runtime status. */
import { useState } from "preact/hooks"

import { api, type Role, type Webhook } from "../api.js"
import { useApp } from "../app.js"
import { Confirm, ErrorBox, Section, StatusDot, useLoad, when } from "../ui.js"

const ROLES: ReadonlyArray<Role> = ["owner", "admin", "member", "viewer"]

export const AdminPage = () => (
  <div class="page">
    <div class="page-head">
      <h1>Admin</h1>
    </div>
    <div class="grid">
      <Runtime />
      <Team />
    </div>
    <Members />
    <Keys />
    <Webhooks />
  </div>
)

const Runtime = () => {
  const r = useLoad(() => api.runtime(), [])
  const x = r.data?.attributes
  return (
    <Section
      title="Runtime"
      id="runtime"
      actions={
        <button type="button" class="btn btn-small" onClick={r.reload}>
          Refresh
        </button>
      }
    >
      <ErrorBox error={r.error} />
      {x ? (
        <>
          <dl class="facts">
            <dt>Engine</dt>
            <dd>{x.mode === "docker" ? "Docker" : "Mock (simulated)"}</dd>
            <dt>Why</dt>
            <dd>{x.reason}</dd>
            <dt>Circuit breaker</dt>
            <dd>
              <StatusDot
                status={
                  x.circuit_breaker_status.state === "closed"
                    ? "running"
                    : x.circuit_breaker_status.state === "open"
                      ? "failed"
                      : "degraded"
                }
                label={x.circuit_breaker_status.state}
              />{" "}
              <span class="muted">{x.circuit_breaker_status.consecutiveFailures} consecutive failures</span>
            </dd>
            <dt>Edge router</dt>
            <dd>
              {x.edge === null ? (
                "none"
              ) : (
                <>
                  <StatusDot
                    status={
                      x.edge.lastError !== null ? "failed" : x.edge.survivesRestart ? "running" : "degraded"
                    }
                    label={x.edge.kind === "caddy" ? "Caddy" : "In-process fallback"}
                  />{" "}
                  <span class="muted">
                    {x.edge.survivesRestart
                      ? "URLs keep answering while Kyozo is down"
                      : "URLs stop answering while Kyozo is down"}{" "}
                    · {x.edge.routes} routes
                    {x.edge.sharedPort !== null ? ` · *.${x.edge.domain}:${x.edge.sharedPort}` : ""}
                  </span>
                  {x.edge.lastError !== null ? <span class="error-text"> {x.edge.lastError}</span> : null}
                </>
              )}
            </dd>
          </dl>
          <div class="table-wrap">
            <table>
              <caption>Schedules</caption>
              <thead>
                <tr>
                  <th scope="col">Pass</th>
                  <th scope="col">Every</th>
                  <th scope="col">Runs</th>
                  <th scope="col">Failures</th>
                  <th scope="col">Last pass</th>
                </tr>
              </thead>
              <tbody>
                {x.schedules.map((s) => (
                  <tr key={s.pass}>
                    <th scope="row">{s.pass}</th>
                    <td>{Math.round(s.intervalMs / 1000)} s</td>
                    <td>{s.runs}</td>
                    <td>{s.failures}</td>
                    <td>
                      {s.lastFinishedAt ? when(new Date(s.lastFinishedAt).toISOString()) : "never"}
                      {s.lastDurationMs !== null ? <span class="muted"> · {s.lastDurationMs} ms</span> : null}
                      {s.lastError ? <span class="error-text"> {s.lastError}</span> : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </Section>
  )
}

const Team = () => {
  const t = useLoad(() => api.team(), [])
  const s = useLoad(() => api.services(), [])
  const x = t.data?.attributes
  const used = s.data ?? []
  return (
    <Section title="Team and quotas" id="team">
      <ErrorBox error={t.error} />
      {x ? (
        <dl class="facts">
          <dt>Team</dt>
          <dd>{x.name}</dd>
          <dt>Services</dt>
          <dd>
            {used.length} of {x.quotaServices}
          </dd>
          <dt>CPU</dt>
          <dd>
            {used.reduce((n, v) => n + v.attributes.cpuMillis, 0)} of {x.quotaCpuMillis} millicores
          </dd>
          <dt>Memory</dt>
          <dd>
            {used.reduce((n, v) => n + v.attributes.memoryMb, 0)} of {x.quotaMemoryMb} MiB
          </dd>
        </dl>
      ) : null}
    </Section>
  )
}

const Members = () => {
  const app = useApp()
  const m = useLoad(() => api.members(), [])
  const [email, setEmail] = useState("")
  const [role, setRole] = useState<Role>("member")
  const [error, setError] = useState<unknown>(undefined)
  const [notice, setNotice] = useState<string | undefined>(undefined)
  const run = (p: Promise<unknown>) => {
    setNotice(undefined)
    return p.then(() => (setError(undefined), m.reload()), setError)
  }
  return (
    <Section title="Members" id="members">
      <ErrorBox error={m.error ?? error} onDismiss={() => setError(undefined)} />
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <div class="table-wrap">
        <table>
          <caption class="sr-only">Members of the team</caption>
          <thead>
            <tr>
              <th scope="col">Member</th>
              <th scope="col">Role</th>
              <th scope="col">Since</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(m.data ?? []).map((u) => (
              <tr key={u.id}>
                <th scope="row">
                  {u.attributes.name || u.attributes.email} <span class="muted">{u.attributes.email}</span>
                  {u.attributes.state === "pending" ? (
                    <span class="muted"> · invited, joins on accepting</span>
                  ) : null}
                </th>
                <td>
                  <select
                    aria-label={`Role of ${u.attributes.email}`}
                    value={u.attributes.role}
                    disabled={u.id === app.session.userId}
                    onChange={(e) => run(api.changeRole(u.id, e.currentTarget.value as Role))}
                  >
                    {ROLES.map((r) => (
                      <option key={r} value={r}>
                        {r}
                      </option>
                    ))}
                  </select>
                </td>
                <td>{when(u.attributes.createdAt)}</td>
                <td>
                  {u.id !== app.session.userId ? (
                    <button
                      type="button"
                      class="btn btn-small"
                      aria-label={`${u.attributes.state === "pending" ? "Withdraw the invitation of" : "Remove"} ${u.attributes.email}`}
                      onClick={() => run(api.removeMember(u.id))}
                    >
                      {u.attributes.state === "pending" ? "Withdraw" : "Remove"}
                    </button>
                  ) : (
                    <span class="muted">you</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault()
          run(
            api.addMember(email, role).then(() => {
              setEmail("")
              // The same answer whether they have an account (they accept) or not (a member now).
              setNotice(
                `Invitation sent to ${email} as ${role}: a new person is a member now; someone with an account is listed as invited and joins when they accept.`
              )
            })
          )
        }}
      >
        <label class="field inline">
          <span>Email</span>
          <input type="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} required />
        </label>
        <label class="field inline">
          <span>Role</span>
          <select value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="btn">
          Add member
        </button>
      </form>
    </Section>
  )
}

const Keys = () => {
  const k = useLoad(() => api.apiKeys(), [])
  const [name, setName] = useState("")
  const [issued, setIssued] = useState<string | undefined>(undefined)
  const [revoking, setRevoking] = useState<string | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  return (
    <Section title="API keys" id="keys">
      <ErrorBox error={k.error ?? error} onDismiss={() => setError(undefined)} />
      {issued ? (
        <div class="issued" role="status">
          <p>
            <strong>Copy this key now:</strong> it is shown once and never again.
          </p>
          <input
            class="mono wide"
            readOnly
            value={issued}
            aria-label="The new API key"
            onFocus={(e) => e.currentTarget.select()}
          />
          <button type="button" class="btn btn-small" onClick={() => setIssued(undefined)}>
            Done
          </button>
        </div>
      ) : null}
      <div class="table-wrap">
        <table>
          <caption class="sr-only">API keys of the team</caption>
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Name</th>
              <th scope="col">Created</th>
              <th scope="col">Last used</th>
              <th scope="col">State</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(k.data ?? []).map((x) => (
              <tr key={x.id}>
                <th scope="row" class="mono">
                  {x.attributes.prefix}…
                </th>
                <td>{x.attributes.name || <span class="muted">unnamed</span>}</td>
                <td>{when(x.attributes.createdAt)}</td>
                <td>{when(x.attributes.lastUsedAt)}</td>
                <td>
                  {x.attributes.revokedAt ? (
                    <StatusDot status="stopped" label="revoked" />
                  ) : x.attributes.expiresAt && new Date(x.attributes.expiresAt) < new Date() ? (
                    <StatusDot status="stopped" label="expired" />
                  ) : (
                    <StatusDot status="running" label="active" />
                  )}
                </td>
                <td>
                  {!x.attributes.revokedAt ? (
                    <button
                      type="button"
                      class="btn btn-small"
                      aria-label={`Revoke ${x.attributes.prefix}`}
                      onClick={() => setRevoking(x.id)}
                    >
                      Revoke
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {revoking ? (
        <Confirm
          title="Revoke this key?"
          body={<p>Every client and dashboard session using it stops working at once.</p>}
          confirmLabel="Revoke key"
          onCancel={() => setRevoking(undefined)}
          onConfirm={() => {
            const id = revoking
            setRevoking(undefined)
            api.revokeKey(id).then(k.reload, setError)
          }}
        />
      ) : null}
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault()
          api.issueKey(name).then((x) => {
            setIssued(x.attributes.key)
            setName("")
            k.reload()
          }, setError)
        }}
      >
        <label class="field inline">
          <span>Key name</span>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="ci, laptop…" />
        </label>
        <button type="submit" class="btn">
          Issue key
        </button>
      </form>
    </Section>
  )
}

const Webhooks = () => {
  const w = useLoad(() => api.webhooks(), [])
  const [url, setUrl] = useState("")
  const [error, setError] = useState<unknown>(undefined)
  const [secret, setSecret] = useState<string | undefined>(undefined)
  return (
    <Section title="Webhooks" id="webhooks">
      <ErrorBox error={w.error ?? error} onDismiss={() => setError(undefined)} />
      {secret ? (
        <p class="issued" role="status">
          Signing secret (shown once): <code>{secret}</code>
        </p>
      ) : null}
      {(w.data ?? []).length === 0 ? <p class="muted">No webhooks.</p> : null}
      <ul class="plain">
        {(w.data ?? []).map((h) => (
          <WebhookRow key={h.id} hook={h} onDeleted={w.reload} onError={setError} />
        ))}
      </ul>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault()
          api.createWebhook(url).then((h) => {
            setSecret(h.attributes.secret)
            setUrl("")
            w.reload()
          }, setError)
        }}
      >
        <label class="field inline">
          <span>Webhook URL</span>
          <input
            type="url"
            value={url}
            onInput={(e) => setUrl(e.currentTarget.value)}
            placeholder="https://example.com/hook"
            required
          />
        </label>
        <button type="submit" class="btn">
          Add webhook
        </button>
      </form>
    </Section>
  )
}

const WebhookRow = ({
  hook,
  onDeleted,
  onError
}: {
  hook: Webhook
  onDeleted: () => void
  onError: (e: unknown) => void
}) => {
  const [open, setOpen] = useState(false)
  const d = useLoad(() => (open ? api.deliveries(hook.id) : Promise.resolve([])), [open])
  return (
    <li class="card inner">
      <div class="row">
        <span class="mono">{hook.attributes.url}</span>
        <span class="tag">
          {hook.attributes.eventTypes.length === 0 ? "all events" : hook.attributes.eventTypes.join(", ")}
        </span>
        <button type="button" class="btn btn-small" aria-expanded={open} onClick={() => setOpen(!open)}>
          Deliveries
        </button>
        <button
          type="button"
          class="btn btn-small"
          onClick={() => api.deleteWebhook(hook.id).then(onDeleted, onError)}
        >
          Remove webhook
        </button>
      </div>
      {open ? (
        <ul class="plain">
          {(d.data ?? []).length === 0 ? <li class="muted">No deliveries yet.</li> : null}
          {(d.data ?? []).map((x) => (
            <li key={x.id}>
              <StatusDot status={x.attributes.outcome} /> event {x.attributes.eventId}, attempt{" "}
              {x.attributes.attempt}
              {x.attributes.responseStatus !== null ? ` · HTTP ${x.attributes.responseStatus}` : ""}
              {x.attributes.error ? <span class="muted"> — {x.attributes.error}</span> : null} ·{" "}
              {when(x.attributes.attemptedAt)}
            </li>
          ))}
        </ul>
      ) : null}
    </li>
  )
}

/** Small shared pieces: status dots, error documents, confirmation dialog, relative times, roles. */
import type { ComponentChildren } from "preact"
import { useEffect, useRef, useState } from "preact/hooks"

import { ApiError, type ErrorObject, type Role } from "./api.js"

const rank: Record<Role, number> = { owner: 3, admin: 2, member: 1, viewer: 0 }
export const roleAtLeast = (role: Role, required: Role) => rank[role] >= rank[required]

export const statusTone = (status: string): "ok" | "warn" | "bad" | "idle" =>
  status === "running" || status === "healthy" || status === "succeeded" || status === "delivered"
    ? "ok"
    : status === "deploying" ||
        status === "starting" ||
        status === "pending" ||
        status === "degraded" ||
        status === "building"
      ? "warn"
      : status === "stopped" || status === "removed" || status === "superseded"
        ? "idle"
        : "bad"

export const StatusDot = ({ status, label }: { status: string; label?: string }) => (
  <span class={`status status-${statusTone(status)}`}>
    <span class="dot" aria-hidden="true" />
    {label ?? status}
  </span>
)

export const ago = (iso: string | null | undefined): string => {
  if (!iso) return "—"
  const t = new Date(iso).getTime()
  if (!Number.isFinite(t)) return "—"
  const s = Math.round((Date.now() - t) / 1000)
  if (s < 45) return "just now"
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86_400)} d ago`
}

export const when = (iso: string | null | undefined) =>
  iso ? (
    <time dateTime={iso} title={new Date(iso).toLocaleString()}>
      {ago(iso)}
    </time>
  ) : (
    <span>—</span>
  )

export const errorsOfUnknown = (e: unknown): ReadonlyArray<ErrorObject> =>
  e instanceof ApiError
    ? e.errors
    : [
        {
          status: "0",
          code: "unexpected",
          title: "Something went wrong",
          detail: String((e as Error)?.message ?? e)
        }
      ]

/** An API error document as the API words it: title, detail, and where it points. */
export const ErrorBox = ({ error, onDismiss }: { error: unknown; onDismiss?: () => void }) => {
  if (!error) return null
  return (
    <div class="error-box" role="alert">
      {errorsOfUnknown(error).map((e, i) => (
        <p key={i}>
          <strong>{e.title}</strong>
          {e.status !== "0" ? <span class="muted"> ({e.status})</span> : null}: {e.detail}
          {e.source?.pointer ? <span class="muted"> — at {e.source.pointer}</span> : null}
          {e.source?.parameter ? <span class="muted"> — parameter {e.source.parameter}</span> : null}
        </p>
      ))}
      {onDismiss ? (
        <button type="button" class="btn btn-small" onClick={onDismiss}>
          Dismiss
        </button>
      ) : null}
    </div>
  )
}

/** Loads once (and again when `deps` change); `reload` re-runs it. */
export const useLoad = <T,>(load: () => Promise<T>, deps: ReadonlyArray<unknown>) => {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true })
  const seq = useRef(0)
  const run = () => {
    const mine = ++seq.current
    setState((s) => ({ ...s, loading: true }))
    load().then(
      (data) => mine === seq.current && setState({ data, loading: false }),
      (error) => mine === seq.current && setState((s) => ({ ...s, error, loading: false }))
    )
  }
  useEffect(run, deps)
  return { ...state, reload: run }
}

export const Section = ({
  title,
  children,
  actions,
  id
}: {
  title: string
  children: ComponentChildren
  actions?: ComponentChildren
  id?: string
}) => (
  <section class="card" aria-labelledby={id ?? undefined}>
    <header class="card-head">
      <h2 id={id}>{title}</h2>
      {actions ? <div class="card-actions">{actions}</div> : null}
    </header>
    {children}
  </section>
)

/** A modal confirmation; for destructive actions the user types the object's name. */
export const Confirm = ({
  title,
  body,
  confirmLabel,
  typeToConfirm,
  onConfirm,
  onCancel
}: {
  title: string
  body: ComponentChildren
  confirmLabel: string
  typeToConfirm?: string
  onConfirm: () => void
  onCancel: () => void
}) => {
  const ref = useRef<HTMLDialogElement>(null)
  const [typed, setTyped] = useState("")
  useEffect(() => {
    ref.current?.showModal()
  }, [])
  const ok = typeToConfirm === undefined || typed === typeToConfirm
  return (
    <dialog ref={ref} class="dialog" aria-labelledby="confirm-title" onCancel={onCancel}>
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault()
          if (ok) onConfirm()
        }}
      >
        <h2 id="confirm-title">{title}</h2>
        <div>{body}</div>
        {typeToConfirm !== undefined ? (
          <label class="field">
            <span>
              Type <code>{typeToConfirm}</code> to confirm
            </span>
            <input value={typed} onInput={(e) => setTyped(e.currentTarget.value)} autoComplete="off" />
          </label>
        ) : null}
        <div class="row end">
          <button type="button" class="btn" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit" class="btn btn-danger" disabled={!ok}>
            {confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  )
}

export const bytes = (n: number): string =>
  n < 1024
    ? `${n} B`
    : n < 1024 ** 2
      ? `${(n / 1024).toFixed(1)} KiB`
      : n < 1024 ** 3
        ? `${(n / 1024 ** 2).toFixed(1)} MiB`
        : `${(n / 1024 ** 3).toFixed(2)} GiB`

/** The sign-in form: an API key exchanged for a session cookie. */
import { useEffect, useRef, useState } from "preact/hooks"

import { type Session, session } from "../api.js"
import { ErrorBox } from "../ui.js"

export const SignIn = ({ onSignedIn }: { onSignedIn: (s: Session) => void }) => {
  const [key, setKey] = useState("")
  const [error, setError] = useState<unknown>(undefined)
  const [busy, setBusy] = useState(false)
  const field = useRef<HTMLInputElement>(null)
  // `autofocus` works only for elements present at page load; this form appears later.
  useEffect(() => field.current?.focus(), [])
  return (
    <main class="signin">
      <form
        class="card signin-card"
        onSubmit={(e) => {
          e.preventDefault()
          setBusy(true)
          setError(undefined)
          session.signIn(key).then(onSignedIn, (err) => {
            setError(err)
            setBusy(false)
          })
        }}
      >
        <div class="brand big">
          <img src="/favicon.svg" alt="" width="36" height="36" />
          <h1>Kyozo</h1>
        </div>
        <p class="muted">
          Drop a folder, get a running, watched service. Sign in with an API key of your team.
        </p>
        <label class="field">
          <span>API key</span>
          <input
            type="password"
            name="apiKey"
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
            placeholder="kz_…"
            autoComplete="current-password"
            required
            ref={field}
          />
        </label>
        <p class="hint">
          The first start printed one and wrote it to <code>credentials.json</code> in Kyozo's data folder.
        </p>
        <ErrorBox error={error} />
        <button type="submit" class="btn btn-primary wide" disabled={busy || key.trim() === ""}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  )
}

/**
 * The shell: sign-in, the header with the team and role, banners (mock runtime, Docker circuit
 * open), and a hash router over the pages. What a role may do decides which controls exist; the
 * server still checks every action.
 */
import { createContext } from "preact"
import { useContext, useEffect, useState } from "preact/hooks"

import { api, type Runtime, type Session, session as sessionApi, setCsrfToken, whenSignedOut } from "./api.js"
import * as events from "./events.js"
import { Invitations } from "./invitations.js"
import { AdminPage } from "./pages/Admin.js"
import { DeployPage } from "./pages/Deploy.js"
import { ServicePage } from "./pages/Service.js"
import { ServicesPage } from "./pages/Services.js"
import { SignIn } from "./pages/SignIn.js"
import { roleAtLeast } from "./ui.js"

export interface AppState {
  readonly session: Session
  readonly runtime: Runtime["attributes"] | undefined
  /** Why engine actions are off right now (the circuit is open), or undefined. */
  readonly engineDown: string | undefined
  readonly can: { readonly deploy: boolean; readonly admin: boolean }
}

export const AppContext = createContext<AppState | null>(null)
export const useApp = (): AppState => {
  const state = useContext(AppContext)
  if (state === null) throw new Error("outside the signed-in app")
  return state
}

const useRoute = () => {
  const [hash, setHash] = useState(location.hash || "#/services")
  useEffect(() => {
    const f = () => setHash(location.hash || "#/services")
    addEventListener("hashchange", f)
    return () => removeEventListener("hashchange", f)
  }, [])
  return hash.replace(/^#/, "")
}

export const navigate = (path: string) => {
  location.hash = path
}

export const App = () => {
  const [session, setSession] = useState<Session | null | undefined>(undefined)
  useEffect(() => {
    whenSignedOut(() => {
      events.stop()
      setSession(null)
    })
    sessionApi.current().then(
      (s) => {
        if (s) setCsrfToken(s.csrfToken)
        setSession(s)
      },
      () => setSession(null)
    )
  }, [])
  if (session === undefined)
    return (
      <main class="center" aria-busy="true">
        <p class="muted">Loading…</p>
      </main>
    )
  if (session === null)
    return (
      <SignIn
        onSignedIn={(s) => {
          setCsrfToken(s.csrfToken)
          setSession(s)
        }}
      />
    )
  return (
    <Shell
      key={session.csrfToken}
      session={session}
      onSwitch={(apiKey) =>
        // Signing in with a key of another team replaces this session (and its event stream).
        sessionApi.signIn(apiKey).then((s) => {
          events.stop()
          setCsrfToken(s.csrfToken)
          navigate("/services")
          setSession(s)
        })
      }
      onSignOut={() => {
        events.stop()
        sessionApi.signOut().finally(() => setSession(null))
      }}
    />
  )
}

const Shell = ({
  session,
  onSignOut,
  onSwitch
}: {
  session: Session
  onSignOut: () => void
  onSwitch: (apiKey: string) => Promise<void>
}) => {
  const route = useRoute()
  const [runtime, setRuntime] = useState<Runtime["attributes"] | undefined>(undefined)
  const [live, setLive] = useState(events.isConnected())
  useEffect(() => {
    const refresh = () =>
      api.runtime().then(
        (r) => setRuntime(r.attributes),
        () => undefined
      )
    refresh()
    events.start()
    const offBreaker = events.onBreaker(() => refresh())
    const offState = events.onConnection(setLive)
    // The breaker's half-open trial happens without an event when no call is made: look again now and then.
    const timer = setInterval(refresh, 15_000)
    return () => {
      offBreaker()
      offState()
      clearInterval(timer)
    }
  }, [])
  const breaker = runtime?.circuit_breaker_status
  const engineDown =
    breaker && breaker.state === "open"
      ? `The Docker engine is not answering (circuit open after ${breaker.consecutiveFailures} failed call${breaker.consecutiveFailures === 1 ? "" : "s"}); engine actions are paused until it recovers.`
      : undefined
  const state: AppState = {
    session,
    runtime,
    engineDown,
    can: { deploy: roleAtLeast(session.role, "member"), admin: roleAtLeast(session.role, "admin") }
  }
  const [page, ...rest] = route.split("/").filter((s) => s !== "")
  const link = (href: string, label: string, current: boolean) => (
    <a
      href={href}
      class={current ? "nav-link current" : "nav-link"}
      aria-current={current ? "page" : undefined}
    >
      {label}
    </a>
  )
  return (
    <AppContext.Provider value={state}>
      <a
        class="skip"
        href="#main"
        onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}
      >
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href="#/services" aria-label="Kyozo, services">
          <img src="/favicon.svg" alt="" width="24" height="24" />
          <span>Kyozo</span>
        </a>
        <nav aria-label="Main">
          {link("#/services", "Services", page === "services" || page === undefined)}
          {state.can.deploy ? link("#/deploy", "New service", page === "deploy") : null}
          {state.can.admin ? link("#/admin", "Admin", page === "admin") : null}
        </nav>
        <div class="who">
          <span
            class={live ? "live on" : "live"}
            title={live ? "Live updates connected" : "Reconnecting to live updates"}
          >
            <span class="dot" aria-hidden="true" />
            {live ? "Live" : "Offline"}
          </span>
          <span class="team" title={session.email}>
            {session.teamName} · <span class="role">{session.role}</span>
          </span>
          <button type="button" class="btn btn-small" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      {runtime?.mode === "mock" ? (
        <div class="banner banner-warn" role="status">
          <strong>Mock runtime.</strong> No Docker engine is in use ({runtime.reason}); containers are
          simulated and nothing is really served.
        </div>
      ) : null}
      {engineDown ? (
        <div class="banner banner-bad" role="alert">
          <strong>Docker is down.</strong> {engineDown}
        </div>
      ) : null}
      <Invitations onSwitch={onSwitch} />
      <main id="main" tabIndex={-1}>
        {page === "services" && rest[0] ? (
          <ServicePage id={decodeURIComponent(rest[0])} key={rest[0]} />
        ) : page === "deploy" && state.can.deploy ? (
          <DeployPage />
        ) : page === "admin" && state.can.admin ? (
          <AdminPage />
        ) : (
          <ServicesPage />
        )}
      </main>
    </AppContext.Provider>
  )
}

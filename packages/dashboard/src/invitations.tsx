/**
 * The signed-in user's pending invitations to other teams, as a banner under the header. Accepting
 * joins the team and returns a key for it, shown here once (as issued API keys are); signing in
 * with it switches the dashboard to that team.
 */
import { useEffect, useState } from "preact/hooks"

import { api, type ApiKey, type Invitation, type Team } from "./api.js"
import { ErrorBox } from "./ui.js"

export const Invitations = ({ onSwitch }: { onSwitch: (key: string) => Promise<void> }) => {
  const [pending, setPending] = useState<ReadonlyArray<Invitation>>([])
  const [joined, setJoined] = useState<{ team: Team; key: ApiKey; role: string } | undefined>(undefined)
  const [busy, setBusy] = useState<string | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const load = () =>
    api.invitations().then(
      (list) => setPending(list),
      () => undefined // invitations are an extra: a failed read leaves the page as it is
    )
  useEffect(() => {
    load()
    const t = setInterval(load, 60_000)
    return () => clearInterval(t)
  }, [])
  if (pending.length === 0 && !joined && !error) return null
  const key = joined?.key.attributes.key
  return (
    <section class="banner banner-info invitations" aria-label="Invitations">
      <ErrorBox error={error} onDismiss={() => setError(undefined)} />
      {joined && key ? (
        <div class="issued" role="status">
          <p>
            <strong>
              You joined {joined.team.attributes.name} as {joined.role}.
            </strong>{" "}
            Your key for it is shown once and never again: copy it now.
          </p>
          <input
            class="mono wide"
            readOnly
            value={key}
            aria-label={`Your API key for ${joined.team.attributes.name}`}
            onFocus={(e) => e.currentTarget.select()}
          />
          <div class="row">
            <button
              type="button"
              class="btn btn-primary btn-small"
              onClick={() => onSwitch(key).catch(setError)}
            >
              Switch to {joined.team.attributes.name}
            </button>
            <button type="button" class="btn btn-small" onClick={() => setJoined(undefined)}>
              Done
            </button>
          </div>
        </div>
      ) : null}
      {pending.length > 0 ? (
        <ul class="plain">
          {pending.map((i) => (
            <li key={i.id}>
              <span>
                You are invited to <strong>{i.attributes.teamName ?? "a team"}</strong> as{" "}
                <span class="role">{i.attributes.role}</span>.
              </span>{" "}
              <button
                type="button"
                class="btn btn-small"
                disabled={busy !== undefined}
                aria-label={`Accept the invitation to ${i.attributes.teamName ?? "the team"}`}
                onClick={() => {
                  setBusy(i.id)
                  setError(undefined)
                  api.acceptInvitation(i.id).then(
                    (r) => {
                      setBusy(undefined)
                      setJoined({ team: r.team, key: r.key, role: r.member.attributes.role })
                      load()
                    },
                    (e) => {
                      setBusy(undefined)
                      setError(e)
                    }
                  )
                }}
              >
                Accept
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  )
}

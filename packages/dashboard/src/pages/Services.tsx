/** Every service of the team, kept live by the event stream. */
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks"

import { api, type Service } from "../api.js"
import { useApp } from "../app.js"
import * as events from "../events.js"
import { ErrorBox, StatusDot, when } from "../ui.js"

/** What the page shows about a service's health, from its status. */
const health = (status: string) =>
  status === "running"
    ? "healthy"
    : status === "degraded" || status === "unhealthy" || status === "starting"
      ? status
      : "unknown"

/**
 * Running/desired replicas. The API gives the desired count (`replicas`); all of them serve while
 * the service is running (the replica pass converges at once), none while it is stopped or failed.
 */
const replicas = (s: Service) => {
  const desired = s.attributes.desiredState === "running" ? (s.attributes.replicas ?? 1) : 0
  const running = s.attributes.status === "running" || s.attributes.status === "degraded" ? desired : 0
  return `${running}/${desired}`
}

export const ServicesPage = () => {
  const app = useApp()
  const [services, setServices] = useState<ReadonlyArray<Service> | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const arrived = useRef(false)

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined
    let alive = true
    const load = () =>
      api.services().then(
        (list) => {
          if (!alive) return
          performance.mark("services:data")
          arrived.current = true
          setError(undefined)
          setServices(list)
        },
        (e) => alive && setError(e)
      )
    load()
    // A burst of events (a deploy, a replay after reconnect) becomes one reload.
    const off = events.onEvent((e) => {
      if (e.serviceId === null) return
      clearTimeout(timer)
      timer = setTimeout(load, 250)
    })
    return () => {
      alive = false
      off()
      clearTimeout(timer)
    }
  }, [])

  // Measured for the browser test: from the data's arrival to the rows in the DOM.
  useLayoutEffect(() => {
    if (!arrived.current) return
    arrived.current = false
    performance.measure("services:render", "services:data")
    document.body.dataset.servicesRendered = String(services?.length ?? 0)
  }, [services])

  return (
    <div class="page">
      <div class="page-head">
        <h1>Services</h1>
        {app.can.deploy ? (
          <a class="btn btn-primary" href="#/deploy">
            Deploy a folder
          </a>
        ) : null}
      </div>
      <ErrorBox error={error} />
      {services === undefined ? (
        error ? null : (
          <p class="muted">Loading services…</p>
        )
      ) : services.length === 0 ? (
        <div class="card empty">
          <h2>No services yet</h2>
          <p class="muted">
            {app.can.deploy
              ? "Deploy a folder from here, or from a terminal: pnpm kyozo deploy ./my-folder. It shows up here at once."
              : "Nothing has been deployed in this team yet."}
          </p>
        </div>
      ) : (
        <div class="table-wrap card">
          <table class="services">
            <caption class="sr-only">Services of {app.session.teamName}</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Health</th>
                <th scope="col">Replicas</th>
                <th scope="col">URL</th>
                <th scope="col">Image</th>
                <th scope="col">Last deploy</th>
              </tr>
            </thead>
            <tbody>
              {services.map((s) => (
                <tr key={s.id} data-service={s.attributes.name}>
                  <th scope="row">
                    <a href={`#/services/${encodeURIComponent(s.id)}`}>{s.attributes.name}</a>
                    {s.attributes.framework ? <span class="tag">{s.attributes.framework}</span> : null}
                  </th>
                  <td>
                    <StatusDot status={s.attributes.status} />
                  </td>
                  <td>
                    <StatusDot status={health(s.attributes.status)} />
                  </td>
                  <td data-replicas={replicas(s)}>{replicas(s)}</td>
                  <td class="url">
                    {s.attributes.url ? (
                      <a href={s.attributes.url} target="_blank" rel="noopener noreferrer">
                        {s.attributes.url.replace(/^https?:\/\//, "")}
                      </a>
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                  <td class="mono">{s.attributes.image ?? "—"}</td>
                  <td>{when(s.attributes.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  )
}

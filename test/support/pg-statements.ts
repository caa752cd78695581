/**
 * Counts the SQL statements a real server process sends to PostgreSQL: a TCP proxy on loopback
 * between the server and the database that forwards every byte unchanged and reads the frontend
 * messages of the wire protocol on the way (simple `Query`, and `Parse`/`Bind`/`Execute` of the
 * extended protocol node-postgres uses). Each executed statement is recorded with its SQL text.
 * No TLS: the connection URL must not ask for it (loopback test databases do not).
 */
import * as net from "node:net"

export interface StatementLog {
  /** DATABASE_URL through the proxy (same database, user and options). */
  readonly url: string
  /** Every statement executed so far, oldest first. */
  readonly statements: () => ReadonlyArray<string>
  /** The statements executed while `action` ran. */
  readonly during: <A>(action: () => Promise<A>) => Promise<{ value: A; statements: ReadonlyArray<string> }>
  readonly close: () => Promise<void>
}

const SSL_REQUEST = 80877103
const GSS_REQUEST = 80877104

const cstring = (buf: Buffer, at: number): [string, number] => {
  const end = buf.indexOf(0, at)
  return [buf.toString("utf8", at, end), end + 1]
}

/** Reads one client's frontend messages and records the statements it executes. */
const reader = (record: (sql: string) => void) => {
  let pending = Buffer.alloc(0)
  let startup = true
  const prepared = new Map<string, string>()
  const portals = new Map<string, string>()
  return (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk])
    for (;;) {
      if (startup) {
        if (pending.length < 8) return
        const length = pending.readInt32BE(0)
        if (pending.length < length) return
        const code = pending.readInt32BE(4)
        pending = pending.subarray(length)
        // SSL/GSS negotiation comes before the real startup message.
        if (code !== SSL_REQUEST && code !== GSS_REQUEST) startup = false
        continue
      }
      if (pending.length < 5) return
      const type = String.fromCharCode(pending[0]!)
      const length = pending.readInt32BE(1)
      if (pending.length < 1 + length) return
      const body = pending.subarray(5, 1 + length)
      pending = pending.subarray(1 + length)
      if (type === "Q") record(cstring(body, 0)[0])
      else if (type === "P") {
        const [name, next] = cstring(body, 0)
        prepared.set(name, cstring(body, next)[0])
      } else if (type === "B") {
        const [portal, next] = cstring(body, 0)
        portals.set(portal, prepared.get(cstring(body, next)[0]) ?? "<unknown statement>")
      } else if (type === "E") record(portals.get(cstring(body, 0)[0]) ?? "<unknown portal>")
    }
  }
}

export const startStatementLog = async (databaseUrl: string): Promise<StatementLog> => {
  const upstream = new URL(databaseUrl)
  const log: Array<string> = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const db = net.connect(Number(upstream.port || 5432), upstream.hostname)
    sockets.add(client)
    sockets.add(db)
    const read = reader((sql) => log.push(sql))
    client.on("data", (chunk: Buffer) => {
      read(chunk)
      db.write(chunk)
    })
    db.pipe(client)
    const end = () => {
      client.destroy()
      db.destroy()
      sockets.delete(client)
      sockets.delete(db)
    }
    client.on("close", end).on("error", end)
    db.on("close", end).on("error", end)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address() as net.AddressInfo
  const proxied = new URL(databaseUrl)
  proxied.hostname = "127.0.0.1"
  proxied.port = String(address.port)
  return {
    url: proxied.toString(),
    statements: () => [...log],
    during: async (action) => {
      const from = log.length
      const value = await action()
      return { value, statements: log.slice(from) }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      })
  }
}

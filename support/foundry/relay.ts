// A test-only stand-in for the REST API relay's module-facing WebSocket
// (foundry.md §6). Two protocols on one port:
//  v2 (TS relay 2.1): any upgrade path but /ws/api; `id` and `token` in the
//     query (else close 1008); a duplicate id closes the newcomer with 4004.
//  v3 (Go relay): path /relay; a `token` in the query → HTTP 400; the first
//     message must be {"type":"auth","token"} within authTimeoutMs (else
//     4002); unknown token → 1008; ok → {"type":"auth-success"}; the same id
//     again replaces the older connection (close 1000, "same id, same IP").
// Both answer {"type":"ping"} with {"type":"pong"}.
import http from 'node:http'
import type { AddressInfo, Socket as NetSocket } from 'node:net'
import { WebSocketServer, type WebSocket, type RawData } from 'ws'

export interface RelayConnection {
  /** Client id from the `id` query parameter ('' when absent). */
  id: string
  path: string
  query: Record<string, string>
  protocol: 'v2' | 'v3'
  openedAt: number
  closedAt?: number
  closeCode?: number
  /** Who closed it: the relay (closeCode is what it sent) or the client. */
  closedBy?: 'relay' | 'client'
  authed: boolean
  pings: number
  messages: unknown[]
}

export interface RelayRejectedUpgrade { path: string, query: Record<string, string>, status: number, at: number }

export interface RelayStandin {
  /** ws://127.0.0.1:<port>/ */
  url: string
  connections: RelayConnection[]
  /** Upgrades refused with an HTTP status (v3 `?token=`, /ws/api). */
  rejectedUpgrades: RelayRejectedUpgrade[]
  /** Resolves with the first connection (existing or future) matching pred; re-checked on every change. */
  waitFor: (pred: (c: RelayConnection) => boolean, timeoutMs?: number) => Promise<RelayConnection>
  /** v3 connection tokens the relay accepts. */
  validTokens: Set<string>
  /** Close an open connection from the relay side. */
  kick: (c: RelayConnection, code: number, reason?: string) => void
  /** Send a JSON message to an open connection. */
  send: (c: RelayConnection, msg: unknown) => void
  /** Open connections. */
  open: () => RelayConnection[]
  /** Go down: drop every connection without a close frame (pages see 1006) and stop listening until up(). */
  down: () => Promise<void>
  /** Listen again on the same port. */
  up: () => Promise<void>
  close: () => Promise<void>
}

export interface RelayStandinOptions {
  /** Client ids refused with close 4004 (id held elsewhere). */
  rejectIds?: string[]
  /** v3 auth message deadline (default 10000 ms, as the Go relay). */
  authTimeoutMs?: number
  /** v3 tokens accepted from the start. */
  validTokens?: string[]
}

export async function startRelayStandin (opts: RelayStandinOptions = {}): Promise<RelayStandin> {
  const connections: RelayConnection[] = []
  const rejectedUpgrades: RelayRejectedUpgrade[] = []
  const validTokens = new Set<string>(opts.validTokens ?? [])
  const rejectIds = new Set(opts.rejectIds ?? [])
  const authTimeoutMs = opts.authTimeoutMs ?? 10000
  const sockets = new Map<RelayConnection, WebSocket>()
  const waiters = new Set<() => void>()
  const notify = (): void => { for (const w of [...waiters]) w() }

  const server = http.createServer((_req, res) => { res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"Not found"}') })
  const conns = new Set<NetSocket>()
  server.on('connection', (c: NetSocket) => { conns.add(c); c.on('close', () => conns.delete(c)) })
  const wss = new WebSocketServer({ noServer: true })

  const isOpen = (c: RelayConnection): boolean => c.closedAt === undefined

  function closeWith (c: RelayConnection, code: number, reason: string): void {
    const ws = sockets.get(c)
    if (ws === undefined || !isOpen(c)) return
    if (c.closeCode === undefined) { c.closeCode = code; c.closedBy = 'relay' }
    ws.close(code, reason)
    // Browsers echo the close frame at once; do not wait 30 s for a dead peer.
    setTimeout(() => { if (!isOpen(c)) return; ws.terminate() }, 2000).unref()
  }

  function sendJson (c: RelayConnection, msg: unknown): void {
    const ws = sockets.get(c)
    if (ws !== undefined && isOpen(c) && ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg))
  }

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://relay')
    const path = url.pathname
    const query = Object.fromEntries(url.searchParams)
    const refuse = (status: number, text: string): void => {
      rejectedUpgrades.push({ path, query, status, at: Date.now() })
      const body = JSON.stringify({ error: text })
      socket.end(`HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : 'Not Found'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
      notify()
    }
    if (path === '/ws/api') { refuse(404, 'Not a client endpoint'); return }
    const v3 = path === '/relay'
    if (v3 && 'token' in query) { refuse(400, 'Tokens in the query string are not accepted; send an auth message'); return }
    wss.handleUpgrade(req, socket, head, (ws) => { onConnection(ws, path, query, v3 ? 'v3' : 'v2') })
  })

  function onConnection (ws: WebSocket, path: string, query: Record<string, string>, protocol: 'v2' | 'v3'): void {
    const c: RelayConnection = { id: query.id ?? '', path, query, protocol, openedAt: Date.now(), authed: false, pings: 0, messages: [] }
    connections.push(c)
    sockets.set(c, ws)
    let authTimer: NodeJS.Timeout | null = null
    ws.on('close', (code) => {
      if (authTimer !== null) clearTimeout(authTimer)
      c.closedAt = Date.now()
      if (c.closeCode === undefined) { c.closeCode = code; c.closedBy = 'client' }
      sockets.delete(c)
      notify()
    })
    ws.on('error', () => {})
    ws.on('message', (data: RawData) => {
      let msg: unknown
      try { msg = JSON.parse(data.toString()) } catch { msg = data.toString() }
      c.messages.push(msg)
      const type = msg !== null && typeof msg === 'object' ? (msg as { type?: unknown }).type : undefined
      if (protocol === 'v3' && !c.authed) {
        const token = (msg as { token?: unknown } | null)?.token
        if (type !== 'auth' || typeof token !== 'string') { closeWith(c, 4002, 'Expected an auth message'); notify(); return }
        if (!validTokens.has(token)) { closeWith(c, 1008, 'Invalid token'); notify(); return }
        if (authTimer !== null) { clearTimeout(authTimer); authTimer = null }
        for (const other of connections) {
          if (other !== c && other.protocol === 'v3' && other.id === c.id && isOpen(other) && other.authed) closeWith(other, 1000, 'Replaced by a new connection')
        }
        c.authed = true
        sendJson(c, { type: 'auth-success' })
        notify()
        return
      }
      if (type === 'ping') {
        c.pings++
        sendJson(c, { type: 'pong' })
      }
      notify()
    })

    if (protocol === 'v2') {
      if (c.id === '' || query.token === undefined || query.token === '') closeWith(c, 1008, 'Missing client ID or token')
      else if (rejectIds.has(c.id)) closeWith(c, 4004, 'Client ID connected elsewhere')
      else if (connections.some((o) => o !== c && o.protocol === 'v2' && o.id === c.id && isOpen(o))) closeWith(c, 4004, 'Client ID already connected')
      else c.authed = true
    } else {
      if (c.id === '') closeWith(c, 4001, 'Missing client ID')
      else if (rejectIds.has(c.id)) closeWith(c, 4004, 'Client ID connected from another address')
      else authTimer = setTimeout(() => { authTimer = null; if (!c.authed) closeWith(c, 4002, 'Authentication timeout'); notify() }, authTimeoutMs)
    }
    notify()
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const port = (server.address() as AddressInfo).port

  return {
    url: `ws://127.0.0.1:${port}/`,
    connections,
    rejectedUpgrades,
    validTokens,
    waitFor (pred, timeoutMs = 10000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const hit = connections.find(pred)
          if (hit === undefined) return false
          waiters.delete(check)
          clearTimeout(timer)
          resolve(hit)
          return true
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          const seen = connections.map((c) => `${c.protocol} ${c.path} id=${c.id} authed=${c.authed} pings=${c.pings} close=${c.closeCode ?? '-'}`).join('; ')
          reject(new Error(`relay: no matching connection within ${timeoutMs} ms (seen: ${seen === '' ? 'none' : seen})`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    kick (c, code, reason = '') { closeWith(c, code, reason) },
    send (c, msg) { sendJson(c, msg) },
    open: () => connections.filter((c) => isOpen(c) && c.closeCode === undefined),
    async down () {
      const closed = new Promise<void>((resolve) => { server.close(() => resolve()) })
      for (const ws of sockets.values()) ws.terminate()
      server.closeAllConnections()
      for (const c of conns) c.destroy()
      await closed
    },
    async up () {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve() })
      })
    },
    async close () {
      for (const ws of sockets.values()) ws.terminate()
      wss.close()
      const closed = new Promise<void>((resolve) => { server.close(() => resolve()) })
      server.closeAllConnections()
      for (const c of conns) c.destroy()
      await closed
    }
  }
}

// Watches a page's WebSocket connections through the DevTools protocol, so
// the REST API module's relay connection can be identified exactly: its URL
// (and so its `id`), its handshake status and, for module 3.x, the relay's
// `auth-success` answer. Frame payloads are read for that one word and never
// kept or logged: they can carry connection tokens.
//
// The protocol does not carry close codes, and the relay's codes say why a
// connection was refused (4004: id held elsewhere; 1008: bad token). A small
// script in the page (lib/foundry/page/document.js) reports each socket's
// close code through a binding.
//
// One watcher per page, shared: the login and the session (which follows the
// module's connection for its whole life) each hold it, and it detaches when
// the last holder lets go. It listens on the page's shared DevTools session
// (lib/browser/cdp.ts), the one the request guard uses too.
import type { Page } from 'puppeteer-core'
import { holdPageCdp } from './cdp.ts'
import { pageFunction } from '../foundry/page-scripts.ts'

export interface WsConnection {
  requestId: string
  url: URL
  /** HTTP status of the upgrade response (101 when accepted). */
  status?: number
  /** The relay answered {"type":"auth-success"} (module 3.x). */
  authSucceeded: boolean
  closed: boolean
  /** Close code seen by the page, when it closed. */
  closeCode?: number
  /** When the page opened it, and when it was seen closed (epoch ms). */
  openedAt: number
  closedAt?: number
}

const BINDING = '__foundrySessionsSocketClosed'

export interface WsWatcher {
  connections: () => WsConnection[]
  /** Resolve with the first connection for which `ready` holds; rejects on timeout or abort. */
  waitFor: (ready: (c: WsConnection) => boolean, timeoutMs: number, signal?: AbortSignal) => Promise<WsConnection>
  /** Called after every change (a socket created, answered, authenticated or closed); returns the unsubscribe function. */
  onChange: (listener: () => void) => () => void
  /** Let go of this hold; the last one detaches from the page. */
  detach: () => Promise<void>
}

/** Connections kept per page: the oldest closed ones go first. */
const MAX_KEPT = 200

interface Shared { watcher: Promise<Omit<WsWatcher, 'detach'> & { release: () => Promise<void> }>, holds: number }
const shared = new WeakMap<Page, Shared>()

export class WsWaitTimeout extends Error {}

/** Hold the page's watcher (created on first use); detach() lets go of this hold. */
export async function watchWebSockets (page: Page): Promise<WsWatcher> {
  let entry = shared.get(page)
  if (entry === undefined) {
    entry = { watcher: createWatcher(page), holds: 0 }
    shared.set(page, entry)
    entry.watcher.catch(() => { if (shared.get(page) === entry) shared.delete(page) })
  }
  const held = entry
  held.holds++
  const w = await held.watcher.catch((err: unknown) => { held.holds--; throw err })
  let released = false
  return {
    connections: w.connections,
    waitFor: w.waitFor,
    onChange: w.onChange,
    async detach () {
      if (released) return
      released = true
      if (--held.holds > 0) return
      if (shared.get(page) === held) shared.delete(page)
      await w.release()
    }
  }
}

async function createWatcher (page: Page): Promise<Omit<WsWatcher, 'detach'> & { release: () => Promise<void> }> {
  const cdp = await holdPageCdp(page)
  const byId = new Map<string, WsConnection>()
  const waiters = new Set<() => void>()
  const listeners = new Set<() => void>()
  const changed = (): void => {
    for (const w of [...waiters]) w()
    for (const l of [...listeners]) { try { l() } catch {} }
  }

  cdp.on('Network.webSocketCreated', (e) => {
    let url: URL
    try { url = new URL(e.url) } catch { return }
    byId.set(e.requestId, { requestId: e.requestId, url, authSucceeded: false, closed: false, openedAt: Date.now() })
    if (byId.size > MAX_KEPT) {
      const old = [...byId.values()].find((c) => c.closed)
      if (old !== undefined) byId.delete(old.requestId)
    }
    changed()
  })
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
    const c = byId.get(e.requestId)
    if (c !== undefined) { c.status = e.response.status; changed() }
  })
  cdp.on('Network.webSocketFrameReceived', (e) => {
    const c = byId.get(e.requestId)
    if (c === undefined || c.authSucceeded || e.response.opcode !== 1) return
    const data = e.response.payloadData
    // Only small JSON messages can be the relay's auth answer.
    if (data.length > 512 || !data.includes('auth-success')) return
    try {
      if ((JSON.parse(data) as { type?: unknown }).type === 'auth-success') { c.authSucceeded = true; changed() }
    } catch {}
  })
  cdp.on('Network.webSocketClosed', (e) => {
    const c = byId.get(e.requestId)
    if (c !== undefined && !c.closed) { c.closed = true; c.closedAt = Date.now(); changed() }
  })
  try {
    await cdp.enableNetwork()
  } catch (err) {
    await cdp.release()
    throw err
  }
  await page.exposeFunction(BINDING, (url: string, code: number) => {
    // The newest connection to that URL without a code is the one that closed.
    const c = [...byId.values()].reverse().find((x) => x.url.href === url && x.closeCode === undefined)
    if (c !== undefined && Number.isInteger(code)) { c.closeCode = code; c.closed = true; c.closedAt ??= Date.now(); changed() }
  })
  await page.evaluateOnNewDocument(pageFunction('document', 'reportCloseCodes'), BINDING)

  return {
    connections: () => [...byId.values()],

    async waitFor (ready, timeoutMs, signal) {
      const find = (): WsConnection | undefined => [...byId.values()].find(ready)
      const found = find()
      if (found !== undefined) return found
      return await new Promise<WsConnection>((resolve, reject) => {
        const done = (): void => {
          clearTimeout(timer)
          waiters.delete(check)
          signal?.removeEventListener('abort', onAbort)
        }
        const check = (): void => {
          const c = find()
          if (c !== undefined) { done(); resolve(c) }
        }
        const onAbort = (): void => { done(); reject(signal?.reason ?? new Error('aborted')) }
        const timer = setTimeout(() => { done(); reject(new WsWaitTimeout(`no matching WebSocket within ${timeoutMs} ms`)) }, timeoutMs)
        waiters.add(check)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    },

    onChange (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },

    async release () {
      waiters.clear()
      listeners.clear()
      await cdp.release()
    }
  }
}

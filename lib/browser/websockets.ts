// Watches a page's WebSocket connections, so the REST API module's relay
// connection can be identified exactly: its URL (and so its `id`), whether
// its upgrade was accepted, for module 3.x the relay's `auth-success` answer,
// and its close code, which says why the relay refused it (4004: id held
// elsewhere; 1008: bad token).
//
// A small script in every document of the page (lib/foundry/page/document.js
// watchSockets) reports each socket's events through a binding. Not the
// DevTools Network domain: with it on, Chromium sends every frame of every
// socket to Node (a big world's data arrives as one frame of tens of MB, and
// every ping of Foundry's socket and the relay's follows), once for each
// session that has it on. Payloads stay in the page: a frame is only looked
// at there for that one word, and can carry connection tokens.
//
// One watcher per page, shared: the login and the session (which follows the
// module's connection for its whole life) each hold it, and it stops
// listening when the last holder lets go.
import type { Page } from 'puppeteer-core'
import { holdPageCdp } from './cdp.ts'
import { pageFunction } from '../foundry/page-scripts.ts'

export interface WsConnection {
  /** The page's id of the socket (unique across the page's documents). */
  requestId: string
  url: URL
  /** 101 once the upgrade was accepted (the page saw it open); unset before, and when it never was. */
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

const BINDING = '__foundrySessionsSocket'

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
  const byId = new Map<string, WsConnection>()
  const waiters = new Set<() => void>()
  const listeners = new Set<() => void>()
  const changed = (): void => {
    for (const w of [...waiters]) w()
    for (const l of [...listeners]) { try { l() } catch {} }
  }
  /** The execution context (the document) of each socket still open. */
  const contextOf = new Map<WsConnection, number>()
  const close = (c: WsConnection, code?: unknown): void => {
    c.closed = true
    c.closedAt = Date.now()
    if (typeof code === 'number' && Number.isInteger(code)) c.closeCode = code
    contextOf.delete(c)
  }
  const onSocket = (context: number, event: unknown, id: unknown, href: unknown, code: unknown): void => {
    if (typeof id !== 'string' || typeof href !== 'string') return
    if (event === 'created') {
      let url: URL
      try { url = new URL(href) } catch { return }
      const c: WsConnection = { requestId: id, url, authSucceeded: false, closed: false, openedAt: Date.now() }
      byId.set(id, c)
      contextOf.set(c, context)
      if (byId.size > MAX_KEPT) {
        const old = [...byId.values()].find((c) => c.closed)
        if (old !== undefined) byId.delete(old.requestId)
      }
      changed()
      return
    }
    const c = byId.get(id)
    if (c === undefined) return
    if (event === 'open' && !c.closed) c.status = 101
    else if (event === 'auth' && !c.closed) c.authSucceeded = true
    else if (event === 'close' && !c.closed) close(c, code)
    else return
    changed()
  }
  /** A document went (a navigation, a reload, the fleet lease's about:blank): its sockets with it, without a close code. */
  const contextGone = (context: number | null): void => {
    const gone = [...contextOf].filter(([, ctx]) => context === null || ctx === context)
    for (const [c] of gone) close(c)
    if (gone.length > 0) changed()
  }
  // A binding of the DevTools protocol on the page's shared session (the
  // Runtime domain on: it installs bindings, and says when a document's
  // context goes): each call is one small event, with its document.
  const cdp = await holdPageCdp(page)
  cdp.on('Runtime.bindingCalled', (e) => {
    if (e.name !== BINDING) return
    let args: unknown
    try { args = JSON.parse(e.payload) } catch { return }
    if (Array.isArray(args)) onSocket(e.executionContextId, args[0], args[1], args[2], args[3])
  })
  cdp.on('Runtime.executionContextDestroyed', (e) => { contextGone(e.executionContextId) })
  cdp.on('Runtime.executionContextsCleared', () => { contextGone(null) })
  try {
    await cdp.session.send('Runtime.addBinding', { name: BINDING })
    await cdp.session.send('Runtime.enable')
    await page.evaluateOnNewDocument(pageFunction('document', 'watchSockets'), BINDING)
  } catch (err) {
    await cdp.release()
    throw err
  }

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
      // Its listeners on the shared session go with the hold.
      waiters.clear()
      listeners.clear()
      await cdp.release()
    }
  }
}

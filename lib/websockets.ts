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
import type { CDPSession, Page } from 'puppeteer-core'
import { pageFunction } from './foundry/page-scripts.js'

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
}

const BINDING = '__foundrySessionsSocketClosed'

export interface WsWatcher {
  connections: () => WsConnection[]
  /** Resolve with the first connection for which `ready` holds; rejects on timeout or abort. */
  waitFor: (ready: (c: WsConnection) => boolean, timeoutMs: number, signal?: AbortSignal) => Promise<WsConnection>
  detach: () => Promise<void>
}

export class WsWaitTimeout extends Error {}

export async function watchWebSockets (page: Page): Promise<WsWatcher> {
  const cdp: CDPSession = await page.createCDPSession()
  const byId = new Map<string, WsConnection>()
  const waiters = new Set<() => void>()
  const changed = (): void => { for (const w of waiters) w() }

  cdp.on('Network.webSocketCreated', (e) => {
    let url: URL
    try { url = new URL(e.url) } catch { return }
    byId.set(e.requestId, { requestId: e.requestId, url, authSucceeded: false, closed: false })
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
    if (c !== undefined) { c.closed = true; changed() }
  })
  await cdp.send('Network.enable')
  await page.exposeFunction(BINDING, (url: string, code: number) => {
    // The newest connection to that URL without a code is the one that closed.
    const c = [...byId.values()].reverse().find((x) => x.url.href === url && x.closeCode === undefined)
    if (c !== undefined && Number.isInteger(code)) { c.closeCode = code; c.closed = true; changed() }
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

    async detach () {
      waiters.clear()
      try { await cdp.detach() } catch {}
    }
  }
}

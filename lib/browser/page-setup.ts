// Per-session page tuning: what a headless Gamemaster's page never needs.
// Applied once to a fresh page, before the login navigates anywhere. No
// Fastify here. Measured effects are in docs/benchmarks.md.
//
// Request interception lives in this file only (see `intercept`). It uses
// the DevTools protocol's Fetch domain on the page's DevTools session that
// the service shares between its users (lib/browser/cdp.ts), with
// patterns by resource type: requests of other types (documents, scripts,
// XHR, WebSockets) never stop in Node, and the page's HTTP cache stays on
// (puppeteer's setRequestInterception would pause every request and turn the
// cache off). A URL check (`allowRequest`) switches to pausing every request.
import type { Page } from 'puppeteer-core'
import { holdPageCdp } from './cdp.js'
import { pageFunction } from '../foundry/page-scripts.js'

/** Resource types that can be blocked: all are decoration for a headless GM. */
export const BLOCKABLE = ['image', 'media', 'font'] as const
export type BlockableResource = typeof BLOCKABLE[number]

export interface PageSetupOptions {
  /**
   * Resource types answered with a network error instead of loaded. Foundry
   * and the REST API module work on documents, scripts, JSON and sockets;
   * images, audio/video and web fonts only cost download, decode and memory.
   */
  blockResources: readonly BlockableResource[]
  /**
   * Set Foundry's client setting `core.noCanvas` before any page script:
   * Foundry then skips WebGL/PIXI and scene rendering (`canvas.ready` stays
   * false, `game.ready` still turns true). Module requests that need the
   * canvas (selecting or controlling tokens on the scene) then fail.
   */
  noCanvas: boolean
  /**
   * A URL check for every request the page makes (security work plugs its
   * URL policy in here). Returning false fails the request as blocked.
   */
  allowRequest?: (url: URL) => boolean | Promise<boolean>
  /**
   * A check of the address Chromium actually connected to, for every
   * response (DNS rebinding: Chromium resolves names itself). At the first
   * refused one the page is closed and every later request is failed.
   */
  allowAddress?: (ip: string) => boolean
}

export const DEFAULT_PAGE_SETUP: PageSetupOptions = { blockResources: [...BLOCKABLE], noCanvas: true }

/** Parse a comma/space-separated list such as PAGE_BLOCK_RESOURCES ('' or 'none' → nothing). */
export function parseBlockResources (list: string): BlockableResource[] {
  const out = new Set<BlockableResource>()
  for (const raw of list.split(/[\s,]+/)) {
    const t = raw.trim().toLowerCase()
    if (t === '' || t === 'none') continue
    if (!(BLOCKABLE as readonly string[]).includes(t)) {
      throw new Error(`unknown resource type "${raw}" (use ${BLOCKABLE.join(', ')} or none)`)
    }
    out.add(t as BlockableResource)
  }
  return [...out]
}

// CDP resource type names (Network.ResourceType).
const CDP_TYPE: Record<BlockableResource, string> = { image: 'Image', media: 'Media', font: 'Font' }

export interface PreparedPage {
  /** Requests failed by this setup so far (blocked type or refused URL). */
  blocked: () => number
  /** A response came from an address allowAddress refused: the page is being closed. */
  refused: () => boolean
  /** Stop intercepting (the page's close does it too). */
  detach: () => Promise<void>
}

/** Tune a fresh page for a headless Foundry GM. Call before the first navigation. */
export async function preparePage (page: Page, opts: PageSetupOptions): Promise<PreparedPage> {
  if (opts.noCanvas) {
    await page.evaluateOnNewDocument(pageFunction('document', 'setNoCanvas'))
  }
  const guard: GuardState = { refused: false, deciding: 0, lastPausedAt: 0 }
  if (opts.allowAddress !== undefined) {
    const allowAddress = opts.allowAddress
    page.on('response', (res) => {
      const ip = res.remoteAddress().ip
      if (guard.refused || ip === undefined || ip === '' || allowAddress(ip)) return
      guard.refused = true
      void closeRefusedPage(page, guard)
    })
  }
  const cdp = await intercept(page, opts, guard)
  let blocked = 0
  return {
    blocked: () => cdp?.count() ?? blocked,
    refused: () => guard.refused,
    async detach () {
      if (cdp !== null) { blocked = cdp.count(); await cdp.detach() }
    }
  }
}

/** URL-check state shared by the response watcher and the interceptor. */
interface GuardState {
  /** A response came from a refused address: fail every request from now on. */
  refused: boolean
  /** Paused requests whose allowRequest answer, or whose failRequest, is still awaited. */
  deciding: number
  /** When the last request was paused (ms, performance.now()). */
  lastPausedAt: number
}

/**
 * Close a page whose response came from a refused address. Every request it
 * makes is failed from now on; but closing releases the requests still
 * paused in the Fetch domain (Chromium lets a detaching client's paused
 * requests go, a redirect hop included). So the page first navigates to
 * about:blank, which cancels them with its document, scripts and sockets,
 * and only then closes. The about:blank navigation aborts whatever
 * navigation was under way, and its owner (the login) may go again at once:
 * that request is paused and failed, so the page closes only once no
 * request was paused for 50 ms and every failRequest has been answered
 * (else the close releases it). Target.closeTarget sent while a navigation
 * commits is dropped by Chromium (the page stays open), so ask again every
 * 100 ms until it is closed (5 s at most).
 */
async function closeRefusedPage (page: Page, guard: GuardState): Promise<void> {
  const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
  const settled = async (): Promise<void> => {
    for (let i = 0; i < 100 && (guard.deciding > 0 || performance.now() - guard.lastPausedAt < 50); i++) await sleep(10)
  }
  await settled()
  await page.goto('about:blank', { timeout: 5000 }).catch(() => {})
  for (let i = 0; i < 50 && !page.isClosed(); i++) {
    await settled()
    void page.close().catch(() => {})
    await sleep(100)
  }
}

/** The one place that intercepts requests. Null when nothing needs intercepting. */
async function intercept (page: Page, opts: PageSetupOptions, guard: GuardState): Promise<{ count: () => number, detach: () => Promise<void> } | null> {
  const block = new Set(opts.blockResources.map((t) => CDP_TYPE[t]))
  const { allowRequest } = opts
  if (block.size === 0 && allowRequest === undefined) return null
  const held = await holdPageCdp(page)
  const cdp = held.session
  let count = 0
  const fail = (requestId: string): void => {
    count++
    guard.deciding++
    cdp.send('Fetch.failRequest', { requestId, errorReason: 'BlockedByClient' }).catch(() => {}).finally(() => { guard.deciding-- })
  }
  held.on('Fetch.requestPaused', (e) => {
    guard.lastPausedAt = performance.now()
    if (block.has(e.resourceType)) { fail(e.requestId); return }
    if (allowRequest === undefined) {
      cdp.send('Fetch.continueRequest', { requestId: e.requestId }).catch(() => {})
      return
    }
    let url: URL
    if (guard.refused) { fail(e.requestId); return }
    try { url = new URL(e.request.url) } catch { fail(e.requestId); return }
    guard.deciding++
    Promise.resolve()
      .then(async () => await allowRequest(url))
      .then((ok) => {
        if (ok && !guard.refused) cdp.send('Fetch.continueRequest', { requestId: e.requestId }).catch(() => {})
        else fail(e.requestId)
      }, () => { fail(e.requestId) })
      .finally(() => { guard.deciding-- })
  })
  const patterns = allowRequest !== undefined
    ? [{ urlPattern: '*', requestStage: 'Request' as const }]
    : [...block].map((resourceType) => ({ urlPattern: '*', resourceType: resourceType as 'Image', requestStage: 'Request' as const }))
  await cdp.send('Fetch.enable', { patterns })
  if (allowRequest !== undefined) {
    // WebSocket handshakes never pause in the Fetch domain: check each
    // socket's URL as it is created, on the same session, and treat a
    // refused one like a refused address (the page is closed). The handshake
    // itself may already be on its way.
    held.on('Network.webSocketCreated', (e) => {
      Promise.resolve()
        .then(async () => await allowRequest(new URL(e.url)))
        .catch(() => false)
        .then((ok) => {
          if (ok || guard.refused) return
          guard.refused = true
          void closeRefusedPage(page, guard)
        }, () => {})
    })
    await held.enableNetwork()
  }
  return {
    count: () => count,
    async detach () {
      await cdp.send('Fetch.disable').catch(() => {})
      await held.release()
    }
  }
}

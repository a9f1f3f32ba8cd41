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
// cache off). Where the page may connect to is not decided here: every
// connection of the browser goes through the egress gate (egress.ts).
import type { Page } from 'puppeteer-core'
import { holdPageCdp } from './cdp.ts'
import { pageFunction } from '../foundry/page-scripts.ts'

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
  /** Requests failed by this setup so far (a blocked resource type). */
  blocked: () => number
  /** Stop intercepting (the page's close does it too). */
  detach: () => Promise<void>
}

/** Tune a fresh page for a headless Foundry GM. Call before the first navigation. */
export async function preparePage (page: Page, opts: PageSetupOptions): Promise<PreparedPage> {
  if (opts.noCanvas) {
    await page.evaluateOnNewDocument(pageFunction('document', 'setNoCanvas'))
  }
  const cdp = await intercept(page, opts)
  let blocked = 0
  return {
    blocked: () => cdp?.count() ?? blocked,
    async detach () {
      if (cdp !== null) { blocked = cdp.count(); await cdp.detach() }
    }
  }
}

/** The one place that intercepts requests. Null when nothing needs intercepting. */
async function intercept (page: Page, opts: PageSetupOptions): Promise<{ count: () => number, detach: () => Promise<void> } | null> {
  const block = new Set(opts.blockResources.map((t) => CDP_TYPE[t]))
  if (block.size === 0) return null
  const held = await holdPageCdp(page)
  const cdp = held.session
  let count = 0
  held.on('Fetch.requestPaused', (e) => {
    if (block.has(e.resourceType)) {
      count++
      cdp.send('Fetch.failRequest', { requestId: e.requestId, errorReason: 'BlockedByClient' }).catch(() => {})
      return
    }
    cdp.send('Fetch.continueRequest', { requestId: e.requestId }).catch(() => {})
  })
  const patterns = [...block].map((resourceType) => ({ urlPattern: '*', resourceType: resourceType as 'Image', requestStage: 'Request' as const }))
  await cdp.send('Fetch.enable', { patterns })
  return {
    count: () => count,
    async detach () {
      await cdp.send('Fetch.disable').catch(() => {})
      await held.release()
    }
  }
}

// One DevTools session of our own per page, shared by everything in the
// service that talks to the page over the protocol: resource blocking
// (lib/browser/page-setup.ts, the Fetch domain) and the WebSocket watcher
// (lib/browser/websockets.ts, a Runtime binding). Neither turns the Network
// domain on: each session that has it on gets every network event of the
// page again (every WebSocket frame, a big world's data included, every
// ping) and sends it to Node over the same pipe, and puppeteer's own
// session has it on already. No Fastify here.
//
// The session is created on the first hold and detached when the last
// holder lets go (or with the page). Each holder adds its own listeners
// through `on`, and they are removed when it lets go.
import type { CDPEvents, CDPSession, Page } from 'puppeteer-core'

export interface PageCdp {
  /** The shared session: send commands on it (listen through `on`). */
  readonly session: CDPSession
  /** Listen to an event of the shared session until this hold ends. */
  on: <K extends keyof CDPEvents>(event: K, listener: (e: CDPEvents[K]) => void) => void
  /** Let go of this hold: its listeners go, and the last hold detaches the session. */
  release: () => Promise<void>
}

interface Shared { session: Promise<CDPSession>, holds: number }
const shared = new WeakMap<Page, Shared>()

/** Hold the page's shared DevTools session (created on first use). */
export async function holdPageCdp (page: Page): Promise<PageCdp> {
  let entry = shared.get(page)
  if (entry === undefined) {
    const created: Shared = { session: page.createCDPSession(), holds: 0 }
    entry = created
    shared.set(page, created)
    created.session.catch(() => { if (shared.get(page) === created) shared.delete(page) })
  }
  const held = entry
  held.holds++
  let session: CDPSession
  try {
    session = await held.session
  } catch (err) {
    held.holds--
    throw err
  }
  const listeners: Array<() => void> = []
  let released = false
  return {
    session,
    on (event, listener) {
      if (released) return
      session.on(event, listener)
      listeners.push(() => { session.off(event, listener) })
    },
    async release () {
      if (released) return
      released = true
      for (const off of listeners) off()
      listeners.length = 0
      if (--held.holds > 0) return
      if (shared.get(page) === held) shared.delete(page)
      await session.detach().catch(() => {})
    }
  }
}

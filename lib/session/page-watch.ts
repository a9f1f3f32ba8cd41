// Watching a logged-in session's page: navigation, crash or close that loses
// the login, the REST API module's relay connection (read by module-watch.ts
// from the page's WebSockets), and bringing the module back: once it has
// been quiet long enough after a close a reload cures, probe its relay and,
// when it answers, tell the machine (which answers with reload-game).
import type { Page } from 'puppeteer-core'
import { foundryBase } from '../foundry/index.ts'
import { pageFunction } from '../foundry/page-scripts.ts'
import http from 'node:http'
import https from 'node:https'
import type { EgressSession } from '../browser/egress.ts'
import { lifecycleOf, type Entry, type Timers } from './entry.ts'
import { moduleNeedsRevival, type MachineConfig, type MachineEvent } from './machine.ts'
import { moduleView, relayProbeUrl } from './module-watch.ts'

export interface PageWatchDeps {
  dispatch: (entry: Entry, event: MachineEvent) => Promise<void>
  now: () => number
  timers: Timers
  machine: MachineConfig
  /** How long a reloaded game page may take to get ready. */
  gameReadyMs: number
  /** The session's egress gate port: the relay probe goes out under the same check, to the same pinned address. */
  egressOf?: (entry: Entry) => EgressSession | undefined
}

export interface PageWatch {
  /** Watch an active session's page for anything that loses the login, and its module's relay connection. */
  watch: (entry: Entry, page: Page) => void
  /** (Re)arm the revival check after the module's state changed; clears it when not needed. */
  scheduleRevival: (entry: Entry) => void
}

export function createPageWatch (deps: PageWatchDeps): PageWatch {
  const { dispatch, now, timers, machine } = deps

  function watch (entry: Entry, page: Page): void {
    const base = foundryBase(entry.options.foundryUrl)
    const gamePath = new URL('game', base).pathname
    const joinPath = new URL('join', base).pathname
    const lost = (reason: string, loggedOut = false): void => {
      if (entry.page === page) void dispatch(entry, { type: 'login-lost', reason, loggedOut })
    }
    const ws = entry.ws
    if (ws !== null) {
      const relay = { relayUrl: '', clientId: entry.session.clientId }
      const follow = (): void => {
        if (entry.page !== page || entry.ws !== ws) return
        const view = moduleView(ws.connections(), relay)
        if (view !== null) void dispatch(entry, { type: 'module', ...view })
      }
      ws.onChange(follow)
      follow()
    }
    page.on('framenavigated', (frame) => {
      if (frame !== page.mainFrame() || entry.page !== page || entry.session.status !== 'active') return
      let path = ''
      try { path = new URL(frame.url()).pathname } catch {}
      if (path === joinPath) {
        lost('Foundry logged the page out and sent it to /join (server restarted, session expired, or another login of the same user replaced this one)', true)
        return
      }
      if (path !== gamePath) {
        lost(`Foundry sent the page to ${path === '' ? 'another site' : path} (world shut down, server restarted or connection lost)`)
        return
      }
      // Foundry reloads /game after a long disconnect: it must get ready again.
      page.waitForFunction(pageFunction('game', 'ready'), { timeout: deps.gameReadyMs, polling: 250 })
        .catch(() => {
          if (entry.session.status === 'active') lost('Foundry reloaded the game page and it did not get ready again')
        })
    })
    page.once('error', () => { lost('the session\'s page crashed') })
    page.once('close', () => { lost('the session\'s page closed') })
  }

  /** While the module is down for a reason a reload cures, check (and probe its relay) once it has been quiet long enough. */
  function scheduleRevival (entry: Entry): void {
    const m = entry.session.module
    if (entry.reviveTimer !== null) { timers.clearTimeout(entry.reviveTimer); entry.reviveTimer = null }
    if (entry.session.status !== 'active' || m === null || m.connected || !m.revivable) return
    const delay = Math.max(0, m.lastSeenAt + machine.moduleReviveAfterMs - now())
    entry.reviveTimer = timers.setTimeout(() => {
      entry.reviveTimer = null
      void reviveCheck(entry)
    }, delay)
    entry.reviveTimer.unref()
  }

  async function reviveCheck (entry: Entry): Promise<void> {
    if (!moduleNeedsRevival(lifecycleOf(entry.session), now(), machine) || entry.ws === null) return
    const url = relayProbeUrl(entry.ws.connections(), { relayUrl: '', clientId: entry.session.clientId })
    if (url !== null && await relayAnswers(url, deps.egressOf?.(entry))) {
      await dispatch(entry, { type: 'relay-back' })
      return
    }
    // Not yet: look again in a while.
    if (entry.reviveTimer !== null || !moduleNeedsRevival(lifecycleOf(entry.session), now(), machine)) return
    entry.reviveTimer = timers.setTimeout(() => {
      entry.reviveTimer = null
      void reviveCheck(entry)
    }, Math.min(machine.moduleReviveAfterMs, 5000))
    entry.reviveTimer.unref()
  }

  /**
   * Whether the relay answers HTTP at all (any status). With a gate, its
   * host is resolved and checked once by the gate (the URL policy and lists)
   * and the probe connects to that address; without one (no session
   * browser context) it is not probed.
   */
  async function relayAnswers (url: URL, gate: EgressSession | undefined): Promise<boolean> {
    if (gate === undefined) return false
    const pinned = await gate.pin(url.hostname, Number(url.port !== '' ? url.port : url.protocol === 'https:' || url.protocol === 'wss:' ? 443 : 80))
    if (!pinned.ok) return false
    return await new Promise<boolean>((resolve) => {
      const get = url.protocol === 'https:' ? https.get : http.get
      const req = get(url, { lookup: pinned.lookup, agent: false, timeout: 3000 }, (res) => {
        res.resume()
        resolve(true)
        req.destroy()
      })
      req.on('timeout', () => { req.destroy() })
      req.on('error', () => { resolve(false) })
    })
  }

  return { watch, scheduleRevival }
}

// One Chromium process; each session gets its own browser context (own
// cookie jar and localStorage). Chromium is relaunched when it dies, one
// launch at a time. No Fastify here.
import type { Browser, BrowserContext } from 'puppeteer-core'
import { launchChromium, resolveChromium, type ChromiumLaunchOptions, type ResolvedChromium } from './chromium.js'
import { BrowserUnavailable, ServiceClosing } from '../errors.js'
import type { Logger } from '../logger.js'

export interface BrowserPoolOptions extends ChromiumLaunchOptions {
  /** Logins allowed to run at once. */
  maxConcurrentLogins: number
  log: Logger
}

export interface PoolHealth {
  ok: boolean
  chromium: 'running' | 'launching' | 'down' | 'closed'
  version: string | null
  contexts: number
  loginsRunning: number
  maxConcurrentLogins: number
  lastError: string | null
}

export interface BrowserPool {
  /** Launch Chromium now (otherwise it starts with the first context). */
  start: () => Promise<void>
  /** A fresh, isolated browser context. */
  newContext: () => Promise<BrowserContext>
  /** Reserve a login slot; returns its release function, or null when all are taken. */
  tryAcquireLogin: () => (() => void) | null
  /** Called with every context of a Chromium that died. */
  onBrowserLost: (fn: (contexts: BrowserContext[]) => void) => void
  health: () => PoolHealth
  /** The Chromium process id (tests count its children). */
  pid: () => number | null
  close: () => Promise<void>
}

export function createBrowserPool (opts: BrowserPoolOptions): BrowserPool {
  const { log } = opts
  let resolved: ResolvedChromium | undefined
  let browser: Browser | undefined
  let launching: Promise<Browser> | undefined
  let version: string | null = null
  let lastError: string | null = null
  let closing = false
  let loginsRunning = 0
  const contexts = new Set<BrowserContext>()
  const lostListeners: Array<(contexts: BrowserContext[]) => void> = []

  async function launch (): Promise<Browser> {
    resolved ??= await resolveChromium(opts)
    const b = await launchChromium(resolved)
    // Chromium opens an about:blank tab in its default context; sessions
    // never use it, and its renderer costs ~16 MB PSS for nothing.
    for (const p of await b.pages()) await p.close().catch(() => {})
    version = await b.version()
    b.once('disconnected', () => {
      if (browser === b) browser = undefined
      const lost = [...contexts]
      contexts.clear()
      if (closing) return
      log.warn({ lostContexts: lost.length }, 'Chromium disconnected; the next session relaunches it')
      for (const fn of lostListeners) {
        try { fn(lost) } catch (err) { log.error({ err }, 'browser-lost listener failed') }
      }
    })
    log.info({ chromiumPid: b.process()?.pid, version }, 'Chromium started')
    return b
  }

  async function getBrowser (): Promise<Browser> {
    if (closing) throw new ServiceClosing()
    if (browser?.connected === true) return browser
    // One launch at a time: concurrent callers share it.
    launching ??= launch().then((b) => {
      if (closing) {
        void b.close().catch(() => {})
        throw new ServiceClosing()
      }
      browser = b
      lastError = null
      return b
    }, (err: Error) => {
      lastError = err.message
      log.error({ err }, 'Chromium failed to start')
      throw new BrowserUnavailable(err.message)
    }).finally(() => { launching = undefined })
    return await launching
  }

  return {
    async start () { await getBrowser() },

    async newContext () {
      const b = await getBrowser()
      const ctx = await b.createBrowserContext()
      contexts.add(ctx)
      const close = ctx.close.bind(ctx)
      // Keep the set exact however the context is closed.
      ctx.close = async () => {
        contexts.delete(ctx)
        await close()
      }
      return ctx
    },

    tryAcquireLogin () {
      if (closing || loginsRunning >= opts.maxConcurrentLogins) return null
      loginsRunning++
      let released = false
      return () => {
        if (!released) { released = true; loginsRunning-- }
      }
    },

    onBrowserLost (fn) { lostListeners.push(fn) },

    health () {
      const state = closing
        ? 'closed'
        : browser?.connected === true ? 'running' : launching !== undefined ? 'launching' : 'down'
      return {
        // A pool whose Chromium is down can still serve: the next session
        // relaunches it. It cannot when the last launch failed.
        ok: !closing && (state !== 'down' || lastError === null),
        chromium: state,
        version,
        contexts: contexts.size,
        loginsRunning,
        maxConcurrentLogins: opts.maxConcurrentLogins,
        lastError
      }
    },

    pid: () => browser?.process()?.pid ?? null,

    async close () {
      closing = true
      const b = browser ?? await launching?.catch(() => undefined)
      for (const ctx of [...contexts]) {
        try { await ctx.close() } catch {}
      }
      contexts.clear()
      if (b !== undefined) {
        try { await b.close() } catch (err) {
          log.warn({ err }, 'Chromium did not close cleanly; killing it')
          b.process()?.kill('SIGKILL')
        }
      }
      browser = undefined
    }
  }
}

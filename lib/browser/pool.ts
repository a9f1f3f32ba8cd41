// One Chromium process; each session gets its own browser context (own
// cookie jar and localStorage) and, with an egress gate, its own proxy port
// on the gate (every connection of the browser leaves through the gate:
// egress.ts). Chromium is relaunched when it dies, one launch at a time. No
// Fastify here.
import type { Browser, BrowserContext } from 'puppeteer-core'
import { EGRESS_BYPASS, egressArgs, launchChromium, resolveChromium, type ChromiumLaunchOptions, type ResolvedChromium } from './chromium.ts'
import type { EgressGate, EgressSession } from './egress.ts'
import { BrowserUnavailable, ServiceClosing } from '../errors.ts'
import type { Logger } from '../logger.ts'

export interface BrowserPoolOptions extends ChromiumLaunchOptions {
  /** Logins allowed to run at once. */
  maxConcurrentLogins: number
  log: Logger
  /**
   * The egress gate every connection of the browser goes through (the
   * service always has one; browser-only tests may go without). The pool
   * does not close it: its owner does, after the pool.
   */
  egress?: EgressGate | undefined
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
  /**
   * A fresh, isolated browser context; with an egress gate, on a proxy
   * port of its own named `label` (the session id) in the gate's logs and
   * counts; `foundryUrl` is the session's Foundry (not refused as the
   * service's own port). Closing the context closes its port.
   */
  newContext: (label?: string, opts?: { foundryUrl?: string }) => Promise<BrowserContext>
  /** The gate's session of a context made by newContext (undefined without a gate). */
  egressOf: (ctx: BrowserContext) => EgressSession | undefined
  /** Reserve a login slot; returns its release function, or null when all are taken. */
  tryAcquireLogin: () => (() => void) | null
  /** Called with every context of a Chromium that died. */
  onBrowserLost: (fn: (contexts: BrowserContext[]) => void) => void
  health: () => PoolHealth
  /** The Chromium process id (tests count its children). */
  pid: () => number | null
  /** Page targets (tabs) open in Chromium now, every context counted (0 while it is not running). */
  pages: () => number
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
  const egress = new WeakMap<BrowserContext, EgressSession>()
  const lostListeners: Array<(contexts: BrowserContext[]) => void> = []
  const disconnected = new WeakMap<Browser, Promise<void>>()
  /** Resolves once this Chromium is disconnected. */
  const gone = (b: Browser): Promise<void> => disconnected.get(b) ?? Promise.resolve()

  async function launch (): Promise<Browser> {
    resolved ??= await resolveChromium(opts)
    // The gate's flags come last, after CHROMIUM_ARGS: they cannot be undone by them.
    const b = await launchChromium(opts.egress === undefined
      ? resolved
      : { ...resolved, args: [...resolved.args, ...egressArgs(opts.egress.browserProxy)] })
    // Chromium opens an about:blank tab in its default context; sessions
    // never use it, and its renderer costs ~16 MB PSS for nothing.
    for (const p of await b.pages()) await p.close().catch(() => {})
    version = await b.version()
    disconnected.set(b, new Promise((resolve) => { b.once('disconnected', () => { resolve() }) }))
    b.once('disconnected', () => {
      if (browser === b) browser = undefined
      const lost = [...contexts]
      contexts.clear()
      for (const c of lost) void egress.get(c)?.close()
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

    async newContext (label = 'context', ctxOpts = {}) {
      const b = await getBrowser()
      const gate = opts.egress !== undefined ? await opts.egress.open(label, ctxOpts) : undefined
      let ctx: BrowserContext
      try {
        ctx = await b.createBrowserContext(gate !== undefined ? { proxyServer: gate.proxyServer, proxyBypassList: EGRESS_BYPASS } : {})
      } catch (err) {
        await gate?.close()
        throw err
      }
      contexts.add(ctx)
      if (gate !== undefined) egress.set(ctx, gate)
      // A context disposed between puppeteer's Target.createTarget and the
      // target's attachment leaves newPage waiting for a target that never
      // comes, with a 30 s timer that holds the process open: close lets a
      // page being made arrive first (milliseconds), or Chromium go.
      const making = new Set<Promise<void>>()
      const newPage = ctx.newPage.bind(ctx)
      ctx.newPage = async (...args) => {
        const page = newPage(...args)
        const settled = page.then(() => {}, () => {})
        making.add(settled)
        void settled.then(() => making.delete(settled))
        return await page
      }
      const close = ctx.close.bind(ctx)
      // Keep the set exact however the context is closed; its gate port goes with it.
      ctx.close = async () => {
        contexts.delete(ctx)
        if (making.size > 0) await Promise.race([Promise.all(making), gone(b)])
        try { await close() } finally { await gate?.close() }
      }
      return ctx
    },

    egressOf: (ctx) => egress.get(ctx),

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

    pages: () => browser?.connected === true ? browser.targets().filter((t) => t.type() === 'page').length : 0,

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

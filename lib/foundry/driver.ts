// One login's state and the tools every page module uses: which Foundry
// route the browser is on, the current stage (for error context), page loads,
// calls into the page scripts (./page/*.js) and bounded waits on them, and
// the translation of puppeteer's failures into client-facing errors. Knows
// no Foundry page; those are in reach.ts, setup.ts, players.ts, join.ts,
// game.ts and module-connection.ts.
import type { Frame, HTTPRequest, HTTPResponse, Page } from 'puppeteer-core'
import {
  FLEET_RETRY_AFTER_S, FleetCutOff, FoundryError, FoundryTimeout, FoundryTlsError, FoundryUnreachable, FoundryUrlRefused, LoginLost,
  SessionCancelled, withContext, type ServiceError
} from '../errors.ts'
import type { WsWatcher } from '../browser/websockets.ts'
import { chromiumNetError, egressTarget, type EgressReason } from '../browser/egress.ts'
import { foundryBase } from './names.ts'
import { pageFunction, type PageScript } from './page-scripts.ts'
import type { PageArgs, PageFn, PageResult } from './page-api.ts'
import type { LoginOptions, LoginParams, Stage } from './types.ts'

/**
 * Longest single waitForFunction: each is one protocol call, which the
 * browser connection cuts off at its protocolTimeout (60 s, lib/browser/chromium.ts).
 * Longer waits (game-ready 120 s, world launch 180 s) are slices of this.
 */
const WAIT_SLICE_MS = 20_000

const STAGE_WHAT: Record<Stage, string> = {
  reach: 'reaching Foundry',
  'admin-auth': 'passing Foundry\'s administrator login',
  'world-launch': 'launching the world',
  join: 'joining the world',
  'game-load': 'loading the game',
  'module-connection': 'waiting for the REST API module to connect'
}

/** Foundry's page routes this driver knows (without a route prefix). */
export type Route = '/license' | '/auth' | '/players' | '/setup' | '/join' | '/game'
export const KNOWN_ROUTES: ReadonlySet<string> = new Set<Route>(['/setup', '/auth', '/join', '/license', '/players', '/game'])

export interface FoundryStatus { active?: boolean, version?: string, world?: string }

export interface Wait { timeout: number, what: string, stayOn?: string, polling?: number }

export class Driver {
  stage: Stage = 'reach'
  readonly base: URL
  ws: WsWatcher | undefined
  /** /auth was submitted once already: seeing it again means the password was refused. */
  adminAuthTried = false
  /** A page of Foundry was loaded: about:blank from then on is the fleet lease's doing (./page/game.js `lease`). */
  private loaded = false
  /**
   * The main frame's last navigation request (Foundry's URL, a redirect it
   * followed, a page's own navigation): its host:port as the egress gate
   * names it, and the HTTP status it was answered with (null: none yet, or
   * it failed).
   */
  private navigation: { request: HTTPRequest, target: string, status: number | null } | null = null

  readonly page: Page
  readonly params: LoginParams
  readonly opts: LoginOptions

  constructor (page: Page, params: LoginParams, opts: LoginOptions) {
    this.page = page
    this.params = params
    this.opts = opts
    this.base = foundryBase(params.foundryUrl)
  }

  /** Follow the main frame's navigation requests, each redirect hop one (refusedNavigation); returns the function that stops. */
  watchNavigations (): () => void {
    const onRequest = (req: HTTPRequest): void => {
      const frame = req.frame()
      if (!req.isNavigationRequest() || frame === null || frame.parentFrame() !== null) return
      const target = egressTarget(req.url())
      this.navigation = target === undefined ? null : { request: req, target, status: null }
    }
    const onResponse = (res: HTTPResponse): void => {
      const nav = this.navigation
      if (nav !== null && res.request() === nav.request) nav.status = res.status()
    }
    this.page.on('request', onRequest)
    this.page.on('response', onResponse)
    return () => {
      this.page.off('request', onRequest)
      this.page.off('response', onResponse)
    }
  }

  /**
   * Whether the egress gate refused the main frame's last navigation, and
   * why: the request got no answer (a refused https tunnel) or the gate's
   * own 403 (plain http), and the gate's last word on its host:port was a
   * refusal. Only this refusal is the login's: a page's scripts and
   * sub-resources the gate refuses never are.
   */
  refusedNavigation (): { target: string, reason: EgressReason } | undefined {
    const nav = this.navigation
    if (nav === null || (nav.status !== null && nav.status !== 403)) return undefined
    const reason = this.opts.refusal?.(nav.target)
    return reason === undefined ? undefined : { target: nav.target, reason }
  }

  enter (stage: Stage): void {
    this.stage = stage
    this.opts.onStage?.(stage, this.route())
  }

  checkAborted (): void {
    if (this.opts.signal?.aborted === true) throw new SessionCancelled()
  }

  /** The Foundry route of the current page ('/join'), without any route prefix; null off-site. */
  route (): string | null {
    return this.routeOf(this.page.url())
  }

  routeOf (href: string): string | null {
    let url: URL
    try { url = new URL(href) } catch { return null }
    if (url.origin !== this.base.origin) return null
    const prefix = this.base.pathname
    const path = url.pathname.endsWith('/') && url.pathname.length > 1 ? url.pathname.slice(0, -1) : url.pathname
    if (!(path + '/').startsWith(prefix)) return null
    return '/' + path.slice(prefix.length)
  }

  /** Absolute URL of a Foundry route ('join' → <base>join). */
  url (route: string): string {
    return new URL(route.replace(/^\/+/, ''), this.base).href
  }

  /** The path of Foundry's own socket.io connection (<prefix>/socket.io/). */
  socketPath (): string {
    return new URL('socket.io/', this.base).pathname
  }

  pagePath (): string | null {
    try { return new URL(this.page.url()).pathname } catch { return null }
  }

  what (): string {
    return STAGE_WHAT[this.stage]
  }

  fail (E: new (msg: string) => Error, message: string): ServiceError {
    // Foundry never sends a browser to about:blank; the fleet lease does, when
    // this machine's heartbeat to Redis came late (a stall or a cut): say so,
    // not that Foundry lost the login.
    if (this.loaded && this.page.url() === 'about:blank') {
      return withContext(new FleetCutOff(`This machine's fleet lease ran out while ${this.what()} (its heartbeat to the fleet registry, Redis, came late): the page left Foundry so that no other machine's login could overlap it; retry in a few seconds`) as ServiceError,
        { stage: this.stage, retryAfter: FLEET_RETRY_AFTER_S })
    }
    return withContext(new E(message) as ServiceError, { stage: this.stage, page: this.pagePath() ?? undefined })
  }

  async goto (url: string): Promise<HTTPResponse | null> {
    let res: HTTPResponse | null
    try {
      res = await this.page.goto(url, { waitUntil: 'domcontentloaded' })
    } catch (err) {
      // The page's own script may navigate at the same moment (setup after
      // a launch): ours is aborted. Go again once.
      if (!/net::ERR_ABORTED/.test((err as Error).message)) throw err
      res = await this.page.goto(url, { waitUntil: 'domcontentloaded' })
    }
    this.loaded = true
    const status = res?.status() ?? 0
    if (status >= 500) {
      // For plain http:// the egress gate answers a failed connection with
      // a 5xx of its own (proxy-chain: 590–599, 502): name what happened as
      // Chromium would have.
      const target = egressTarget(res?.url() ?? url)
      const code = target !== undefined ? this.opts.upstreamFailure?.(target) : undefined
      if (code !== undefined) throw this.translate(new Error(`net::${chromiumNetError(code)}`))
    }
    if (status >= 500) {
      throw this.fail(FoundryError, `Foundry answered HTTP ${status} on ${this.pagePath() ?? url}: check the Foundry server's own log`)
    }
    return res
  }

  /** Run `fn` of page script `script` in the page once. */
  async call<S extends PageScript, F extends PageFn<S>> (script: S, fn: F, ...args: PageArgs<S, F>): Promise<PageResult<S, F>> {
    // puppeteer knows nothing of the page's code; page-api.ts does.
    return await this.page.evaluate(pageFunction(script, fn), ...args) as PageResult<S, F>
  }

  /** GET /api/status from inside the page (no auth; null when it does not answer JSON). */
  async status (): Promise<FoundryStatus | null> {
    return await this.call('common', 'status', this.url('api/status'))
  }

  /** POST JSON from inside the page, with its cookies, as Foundry's own pages do. */
  async postJson (route: string, body: Record<string, unknown>): Promise<{ status: number, text: string }> {
    return await this.call('common', 'postJson', this.url(route), body)
  }

  /** The newest error Foundry shows (toast or inline form error), '' when none. */
  async errorNotice (): Promise<string> {
    return await this.call('common', 'lastError', true).catch(() => '')
  }

  /**
   * Wait until `fn` of page script `script` returns something truthy in the
   * page, and return it. puppeteer carries the wait over to a new document
   * when the page navigates; with `w.stayOn`, a main-frame navigation away
   * from that route ends the wait at once: the login was lost.
   */
  async waitFor<S extends PageScript, F extends PageFn<S>> (script: S, fn: F, w: Wait, ...args: PageArgs<S, F>): Promise<Exclude<PageResult<S, F>, false>> {
    const deadline = Date.now() + w.timeout
    const stop = new AbortController()
    let leftFor: string | null = null
    const onNavigated = (frame: Frame): void => {
      if (frame !== this.page.mainFrame() || this.routeOf(frame.url()) === w.stayOn) return
      try { leftFor = new URL(frame.url()).pathname } catch { leftFor = 'another site' }
      stop.abort()
    }
    const onCancel = (): void => { stop.abort() }
    if (w.stayOn !== undefined) this.page.on('framenavigated', onNavigated)
    this.opts.signal?.addEventListener('abort', onCancel, { once: true })
    try {
      for (;;) {
        this.checkAborted()
        const left = deadline - Date.now()
        if (left <= 0) {
          throw this.fail(FoundryTimeout, `Timed out after ${Math.round(w.timeout / 1000)} s ${this.what()}: waited for ${w.what} on ${this.pagePath() ?? 'the page'}`)
        }
        try {
          const handle = await this.page.waitForFunction(pageFunction(script, fn), { timeout: Math.min(left, WAIT_SLICE_MS), polling: w.polling ?? 100, signal: stop.signal }, ...args)
          const value = await handle.jsonValue().catch(() => true)
          await handle.dispose().catch(() => {})
          return value as Exclude<PageResult<S, F>, false>
        } catch (err) {
          if (leftFor !== null) {
            throw this.fail(LoginLost, `Foundry sent the browser from ${w.stayOn} to ${leftFor as string} while ${this.what()}: the login was lost (the world may have shut down, or another login replaced this one)`)
          }
          const e = err as Error
          if (e.name === 'TimeoutError') continue
          // A page script's context went away with its document: wait again in the next one.
          if (!/context was destroyed|Cannot find context|navigat/i.test(e.message)) throw err
          await this.page.waitForNavigation({ waitUntil: 'domcontentloaded', timeout: Math.max(1, deadline - Date.now()) }).catch(() => {})
        }
      }
    } finally {
      this.page.off('framenavigated', onNavigated)
      this.opts.signal?.removeEventListener('abort', onCancel)
    }
  }

  /** The browser was sent somewhere the egress gate refuses (FOUNDRY_URL_POLICY, FOUNDRY_URL_DENY). */
  refusedUrl (refused?: { target: string, reason: EgressReason }): ServiceError {
    const where = refused !== undefined ? `${refused.target}, an address this service refuses (${refused.reason}; FOUNDRY_URL_POLICY, FOUNDRY_URL_DENY),` : 'an address this service refuses (FOUNDRY_URL_POLICY, FOUNDRY_URL_DENY)'
    return this.fail(FoundryUrlRefused, `The browser was sent to ${where} while ${this.what()}: check x-foundry-url and where that server redirects`)
  }

  /** The host name of the main frame's navigation did not resolve at the egress gate: a DNS failure, waited for. */
  unresolvable (target: string): ServiceError {
    const host = target.replace(/:\d+$/, '')
    const who = target === egressTarget(this.base.href) ? `Foundry at ${this.base.host}` : `${host}, where Foundry sent the browser,`
    return this.fail(FoundryUnreachable, `${who} could not be reached while ${this.what()}: its host name does not resolve (DNS): check x-foundry-url and that the name resolves from this service`)
  }

  /** Turn a navigation or protocol error into a client-facing one. */
  translate (err: Error): ServiceError {
    const msg = err.message ?? ''
    const net = /net::(ERR_[A-Z_]+)/.exec(msg)?.[1]
    if (net !== undefined) {
      if (net === 'ERR_BLOCKED_BY_CLIENT') return this.refusedUrl()
      if (/CERT|SSL|TLS/.test(net)) {
        return this.fail(FoundryTlsError, `The TLS connection to ${this.base.host} failed (${net}): fix the server's certificate or use its http:// URL`)
      }
      if (net === 'ERR_TIMED_OUT' || net === 'ERR_CONNECTION_TIMED_OUT') {
        return this.fail(FoundryTimeout, `Connecting to ${this.base.host} timed out (${net}): check that Foundry is running and reachable from this service`)
      }
      return this.fail(FoundryUnreachable, `Foundry at ${this.base.host} could not be reached (${net}): check x-foundry-url and that the server is running`)
    }
    if (err.name === 'TimeoutError') {
      return this.fail(FoundryTimeout, `Timed out ${this.what()} on ${this.pagePath() ?? this.base.host}: Foundry is too slow or not answering`)
    }
    if (/Target closed|Session closed|Protocol error|browser has disconnected|detached/i.test(msg)) {
      return this.fail(LoginLost, `The session's browser page closed while ${this.what()}`)
    }
    return this.fail(FoundryError, `Unexpected failure while ${this.what()}`)
  }
}

export function isServiceError (err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as ServiceError).code === 'string' &&
    typeof (err as ServiceError).statusCode === 'number'
}

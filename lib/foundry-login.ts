// The headless Foundry login, as plain TypeScript over a puppeteer Page.
// Every wait is on a condition (a page, an element, game.ready, a socket),
// bounded by a timeout; there is no fixed sleep anywhere.
import type { HTTPResponse, Page } from 'puppeteer-core'
import {
  AdminPasswordRequired, FoundryError, FoundryTimeout, FoundryTlsError, FoundryUnreachable, LicenseNotSigned,
  LoginLost, LoginRejected, ModuleNotConnected, NotFoundry, NotGamemaster, SessionCancelled, UserBanned,
  UserNotFound, WorldLaunchFailed, WorldMismatch, WorldNotFound, WorldNotRunning, withContext, type ServiceError
} from './errors.js'
import { watchWebSockets, WsWaitTimeout, type WsConnection, type WsWatcher } from './websockets.js'

export interface LoginTimeouts {
  navigation: number
  joinForm: number
  worldLaunch: number
  gameReady: number
  moduleConnect: number
}

export interface LoginParams {
  foundryUrl: string
  username: string
  password: string
  worldName?: string
}

export interface LoginOptions {
  timeouts: LoginTimeouts
  signal?: AbortSignal
  /** Called as the login moves from stage to stage (for status and logs). */
  onStage?: (stage: Stage, page: string | null) => void
}

export type Stage = 'reach' | 'world-launch' | 'join' | 'game-load' | 'module-connection'

export interface WorldInfo {
  userId: string
  userName: string
  role: number
  worldId: string
  worldTitle: string
  systemId: string
  systemTitle: string
  systemVersion: string
  foundryVersion: string
}

export interface LoginResult extends WorldInfo {
  /** The id the REST API module announced to its relay. */
  clientId: string
  /** Relay origin + path the module connected to (no query: it may carry a token). */
  relayUrl: string
  /** Module-announced custom name ('' when none). */
  customName: string
}

const STAGE_WHAT: Record<Stage, string> = {
  reach: 'reaching Foundry',
  'world-launch': 'launching the world',
  join: 'joining the world',
  'game-load': 'loading the game',
  'module-connection': 'waiting for the REST API module to connect'
}

const KNOWN_ROUTES = new Set(['/setup', '/auth', '/join', '/license', '/players', '/game'])

export function foundryBase (foundryUrl: string): URL {
  const base = new URL(foundryUrl)
  base.hash = ''
  base.search = ''
  if (!base.pathname.endsWith('/')) base.pathname += '/'
  return base
}

/**
 * Log `params.username` into the Foundry world at `params.foundryUrl` in
 * `page` (a page of a fresh browser context), and wait for the REST API
 * module's relay connection.
 */
export async function loginToFoundry (page: Page, params: LoginParams, opts: LoginOptions): Promise<LoginResult> {
  const driver = new LoginDriver(page, params, opts)
  return await driver.run()
}

class LoginDriver {
  private stage: Stage = 'reach'
  private readonly base: URL
  private ws: WsWatcher | undefined

  constructor (private readonly page: Page, private readonly params: LoginParams, private readonly opts: LoginOptions) {
    this.base = foundryBase(params.foundryUrl)
  }

  async run (): Promise<LoginResult> {
    const { page, opts } = this
    try {
      page.setDefaultNavigationTimeout(opts.timeouts.navigation)
      page.setDefaultTimeout(opts.timeouts.navigation)
      // Foundry reportedly logs an error below 1366×768.
      await page.setViewport({ width: 1366, height: 768 })
      this.ws = await watchWebSockets(page)
      this.enter('reach')
      await this.goto(this.base.href)

      // Follow Foundry's own routing until the game page. Each step moves
      // the page forward; a loop means Foundry sent us back.
      for (let step = 0; step < 6; step++) {
        this.checkAborted()
        const route = this.route()
        switch (route) {
          case '/license':
            throw this.fail(LicenseNotSigned, 'Foundry shows its licence page: sign the licence (EULA) and enter the licence key in a browser once; this service never accepts a licence on your behalf')
          case '/auth':
            throw this.fail(AdminPasswordRequired, 'No world is running and Foundry asks for its administrator password to reach the setup page: launch the world in Foundry yourself, then start the session again')
          case '/players':
            throw this.fail(FoundryError, 'Foundry shows the user setup page of a world launched for the first time (/players): open the world once in a browser and press "Save and Continue"')
          case '/setup':
            await this.launchWorld()
            break
          case '/join':
            await this.join()
            break
          case '/game':
            return await this.game()
          default:
            await this.notFoundryOr(route)
        }
      }
      throw this.fail(FoundryError, 'Foundry kept redirecting without reaching the game page')
    } catch (err) {
      if (opts.signal?.aborted === true) throw new SessionCancelled()
      if (isServiceError(err)) throw err
      throw this.translate(err as Error)
    } finally {
      await this.ws?.detach()
    }
  }

  // — steps —

  private async launchWorld (): Promise<void> {
    const { worldName } = this.params
    if (worldName === undefined || worldName === '') {
      throw this.fail(WorldNotRunning, 'No world is running on this Foundry server: name the world to launch in x-world-name (or the worldName body field)')
    }
    this.enter('world-launch')
    await this.waitIn(() => document.readyState === 'complete' && document.querySelector('#worlds-list') !== null,
      { timeout: this.opts.timeouts.joinForm, what: 'the setup page\'s world list' })
    const worlds = await this.page.$$eval('#worlds-list li.package.world', (els) => els.map((e) => ({
      id: (e as HTMLElement).dataset.packageId ?? '',
      title: e.querySelector('.package-title')?.textContent?.trim() ?? ''
    })))
    const world = matchWorld(worlds, worldName)
    if (world === undefined) {
      const titles = worlds.map((w) => `"${w.title}"`).join(', ')
      throw this.fail(WorldNotFound, `No world "${worldName}" on this Foundry server. Worlds: ${titles === '' ? 'none' : titles}`)
    }
    // Launch the way the setup page's play button does: a JSON POST.
    const res = await this.fetchJson('setup', { action: 'launchWorld', world: world.id })
    if (res.status === 401 || res.status === 403) {
      throw this.fail(AdminPasswordRequired, `Foundry refused to launch "${world.title}" without its administrator password (${foundryMessage(res.text)}): launch the world in Foundry yourself, then start the session again`)
    }
    if (res.status !== 200) {
      throw this.fail(WorldLaunchFailed, `Foundry refused to launch "${world.title}": HTTP ${res.status} ${foundryMessage(res.text)}`)
    }
    // Foundry launches asynchronously; its status endpoint says when the
    // world is up. Wait on that document rather than the setup page, whose
    // own script navigates when the launch completes (and would race ours).
    const statusUrl = new URL('api/status', this.base).href
    await this.goto(statusUrl)
    await this.waitIn(async (url: string, id: string) => {
      try {
        const r = await fetch(url, { cache: 'no-store' })
        const s = await r.json() as { active?: boolean, world?: string }
        return s.active === true && s.world === id
      } catch { return false }
    }, { timeout: this.opts.timeouts.worldLaunch, what: `world "${world.title}" to finish launching` }, statusUrl, world.id)
    this.enter('join')
    await this.goto(new URL('join', this.base).href)
  }

  private async join (): Promise<void> {
    this.enter('join')
    const { username, password, worldName } = this.params
    if (worldName !== undefined && worldName !== '') {
      const running = await this.page.evaluate(() => document.querySelector('#main-header h1, header h1')?.textContent?.trim() ?? '')
      const status = await this.status()
      const candidates = [{ id: status?.world ?? '', title: running }]
      if (matchWorld(candidates, worldName) === undefined) {
        throw this.fail(WorldMismatch, `Another world is running on this Foundry server: "${running !== '' ? running : status?.world ?? 'unknown'}", not "${worldName}". Ask for that world, or return Foundry to setup yourself (this service never shuts a running world down)`)
      }
    }
    // The join form is built by script after Foundry's socket answers
    // getJoinData: wait for it and for game.users.
    await this.waitIn(() => {
      const users = (globalThis as { game?: { users?: { size?: number } } }).game?.users
      const hasUsers = users !== undefined && users !== null && (users.size ?? 0) > 0
      const select = document.querySelector('select[name=userid] option[value]:not([value=""])')
      const field = document.querySelector('#join-username')
      return hasUsers && (select !== null || field !== null)
    }, { timeout: this.opts.timeouts.joinForm, what: 'the join form' })

    const form = await this.page.evaluate(() => {
      type U = { id?: string, _id?: string, name?: string, active?: boolean }
      const col = (globalThis as { game?: { users?: Iterable<U> & { values?: () => Iterable<U>, contents?: U[] } } }).game?.users
      const raw: U[] = col === undefined ? [] : col.contents ?? Array.from(col.values?.() ?? col)
      const users = raw.map((u) => ({ id: String(u.id ?? u._id ?? ''), name: String(u.name ?? ''), active: u.active === true }))
      for (const o of Array.from(document.querySelectorAll<HTMLOptionElement>('select[name=userid] option'))) {
        if (o.value !== '' && !users.some((u) => u.id === o.value)) users.push({ id: o.value, name: o.textContent?.trim() ?? '', active: o.disabled })
      }
      return { users, textField: document.querySelector('#join-username') !== null }
    })
    const user = matchUser(form.users, username)
    if (user === undefined) {
      throw this.fail(UserNotFound, `User "${username}" does not exist in this world: use the user name exactly as Foundry's join page shows it`)
    }
    // v14 from build 367 posts `userId` (its join page has a text field);
    // earlier versions post `userid`. The old key on a new server is
    // answered as "user does not exist".
    const key = form.textField ? 'userId' : 'userid'
    const res = await this.fetchJson('join', { [key]: user.id, password, action: 'join' })
    if (res.status === 401) {
      const reason = foundryMessage(res.text)
      if (reason === 'JOIN.ErrorInvalidPassword') {
        throw this.fail(LoginRejected, `Foundry rejected the password for user "${user.name}" (${reason}): check the password and start again`)
      }
      if (reason === 'JOIN.ErrorBanned') {
        throw this.fail(UserBanned, `User "${user.name}" is banned in this world (${reason}): give the user a role in Foundry first`)
      }
      if (reason === 'JOIN.ErrorUserDoesNotExist') {
        throw this.fail(UserNotFound, `Foundry says user "${user.name}" does not exist (${reason})`)
      }
      throw this.fail(LoginRejected, `Foundry rejected the login of "${user.name}" (${reason})`)
    }
    let redirect: string | undefined
    try {
      const body = JSON.parse(res.text) as { status?: string, redirect?: string }
      if (res.status === 200 && body.status === 'success') redirect = body.redirect ?? 'game'
    } catch {}
    if (redirect === undefined) {
      throw this.fail(FoundryError, `Foundry answered the login with HTTP ${res.status} ${foundryMessage(res.text)}`)
    }
    this.enter('game-load')
    // Foundry's page would set location.href 500 ms after the toast; go at once.
    await this.goto(new URL(redirect, this.page.url()).href)
    if (this.route() !== '/game') {
      throw this.fail(LoginLost, `Foundry accepted the login but sent the browser to ${this.route() ?? 'another site'} instead of the game`)
    }
  }

  private async game (): Promise<LoginResult> {
    this.enter('game-load')
    // The /game skeleton (#interface, #board…) exists long before the game
    // is ready: only game.ready says it is.
    await this.waitIn(() => (globalThis as { game?: { ready?: boolean } }).game?.ready === true,
      { timeout: this.opts.timeouts.gameReady, what: 'game.ready', stayOn: '/game' })
    const info = await this.page.evaluate(() => {
      type G = {
        user?: { id?: string, name?: string, role?: number }
        world?: { id?: string, title?: string }
        system?: { id?: string, title?: string, version?: string }
        version?: string
        release?: { version?: string }
      }
      const g = (globalThis as { game?: G }).game ?? {}
      return {
        userId: String(g.user?.id ?? ''),
        userName: String(g.user?.name ?? ''),
        role: Number(g.user?.role ?? 0),
        worldId: String(g.world?.id ?? ''),
        worldTitle: String(g.world?.title ?? ''),
        systemId: String(g.system?.id ?? ''),
        systemTitle: String(g.system?.title ?? ''),
        systemVersion: String(g.system?.version ?? ''),
        foundryVersion: String(g.version ?? g.release?.version ?? '')
      }
    })
    const { worldName } = this.params
    if (worldName !== undefined && worldName !== '' &&
        matchWorld([{ id: info.worldId, title: info.worldTitle }], worldName) === undefined) {
      throw this.fail(WorldMismatch, `Foundry loaded world "${info.worldTitle}", not "${worldName}"`)
    }
    if (info.role !== 4) {
      throw this.fail(NotGamemaster, `User "${info.userName}" is not a Gamemaster (role ${info.role}); the REST API module connects to its relay only for a Gamemaster (role 4). Log in as a Gamemaster`)
    }
    return { ...info, ...await this.moduleConnection(info) }
  }

  private async moduleConnection (info: WorldInfo): Promise<{ clientId: string, relayUrl: string, customName: string }> {
    this.enter('module-connection')
    const socketPath = new URL('socket.io/', this.base).pathname
    const isModule = (c: WsConnection): boolean => {
      if (c.url.pathname === socketPath) return false // Foundry's own socket
      const id = c.url.searchParams.get('id')
      if (id === null || id === '') return false
      const worldId = c.url.searchParams.get('worldId')
      return worldId === null || worldId === info.worldId
    }
    const connected = (c: WsConnection): boolean => {
      if (!isModule(c)) return false
      // Module 3.x authenticates with its first message: wait for the
      // relay's auth-success. Module 2.x is in once the upgrade is accepted.
      return c.url.pathname.endsWith('/relay') ? c.authSucceeded : c.status === 101
    }
    let conn: WsConnection
    try {
      conn = await this.ws!.waitFor(connected, this.opts.timeouts.moduleConnect, this.opts.signal)
    } catch (err) {
      if (!(err instanceof WsWaitTimeout)) throw err
      const seen = this.ws!.connections().filter(isModule)
      const why = seen.length > 0
        ? 'The module opened a relay connection but the relay did not accept it (check the relay URL and, for module 3.x, the connection token)'
        : 'The module never opened a relay connection. Usual causes: the Foundry REST API module is not active in this world; its relay URL is not set; or another Gamemaster is connected (module 2.x connects only for the primary GM, the active GM with the lowest id)'
      throw this.fail(ModuleNotConnected, `${why}. Waited ${Math.round(this.opts.timeouts.moduleConnect / 1000)} s`)
    }
    const { url } = conn
    return {
      clientId: url.searchParams.get('id') ?? '',
      relayUrl: `${url.protocol}//${url.host}${url.pathname}`,
      customName: url.searchParams.get('customName') ?? ''
    }
  }

  // — helpers —

  private enter (stage: Stage): void {
    this.stage = stage
    this.opts.onStage?.(stage, this.route())
  }

  private checkAborted (): void {
    if (this.opts.signal?.aborted === true) throw new SessionCancelled()
  }

  /** The Foundry route of the current page ('/join'), without any route prefix; null off-site. */
  private route (): string | null {
    let url: URL
    try { url = new URL(this.page.url()) } catch { return null }
    if (url.origin !== this.base.origin) return null
    const prefix = this.base.pathname
    const path = url.pathname.endsWith('/') && url.pathname.length > 1 ? url.pathname.slice(0, -1) : url.pathname
    if (!(path + '/').startsWith(prefix)) return null
    return '/' + path.slice(prefix.length)
  }

  private pagePath (): string | null {
    try { return new URL(this.page.url()).pathname } catch { return null }
  }

  private fail (E: new (msg: string) => Error, message: string): ServiceError {
    return withContext(new E(message) as ServiceError, { stage: this.stage, page: this.pagePath() ?? undefined })
  }

  private async goto (url: string): Promise<HTTPResponse | null> {
    const res = await this.page.goto(url, { waitUntil: 'domcontentloaded' })
    const status = res?.status() ?? 0
    if (status >= 500) {
      throw this.fail(FoundryError, `Foundry answered HTTP ${status} on ${this.pagePath() ?? url}: check the Foundry server's own log`)
    }
    return res
  }

  private async status (): Promise<{ active?: boolean, version?: string, world?: string } | null> {
    const url = new URL('api/status', this.base).href
    return await this.page.evaluate(async (u) => {
      try {
        const r = await fetch(u, { cache: 'no-store' })
        return r.ok ? await r.json() as { active?: boolean, version?: string, world?: string } : null
      } catch { return null }
    }, url)
  }

  private async notFoundryOr (route: string | null): Promise<never> {
    const where = this.pagePath() ?? this.page.url()
    if (route !== null && !KNOWN_ROUTES.has(route)) {
      const status = await this.status().catch(() => null)
      if (typeof status?.version === 'string') {
        throw this.fail(FoundryError, `Foundry ${status.version} sent the browser to ${where}, a page this service does not know how to pass`)
      }
    }
    throw this.fail(NotFoundry, `${this.base.href} answered, but it is not a Foundry VTT server (the browser landed on ${route === null ? 'another site' : where}): check x-foundry-url`)
  }

  /** POST JSON from inside the page, with its cookies, as Foundry's own pages do. */
  private async fetchJson (path: string, body: unknown): Promise<{ status: number, text: string }> {
    const url = new URL(path, this.base).href
    return await this.page.evaluate(async (u, b) => {
      const r = await fetch(u, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(b), credentials: 'same-origin' })
      return { status: r.status, text: await r.text() }
    }, url, body as Record<string, unknown>)
  }

  /**
   * Wait for a condition evaluated in the page. A navigation destroys the
   * page's context mid-wait: then wait again in the new document, unless the
   * page has left the route `w.stayOn`.
   */
  private async waitIn<A extends unknown[]> (fn: (...args: A) => unknown, w: { timeout: number, what: string, stayOn?: string }, ...args: A): Promise<void> {
    const deadline = Date.now() + w.timeout
    for (;;) {
      this.checkAborted()
      const left = deadline - Date.now()
      if (left <= 0) {
        throw this.fail(FoundryTimeout, `Timed out after ${Math.round(w.timeout / 1000)} s ${STAGE_WHAT[this.stage]}: waited for ${w.what} on ${this.pagePath() ?? 'the page'}`)
      }
      try {
        await this.page.waitForFunction(fn as (...a: unknown[]) => unknown, { timeout: left, polling: 100 }, ...args)
        return
      } catch (err) {
        const e = err as Error
        if (e.name === 'TimeoutError') continue
        if (!/context was destroyed|Cannot find context|navigat/i.test(e.message)) throw err
        await this.page.waitForNavigation({ waitUntil: 'domcontentloaded', timeout: Math.max(1, deadline - Date.now()) }).catch(() => {})
        const route = this.route()
        if (w.stayOn !== undefined && route !== w.stayOn) {
          throw this.fail(LoginLost, `Foundry sent the browser from ${w.stayOn} to ${this.pagePath() ?? 'another site'} while ${STAGE_WHAT[this.stage]}: the login was lost (the world may have shut down, or another login replaced this one)`)
        }
      }
    }
  }

  /** Turn a navigation or protocol error into a client-facing one. */
  private translate (err: Error): ServiceError {
    const msg = err.message ?? ''
    const net = /net::(ERR_[A-Z_]+)/.exec(msg)?.[1]
    if (net !== undefined) {
      if (/CERT|SSL|TLS/.test(net)) {
        return this.fail(FoundryTlsError, `The TLS connection to ${this.base.host} failed (${net}): fix the server's certificate or use its http:// URL`)
      }
      if (net === 'ERR_TIMED_OUT' || net === 'ERR_CONNECTION_TIMED_OUT') {
        return this.fail(FoundryTimeout, `Connecting to ${this.base.host} timed out (${net}): check that Foundry is running and reachable from this service`)
      }
      return this.fail(FoundryUnreachable, `Foundry at ${this.base.host} could not be reached (${net}): check x-foundry-url and that the server is running`)
    }
    if (err.name === 'TimeoutError') {
      return this.fail(FoundryTimeout, `Timed out ${STAGE_WHAT[this.stage]} on ${this.pagePath() ?? this.base.host}: Foundry is too slow or not answering`)
    }
    if (/Target closed|Session closed|Protocol error|browser has disconnected|detached/i.test(msg)) {
      return this.fail(LoginLost, `The session's browser page closed while ${STAGE_WHAT[this.stage]}`)
    }
    return this.fail(FoundryError, `Unexpected failure while ${STAGE_WHAT[this.stage]}`)
  }
}

function isServiceError (err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as ServiceError).code === 'string' &&
    typeof (err as ServiceError).statusCode === 'number'
}

/** Foundry's 401 bodies are bare i18n keys; keep anything else short. */
function foundryMessage (text: string): string {
  const t = text.trim()
  return t.length > 200 ? t.slice(0, 200) + '…' : t
}

export function matchWorld<W extends { id: string, title: string }> (worlds: W[], name: string): W | undefined {
  return worlds.find((w) => w.title === name) ??
    unique(worlds.filter((w) => w.title.toLowerCase() === name.toLowerCase())) ??
    worlds.find((w) => w.id === name)
}

export function matchUser<U extends { id: string, name: string }> (users: U[], name: string): U | undefined {
  return users.find((u) => u.name === name) ??
    unique(users.filter((u) => u.name.toLowerCase() === name.toLowerCase())) ??
    users.find((u) => u.id === name)
}

function unique<T> (xs: T[]): T | undefined {
  return xs.length === 1 ? xs[0] : undefined
}

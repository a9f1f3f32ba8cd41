// The headless Foundry login, as plain TypeScript over a puppeteer Page.
// Every wait is on a condition (a page, an element, game.ready, a socket),
// bounded by a timeout; there is no fixed sleep anywhere.
import type { HTTPResponse, Page } from 'puppeteer-core'
import {
  AdminPasswordRejected, AdminPasswordRequired, FoundryError, FoundryUrlRefused, FoundryTimeout, FoundryTlsError, FoundryUnreachable,
  JoinFormUnknown, LicenseNotSigned, LoginLost, LoginRejected, ModuleConnectionTaken, ModuleNotConnected,
  ModuleTokenRefused, NotFoundry, NotGamemaster, SessionCancelled, UserAlreadyActive, UserBanned, UserNotFound,
  WorldLaunchFailed, WorldLocked, WorldMismatch, WorldNeedsMigration, WorldNotFound, WorldNotRunning, withContext,
  type ServiceError
} from './errors.js'
import { pageFunction, type PageScript } from './foundry/page-scripts.js'

type PageCall = [PageScript, string]
import { watchWebSockets, WsWaitTimeout, type WsConnection, type WsWatcher } from './websockets.js'

export interface LoginTimeouts {
  navigation: number
  joinForm: number
  worldLaunch: number
  gameReady: number
  moduleConnect: number
  /**
   * Module 2.x: how long an accepted relay connection must stay open to
   * count (a 2.x relay accepts the upgrade, then closes a refused id with
   * 4004; it sends nothing on success). Default 250 ms.
   */
  moduleStable?: number
}

export interface LoginParams {
  foundryUrl: string
  username: string
  password: string
  worldName?: string
  /** Foundry's administrator password, to pass /auth and launch the world. */
  adminPassword?: string
  /** Module 3.x connection token, seeded into localStorage before Foundry loads. */
  connectionToken?: string
  /** Wait for the REST API module's relay connection (default true). */
  requireModule?: boolean
  /** Log in even when Foundry shows the user as already logged in elsewhere. */
  loginIfActive?: boolean
  /** Launch the named world from the setup page when none runs (default true). */
  launchWorld?: boolean
}

/** localStorage key of the module 3.x connection token (JSON-encoded). */
export const CONNECTION_TOKEN_KEY = 'foundry-rest-api.connectionToken'

export interface LoginOptions {
  timeouts: LoginTimeouts
  signal?: AbortSignal
  /** Called as the login moves from stage to stage (for status and logs). */
  onStage?: (stage: Stage, page: string | null) => void
}

export type Stage = 'reach' | 'admin-auth' | 'world-launch' | 'join' | 'game-load' | 'module-connection'

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
  /** The id the REST API module announced to its relay; null when the module was not required and did not connect. */
  clientId: string | null
  /** 2 or 3 when the module connected. */
  moduleProtocol: 2 | 3 | null
  /** Relay origin + path the module connected to (no query: it may carry a token). */
  relayUrl: string
  /** Module-announced custom name ('' when none). */
  customName: string
}

const STAGE_WHAT: Record<Stage, string> = {
  reach: 'reaching Foundry',
  'admin-auth': 'passing Foundry\'s administrator login',
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
      if (this.params.connectionToken !== undefined && this.params.connectionToken !== '') {
        // Before any Foundry script runs, on Foundry's origin only, and only
        // where the module has no token of its own yet.
        await page.evaluateOnNewDocument(pageFunction('document', 'seedConnectionToken'), this.base.origin, CONNECTION_TOKEN_KEY, this.params.connectionToken)
      }
      this.enter('reach')
      await this.goto(this.base.href)

      // Follow Foundry's own routing until the game page. Each step moves
      // the page forward; a loop means Foundry sent us back.
      for (let step = 0; step < 8; step++) {
        this.checkAborted()
        const route = this.route()
        switch (route) {
          case '/license':
            throw this.fail(LicenseNotSigned, 'Foundry shows its licence page: sign the licence (EULA) and enter the licence key in a browser once; this service never accepts a licence on your behalf')
          case '/auth':
            await this.adminAuth()
            break
          case '/players':
            await this.playersGate()
            break
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

  private adminAuthTried = false

  /** /auth: Foundry's administrator login, posted by its own form. */
  private async adminAuth (): Promise<void> {
    this.enter('admin-auth')
    const { adminPassword, worldName } = this.params
    if (worldName === undefined || worldName === '') {
      throw this.fail(WorldNotRunning, 'No world is running on this Foundry server: name the world to launch in x-world-name, and send Foundry\'s administrator password as encryptedAdminPassword')
    }
    if (adminPassword === undefined || adminPassword === '') {
      throw this.fail(AdminPasswordRequired, `No world is running and Foundry asks for its administrator password to launch "${worldName}": send it as encryptedAdminPassword (encrypted like the password), or launch the world in Foundry yourself`)
    }
    if (this.adminAuthTried) {
      const flash = await this.errorNotice()
      throw this.fail(AdminPasswordRejected, `Foundry rejected the administrator password${flash !== '' ? ` (${flash})` : ''}: check encryptedAdminPassword`)
    }
    this.adminAuthTried = true
    await this.waitIn(['auth', 'probe'],
      { timeout: this.opts.timeouts.joinForm, what: 'the administrator password form' })
    // Foundry's /auth is a native form post: fill it and submit it, so the
    // browser sends exactly what Foundry's page sends.
    await Promise.all([
      this.page.waitForNavigation({ waitUntil: 'domcontentloaded' }),
      this.page.evaluate(pageFunction('auth', 'submit'), adminPassword)
    ])
  }

  /** v14 /players: the user setup shown after a world's first launch. */
  private async playersGate (): Promise<void> {
    this.enter('join')
    const submitted = await this.page.evaluate(pageFunction('players', 'submit'))
    if (!submitted) {
      throw this.fail(FoundryError, 'Foundry shows the user setup page of a world launched for the first time (/players): open the world once in a browser and press "Save and Continue"')
    }
    await this.page.waitForNavigation({ waitUntil: 'domcontentloaded' }).catch(() => {})
    if (this.route() === '/players') {
      throw this.fail(FoundryError, 'Foundry kept the browser on its first-launch user setup page (/players): open the world once in a browser and press "Save and Continue"')
    }
  }

  private async launchWorld (): Promise<void> {
    const { worldName } = this.params
    if (worldName === undefined || worldName === '') {
      throw this.fail(WorldNotRunning, 'No world is running on this Foundry server: name the world to launch in x-world-name (or the worldName body field)')
    }
    if (this.params.launchWorld === false) {
      throw this.fail(WorldNotRunning, `World "${worldName}" is no longer running on this Foundry server, and relaunching it was not allowed for this session (start it with "relaunchWorld": true to allow it)`)
    }
    this.enter('world-launch')
    await this.waitIn(['setup', 'ready'],
      { timeout: this.opts.timeouts.joinForm, what: 'the setup page\'s world list' })
    const worlds = await this.page.evaluate(pageFunction('setup', 'worlds')) as Array<{ id: string, title: string }>
    const world = matchWorld(worlds, worldName)
    if (world === undefined) {
      const titles = worlds.map((w) => `"${w.title}"`).join(', ')
      throw this.fail(WorldNotFound, `No world "${worldName}" on this Foundry server. Worlds: ${titles === '' ? 'none' : titles}`)
    }
    // First-load overlays: decline the telemetry prompt (the choice that
    // shares nothing) and close tours, as a user would before launching.
    await this.page.evaluate(pageFunction('setup', 'dismissOverlays'))
    // Launch with the world's own play control, so that Foundry's client
    // runs its checks (a world that needs migrating opens a dialog instead).
    const errorsBefore = await this.page.evaluate(pageFunction('setup', 'errorCount')) as number
    const clicked = await this.page.evaluate(pageFunction('setup', 'launch'), world.id)
    if (!clicked) {
      throw this.fail(FoundryError, `The setup page shows world "${world.title}" without a launch control this service knows: launch the world in Foundry yourself`)
    }
    // Wait for the outcome: Foundry's status says the world is up, or the
    // page shows a migration dialog or an error. The setup page navigates
    // by itself when the launch completes; the wait follows it.
    const statusUrl = new URL('api/status', this.base).href
    const outcome = await this.waitIn(['setup', 'outcome'], { timeout: this.opts.timeouts.worldLaunch, what: `world "${world.title}" to finish launching`, polling: 250 }, statusUrl, world.id, errorsBefore) as { kind: 'migration' } | { kind: 'error', message: string } | { kind: 'active' }
    if (outcome.kind === 'migration') {
      // Close the dialog without migrating.
      await this.page.evaluate(pageFunction('setup', 'declineMigration')).catch(() => {})
      throw this.fail(WorldNeedsMigration, `World "${world.title}" needs a data migration before it can be launched. Migration is irreversible: back up the world, launch it once in Foundry and confirm the migration there, then start the session again`)
    }
    if (outcome.kind === 'error') {
      const reason = foundryMessage(outcome.message)
      if (/LaunchLocked|locked/i.test(reason)) {
        throw this.fail(WorldLocked, `World "${world.title}" is locked against launching (${reason}): unlock it in Foundry's setup page first`)
      }
      if (/Migrat/i.test(reason)) {
        throw this.fail(WorldNeedsMigration, `World "${world.title}" needs a data migration before it can be launched (${reason}): launch it once in Foundry and confirm the migration there`)
      }
      if (/InvalidAdminKey|Forbidden/i.test(reason)) {
        throw this.fail(AdminPasswordRequired, `Foundry refused to launch "${world.title}" without its administrator password (${reason}): send it as encryptedAdminPassword`)
      }
      throw this.fail(WorldLaunchFailed, `Foundry failed to launch "${world.title}" (${reason})`)
    }
    this.enter('join')
    if (this.route() !== '/join') await this.goto(new URL('join', this.base).href)
  }

  private async join (): Promise<void> {
    this.enter('join')
    const { username, password, worldName } = this.params
    if (worldName !== undefined && worldName !== '') {
      const running = await this.page.evaluate(pageFunction('join', 'worldTitle')) as string
      const status = await this.status()
      if (status !== null && status.active === false) {
        // /join without a world ("no active game session"): go through setup.
        await this.goto(this.base.href)
        return
      }
      const candidates = [{ id: status?.world ?? '', title: running }]
      if (matchWorld(candidates, worldName) === undefined) {
        throw this.fail(WorldMismatch, `Another world is running on this Foundry server: "${running !== '' ? running : status?.world ?? 'unknown'}", not "${worldName}". Ask for that world, or return Foundry to setup yourself (this service never shuts a running world down)`)
      }
    }
    // The join form is built by script after Foundry's socket answers
    // getJoinData. Wait until game.users is filled and the form rendered;
    // then read which variant it is.
    const state = (await this.waitIn(['join', 'probe'], { timeout: this.opts.timeouts.joinForm, what: 'the join form' }) as { kind: 'select' | 'text' | 'unknown' | 'inactive' }).kind
    if (state === 'inactive') {
      throw this.fail(WorldNotRunning, 'Foundry\'s join page says no world is running: name the world in x-world-name to launch it')
    }
    if (state === 'unknown') {
      const version = (await this.status())?.version ?? 'this version'
      throw this.fail(JoinFormUnknown, `Foundry ${version}'s join page has a login form this service does not recognise (neither a user list nor a user name field): please report it with your Foundry version`)
    }

    const form = await this.page.evaluate(pageFunction('join', 'users')) as Array<{ id: string, name: string, active: boolean }>
    const user = matchUser(form, username)
    if (user === undefined) {
      throw this.fail(UserNotFound, `User "${username}" does not exist in this world: use the user name exactly as Foundry's join page shows it`)
    }
    if (user.active && this.params.loginIfActive !== true) {
      throw this.fail(UserAlreadyActive, `User "${user.name}" is already logged in elsewhere (Foundry's join page shows it as active). Log that browser out, or start the session with "loginIfActive": true to log in anyway (Foundry allows it)`)
    }
    // v14 from build 367 posts `userId` (its join page has a user name
    // field); earlier versions post `userid`. Foundry answers the wrong key
    // with "user does not exist": then the other key is tried once, so an
    // unknown build degrades to a clear error, not a wrong login.
    const keys = state === 'text' ? ['userId', 'userid'] : ['userid', 'userId']
    let res = await this.fetchJson('join', { [keys[0]]: user.id, password, action: 'join' })
    if (res.status === 401 && foundryMessage(res.text) === 'JOIN.ErrorUserDoesNotExist') {
      res = await this.fetchJson('join', { [keys[1]]: user.id, password, action: 'join' })
    }
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
      throw this.fail(LoginLost, `Foundry accepted the login but sent the browser to ${this.pagePath() ?? 'another site'} instead of the game`)
    }
  }

  private async game (): Promise<LoginResult> {
    this.enter('game-load')
    // The /game skeleton (#interface, #board…) exists long before the game
    // is ready: only game.ready says it is.
    await this.waitIn(['game', 'ready'],
      { timeout: this.opts.timeouts.gameReady, what: 'game.ready', stayOn: '/game' })
    const info = await this.page.evaluate(pageFunction('game', 'info')) as WorldInfo
    const { worldName } = this.params
    if (worldName !== undefined && worldName !== '' &&
        matchWorld([{ id: info.worldId, title: info.worldTitle }], worldName) === undefined) {
      throw this.fail(WorldMismatch, `Foundry loaded world "${info.worldTitle}", not "${worldName}"`)
    }
    if (this.params.requireModule === false) {
      return { ...info, clientId: null, moduleProtocol: null, relayUrl: '', customName: '' }
    }
    if (info.role !== 4) {
      const what = info.role === 3 ? 'an Assistant GM' : 'not a Gamemaster'
      throw this.fail(NotGamemaster, `User "${info.userName}" is ${what} (role ${info.role}); the REST API module connects to its relay only for a Gamemaster (role 4). Log in as a Gamemaster, or send "requireModule": false to keep the world logged in without the module`)
    }
    return { ...info, ...await this.moduleConnection(info) }
  }

  private async moduleConnection (info: WorldInfo): Promise<{ clientId: string, moduleProtocol: 2 | 3, relayUrl: string, customName: string }> {
    this.enter('module-connection')
    const socketPath = new URL('socket.io/', this.base).pathname
    const isModule = (c: WsConnection): boolean => {
      if (c.url.pathname === socketPath) return false // Foundry's own socket
      const id = c.url.searchParams.get('id')
      if (id === null || id === '') return false
      const worldId = c.url.searchParams.get('worldId')
      return worldId === null || worldId === info.worldId
    }
    const isV3 = (c: WsConnection): boolean => c.url.pathname.endsWith('/relay')
    // Module 3.x authenticates with its first message: wait for the relay's
    // auth-success. Module 2.x is in once the upgrade is accepted. A close
    // code that says why the relay refused ends the wait at once.
    const REFUSALS = new Set([4004, 1008, 4001, 4002])
    const settled = (c: WsConnection): boolean => isModule(c) && (
      (isV3(c) ? c.authSucceeded : c.status === 101 && c.closeCode === undefined) ||
      (c.closeCode !== undefined && REFUSALS.has(c.closeCode)))
    let conn: WsConnection
    try {
      conn = await this.ws!.waitFor(settled, this.opts.timeouts.moduleConnect, this.opts.signal)
    } catch (err) {
      if (!(err instanceof WsWaitTimeout)) throw err
      throw this.fail(ModuleNotConnected, `${await this.whyNoModule(info, isModule)} Waited ${Math.round(this.opts.timeouts.moduleConnect / 1000)} s`)
    }
    if (!isV3(conn) && conn.closeCode === undefined) {
      // Accepted upgrade: a refusal would close it at once.
      const stableMs = this.opts.timeouts.moduleStable ?? 250
      conn = await this.ws!.waitFor((c) => c.requestId === conn.requestId && c.closeCode !== undefined, stableMs, this.opts.signal)
        .catch((err: unknown) => { if (err instanceof WsWaitTimeout) return conn; throw err })
      if (conn.closed && conn.closeCode === undefined) conn.closeCode = 1006
    }
    if (conn.closeCode !== undefined && !REFUSALS.has(conn.closeCode)) {
      throw this.fail(ModuleNotConnected, `The relay closed the module's connection at once (close ${conn.closeCode}): check the relay URL in the module's settings and that the relay is running`)
    }
    if (conn.closeCode === 4004) {
      throw this.fail(ModuleConnectionTaken, 'The relay refused the module\'s connection (close 4004): another browser of this world already holds it. Close the other browser\'s session (or end the other headless session), then start again')
    }
    if (conn.closeCode !== undefined && REFUSALS.has(conn.closeCode)) {
      throw this.fail(ModuleTokenRefused, `The relay refused the module's connection token (close ${conn.closeCode}): pair the world with the relay again and send the new token as encryptedConnectionToken`)
    }
    const { url } = conn
    return {
      clientId: url.searchParams.get('id') ?? '',
      moduleProtocol: isV3(conn) ? 3 : 2,
      relayUrl: `${url.protocol}//${url.host}${url.pathname}`,
      customName: url.searchParams.get('customName') ?? ''
    }
  }

  /** Explain a module that never connected, from what the page shows. */
  private async whyNoModule (info: WorldInfo, isModule: (c: WsConnection) => boolean): Promise<string> {
    const seen = this.ws!.connections().filter(isModule)
    if (seen.length > 0) {
      return 'The module opened a relay connection but the relay did not accept it: check the module\'s relay URL and, for module 3.x, the connection token.'
    }
    const other = await this.page.evaluate(pageFunction('game', 'otherPrimaryGm'), info.userId).catch(() => false)
    if (other) {
      return 'Another Gamemaster is logged into this world and holds the module\'s relay connection (module 2.x connects only for the primary GM, the active GM with the lowest user id). Log the other GM out, or log in as that GM.'
    }
    const hasToken = this.params.connectionToken !== undefined && this.params.connectionToken !== ''
    return 'The REST API module never opened a relay connection. Usual causes: the module is not active in this world; its relay URL is not set' +
      (hasToken ? '' : '; module 3.x needs a connection token (send encryptedConnectionToken)') +
      '; or another Gamemaster holds the connection.'
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
    let res: HTTPResponse | null
    try {
      res = await this.page.goto(url, { waitUntil: 'domcontentloaded' })
    } catch (err) {
      // The page's own script may navigate at the same moment (setup after
      // a launch): ours is aborted. Go again once.
      if (!/net::ERR_ABORTED/.test((err as Error).message)) throw err
      res = await this.page.goto(url, { waitUntil: 'domcontentloaded' })
    }
    const status = res?.status() ?? 0
    if (status >= 500) {
      throw this.fail(FoundryError, `Foundry answered HTTP ${status} on ${this.pagePath() ?? url}: check the Foundry server's own log`)
    }
    return res
  }

  private async status (): Promise<{ active?: boolean, version?: string, world?: string } | null> {
    const url = new URL('api/status', this.base).href
    return await this.page.evaluate(pageFunction('common', 'status'), url) as { active?: boolean, version?: string, world?: string } | null
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
    return await this.page.evaluate(pageFunction('common', 'postJson'), url, body) as { status: number, text: string }
  }

  /**
   * Wait for a condition evaluated in the page and return its truthy value.
   * A navigation destroys the page's context mid-wait: then wait again in
   * the new document, unless the page has left the route `w.stayOn`.
   */
  private async waitIn (call: PageCall, w: { timeout: number, what: string, stayOn?: string, polling?: number }, ...args: unknown[]): Promise<unknown> {
    const deadline = Date.now() + w.timeout
    for (;;) {
      this.checkAborted()
      const left = deadline - Date.now()
      if (left <= 0) {
        throw this.fail(FoundryTimeout, `Timed out after ${Math.round(w.timeout / 1000)} s ${STAGE_WHAT[this.stage]}: waited for ${w.what} on ${this.pagePath() ?? 'the page'}`)
      }
      try {
        const handle = await this.page.waitForFunction(pageFunction(...call), { timeout: left, polling: w.polling ?? 100 }, ...args)
        const value = await handle.jsonValue().catch(() => true)
        await handle.dispose().catch(() => {})
        return value
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

  /** The newest error notification Foundry shows, if any. */
  private async errorNotice (): Promise<string> {
    return await this.page.evaluate(pageFunction('common', 'lastError'), true).then((t) => foundryMessage(String(t)), () => '')
  }

  /** Turn a navigation or protocol error into a client-facing one. */
  private translate (err: Error): ServiceError {
    const msg = err.message ?? ''
    const net = /net::(ERR_[A-Z_]+)/.exec(msg)?.[1]
    if (net !== undefined) {
      if (net === 'ERR_BLOCKED_BY_CLIENT') {
        return this.fail(FoundryUrlRefused, `The browser was sent to an address this service's FOUNDRY_URL_POLICY refuses (from ${this.pagePath() ?? this.base.host}): check x-foundry-url and where that server redirects`)
      }
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

// The entry point, loginToFoundry(page, params, opts), and the router that
// follows Foundry's own redirects from page to page (reach.ts, setup.ts,
// players.ts, join.ts, game.ts, module-connection.ts) until the game is
// ready and the module connected. Every wait is on a condition, bounded by a
// timeout; there is no fixed sleep.
import type { Page } from 'puppeteer-core'
import { FoundryError, FoundryUnreachable, SessionCancelled } from '../errors.ts'
import { watchWebSockets } from '../browser/websockets.ts'
import { Driver, isServiceError } from './driver.ts'
import { game } from './game.ts'
import { join } from './join.ts'
import { moduleConnection } from './module-connection.ts'
import { pageFunction } from './page-scripts.ts'
import { playersGate } from './players.ts'
import { adminAuth, licence, notFoundryOr } from './reach.ts'
import { launchWorld } from './setup.ts'
import { CONNECTION_TOKEN_KEY, type LoginOptions, type LoginParams, type LoginResult } from './types.ts'

/** Page loads a login may take before it counts as a redirect loop. */
const MAX_STEPS = 8

/**
 * Log `params.username` into the Foundry world at `params.foundryUrl` in
 * `page` (a page of a fresh browser context), and wait for the REST API
 * module's relay connection.
 */
export async function loginToFoundry (page: Page, params: LoginParams, opts: LoginOptions): Promise<LoginResult> {
  const d = new Driver(page, params, opts)
  const unwatch = d.watchNavigations()
  try {
    page.setDefaultNavigationTimeout(opts.timeouts.navigation)
    page.setDefaultTimeout(opts.timeouts.navigation)
    // Foundry reportedly logs an error below 1366×768.
    await page.setViewport({ width: 1366, height: 768 })
    d.ws = await watchWebSockets(page)
    if (params.connectionToken !== undefined && params.connectionToken !== '') {
      // Before any Foundry script runs, on Foundry's origin only.
      await page.evaluateOnNewDocument(pageFunction('document', 'seedConnectionToken'), d.base.origin, CONNECTION_TOKEN_KEY, params.connectionToken)
    }
    d.enter('reach')
    await d.goto(d.base.href)
    // Follow Foundry's own routing until the game page. Each step moves the
    // page forward; too many means Foundry keeps sending us back.
    for (let step = 0; step < MAX_STEPS; step++) {
      d.checkAborted()
      const route = d.route()
      switch (route) {
        case '/license': licence(d); break
        case '/auth': await adminAuth(d); break
        case '/players': await playersGate(d); break
        case '/setup': await launchWorld(d); break
        case '/join': await join(d); break
        case '/game': return await inGame(d)
        default: await notFoundryOr(d, route)
      }
    }
    throw d.fail(FoundryError, 'Foundry kept redirecting without reaching the game page')
  } catch (err) {
    if (opts.signal?.aborted === true) throw new SessionCancelled()
    // The egress gate refused the main frame's navigation (Foundry's URL or
    // a redirect it followed): that is why, whatever failed after it. A
    // name that does not resolve is waited for; an address the URL policy
    // refuses is not. What the page's own scripts and sub-resources were
    // refused (a module's analytics) is reported by the gate, never the
    // login's error.
    const refused = d.refusedNavigation()
    if (refused !== undefined) throw refused.reason === 'unresolvable' ? d.unresolvable(refused.target) : d.refusedUrl(refused)
    if (isServiceError(err)) throw err
    throw d.translate(err as Error)
  } finally {
    unwatch()
    await d.ws?.detach()
  }
}

async function inGame (d: Driver): Promise<LoginResult> {
  const info = await game(d)
  const module = d.params.requireModule === false ? { clientId: null, customName: '' } : await moduleConnection(d, info)
  foundryStillThere(d)
  return { ...info, ...module }
}

/**
 * Foundry's /game page keeps its data from the moment the world's data
 * arrived: if the server stops after that, game.ready still comes, and the
 * module (whose relay is elsewhere) still connects. The page's own socket to
 * Foundry says whether the server is still there: a login is only a success
 * while it is open.
 */
function foundryStillThere (d: Driver): void {
  const path = d.socketPath()
  const own = d.ws!.connections().filter((c) => c.url.pathname === path)
  const last = own.at(-1)
  if (last !== undefined && last.closed) {
    throw d.fail(FoundryUnreachable, `Foundry closed the game page's connection while the world loaded (close ${last.closeCode ?? 1006}): the server stopped or restarted. Start again once it runs`)
  }
}

// The limit for the login benchmark: a bare puppeteer script doing the same
// login as the service, step by step, with nothing around it (no API, no
// handshake, no registry, no error translation, no stage tracking).
//   page → Foundry root → (setup: POST launchWorld, poll /api/status, /join)
//   → join form ready → POST /join (JSON) → /game → game.ready → the REST
//   API module's relay WebSocket upgraded (101). Pages are taken as loaded
//   at DOMContentLoaded and conditions polled at every animation frame
//   (puppeteer's defaults for waitForFunction), the fastest a script can see them.
import type { Browser, Page } from 'puppeteer-core'
import { launchChromium, resolveChromium } from '../lib/browser/chromium.ts'
import { DEFAULT_PAGE_SETUP, preparePage } from '../lib/browser/page-setup.ts'
import { cpuSeconds } from './lib.ts'

export interface BareLogin {
  url: string
  username: string
  password: string
  /** World to launch when Foundry is on /setup. */
  worldId?: string
  timeoutMs?: number
  /**
   * After the upgrade, wait this long for the relay not to close the
   * connection (the service's check for a refused module 2.x connection,
   * close 4004, in lib/foundry/module-connection.ts: MODULE_STABLE_MS, 250 ms). Default 0.
   */
  stableMs?: number
}

export async function bareLogin (page: Page, a: BareLogin): Promise<{ clientId: string, connectedAt: number }> {
  const timeout = a.timeoutMs ?? 30_000
  page.setDefaultTimeout(timeout)
  page.setDefaultNavigationTimeout(timeout)
  await page.setViewport({ width: 1366, height: 768 })

  // The module's relay connection, seen through the DevTools protocol.
  const cdp = await page.createCDPSession()
  const urls = new Map<string, string>()
  let onModule: (c: { id: string, requestId: string }) => void = () => {}
  const moduleConnected = new Promise<{ id: string, requestId: string }>((resolve) => { onModule = resolve })
  const closed = new Set<string>()
  let onClose: () => void = () => {}
  cdp.on('Network.webSocketCreated', (e) => { urls.set(e.requestId, e.url) })
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
    const u = urls.get(e.requestId)
    if (u === undefined || e.response.status !== 101) return
    const id = new URL(u).searchParams.get('id')
    if (id !== null && id !== '') onModule({ id, requestId: e.requestId })
  })
  cdp.on('Network.webSocketClosed', (e) => { closed.add(e.requestId); onClose() })
  await cdp.send('Network.enable')

  const base = new URL(a.url)
  const go = async (url: string): Promise<void> => { await page.goto(url, { waitUntil: 'domcontentloaded' }) }
  await go(base.href)
  if (new URL(page.url()).pathname.endsWith('/setup')) {
    await page.waitForSelector('#worlds-list')
    await page.evaluate(async (world: string) => {
      await fetch('setup', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action: 'launchWorld', world }) })
    }, a.worldId ?? '')
    const status = new URL('api/status', base).href
    await go(status)
    await page.waitForFunction(async (url: string, id: string) => {
      const s = await (await fetch(url, { cache: 'no-store' })).json() as { active?: boolean, world?: string }
      return s.active === true && s.world === id
    }, { polling: 100 }, status, a.worldId ?? '')
    await go(new URL('join', base).href)
  }
  await page.waitForFunction(() => {
    const users = (globalThis as { game?: { users?: { size?: number } } }).game?.users
    return (users?.size ?? 0) > 0 && document.querySelector('select[name=userid] option[value]:not([value=""]), #join-username') !== null
  })
  const redirect = await page.evaluate(async (username: string, password: string) => {
    type U = { id: string, name: string }
    const users = (globalThis as unknown as { game: { users: { contents: U[] } } }).game.users.contents
    const user = users.find((u) => u.name === username)
    const key = document.querySelector('#join-username') !== null ? 'userId' : 'userid'
    const res = await fetch('join', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ [key]: user?.id ?? '', password, action: 'join' })
    })
    const body = await res.json() as { status?: string, redirect?: string }
    if (body.status !== 'success') throw new Error(`join refused: ${res.status}`)
    return body.redirect ?? 'game'
  }, a.username, a.password)
  await go(new URL(redirect, page.url()).href)
  await page.waitForFunction(() => (globalThis as { game?: { ready?: boolean } }).game?.ready === true)
  const conn = await Promise.race([
    moduleConnected,
    new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('module never connected')), timeout).unref())
  ])
  const connectedAt = performance.now()
  if ((a.stableMs ?? 0) > 0) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, a.stableMs)
      onClose = () => { if (closed.has(conn.requestId)) { clearTimeout(timer); resolve() } }
    })
    if (closed.has(conn.requestId)) throw new Error('the relay closed the module connection')
  }
  await cdp.detach().catch(() => {})
  return { clientId: conn.id, connectedAt }
}

/**
 * One heavy-/game login in a bare browser launched like the service's
 * (lib/browser/chromium.ts, plus `flags`), its page set up like the
 * service's: what bench/flag-screen.ts and bench/renderer-memory.ts measure.
 */
export async function bareSession (foundry: { url: string, username: string, password: string }, flags: string[]): Promise<{
  browser: Browser, page: Page, browserPid: number, clientId: string, loginMs: number, loginCpuS: number
}> {
  const browser = await launchChromium(await resolveChromium({ args: flags }))
  for (const p of await browser.pages()) await p.close()
  const page = await (await browser.createBrowserContext()).newPage()
  await preparePage(page, DEFAULT_PAGE_SETUP)
  const browserPid = browser.process()!.pid!
  const c0 = cpuSeconds(browserPid)
  const t0 = performance.now()
  const { clientId } = await bareLogin(page, { ...foundry, timeoutMs: 180_000 })
  return { browser, page, browserPid, clientId, loginMs: performance.now() - t0, loginCpuS: cpuSeconds(browserPid) - c0 }
}

// Helpers for the stand-in's own tests: one Chromium per test file, a fresh
// browser context per test, everything closed in teardown.
import type { Browser, BrowserContext, Page } from 'puppeteer-core'
import { launchChromium, resolveChromium } from '../../lib/browser/chromium.ts'
import type { StandinUser, StandinWorld } from './standin.ts'

interface TapLike { teardown: (fn: () => unknown) => void }

let resolved: Awaited<ReturnType<typeof resolveChromium>> | null = null

export async function fileBrowser (t: TapLike): Promise<Browser> {
  resolved ??= await resolveChromium()
  const browser = await launchChromium(resolved)
  t.teardown(async () => { await browser.close().catch(() => {}) })
  return browser
}

export interface PageOptions {
  /** Set localStorage['core.noCanvas'] = 'true' before any page script. */
  noCanvas?: boolean
  /** localStorage entries to seed (values stored as given). */
  localStorage?: Record<string, string>
}

export async function freshPage (t: TapLike, browser: Browser, opts: PageOptions = {}): Promise<{ context: BrowserContext, page: Page }> {
  const context = await browser.createBrowserContext()
  t.teardown(async () => { await context.close().catch(() => {}) })
  const page = await context.newPage()
  await page.setViewport({ width: 1366, height: 768 })
  const seed: Record<string, string> = { ...(opts.localStorage ?? {}) }
  if (opts.noCanvas === true) seed['core.noCanvas'] = 'true'
  if (Object.keys(seed).length > 0) {
    await page.evaluateOnNewDocument((entries: Record<string, string>) => {
      for (const [k, v] of Object.entries(entries)) window.localStorage.setItem(k, v)
    }, seed)
  }
  return { context, page }
}

export const GM: StandinUser = { id: 'aaaaaaaaaaaaaaa1', name: 'Gamemaster', role: 4, password: 'gm-pass' }
export const GM2: StandinUser = { id: 'ccccccccccccccc3', name: 'Second GM', role: 4, password: '' }
export const PLAYER: StandinUser = { id: 'bbbbbbbbbbbbbbb2', name: 'Player One', role: 1, password: '' }
export const ASSISTANT: StandinUser = { id: 'ddddddddddddddd4', name: 'Assistant', role: 3, password: 'a' }
export const BANNED: StandinUser = { id: 'eeeeeeeeeeeeeee5', name: 'Banned', role: 0, password: '' }

export function makeWorld (id = 'world-one', users: StandinUser[] = [GM, PLAYER, GM2, ASSISTANT, BANNED], extra: Partial<StandinWorld> = {}): StandinWorld {
  return { id, title: `Title of ${id}`, system: { id: 'dnd5e', title: 'Dungeons & Dragons Fifth Edition', version: '5.0.4' }, users, ...extra }
}

/** game.ready on the current page (false if game is missing). */
export async function isReady (page: Page): Promise<boolean> {
  return await page.evaluate(() => (window as unknown as { game?: { ready?: boolean } }).game?.ready === true)
}

export async function waitReady (page: Page, timeout = 10000): Promise<void> {
  await page.waitForFunction(() => (window as unknown as { game?: { ready?: boolean } }).game?.ready === true, { timeout })
}

/** Log in through the page's own form (v12–v14.365 select variant, or v11). */
export async function loginWithForm (page: Page, userId: string, password: string): Promise<void> {
  await page.waitForSelector('select[name=userid]', { timeout: 10000 })
  await page.select('select[name=userid]', userId)
  await page.type('#join-game input[name=password]', password)
  await Promise.all([
    page.waitForNavigation({ timeout: 10000 }),
    page.click('#join-game button[name=join]')
  ])
}

/** Last error notification text on the page, or null. */
export async function lastError (page: Page): Promise<string | null> {
  return await page.evaluate(() => {
    const all = document.querySelectorAll('#notifications .notification.error')
    return all.length === 0 ? null : (all[all.length - 1]?.textContent ?? null)
  })
}

/** Poll until fn returns a truthy value. */
export async function until<T> (fn: () => T | Promise<T>, timeoutMs = 10000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

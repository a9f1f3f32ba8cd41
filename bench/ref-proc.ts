// The references of the memory and density benchmarks, as a child process so
// that its tree can be measured like the service's. Each login is the bare
// script (bench/bare-login.ts); Chromium is launched through lib/browser/chromium.ts
// like the service's, with CHROMIUM_ARGS added the same way.
//   REF_MODE=browsers (default): what older implementations do, one whole
//     Chromium per session, plain page.
//   REF_MODE=contexts: a bare browser holding the same logins as the
//     service: one Chromium, a context per login, the page tuned as the
//     service's (no canvas, no images/media/fonts) but nothing watching it
//     (no URL guard, no session watcher, no timers).
import './chromium-drop.ts'
import type { Browser } from 'puppeteer-core'
import { launchChromium, resolveChromium } from '../lib/browser/chromium.ts'
import { DEFAULT_PAGE_SETUP, preparePage } from '../lib/browser/page-setup.ts'
import { bareLogin } from './bare-login.ts'

const mode = process.env.REF_MODE === 'contexts' ? 'contexts' : 'browsers'
const browsers: Browser[] = []
const resolved = await resolveChromium({
  executablePath: process.env.CHROMIUM_PATH ?? '',
  args: (process.env.CHROMIUM_ARGS ?? '').split(/\s+/).filter((a) => a !== '')
})
let shared: Promise<Browser> | undefined
if (mode === 'contexts') {
  shared = launchChromium(resolved)
  browsers.push(await shared)
}

async function open (m: { url: string, username: string, password: string }): Promise<{ ms: number, clientId: string }> {
  const t = performance.now()
  let page
  if (shared !== undefined) {
    const context = await (await shared).createBrowserContext()
    page = await context.newPage()
    await preparePage(page, DEFAULT_PAGE_SETUP)
  } else {
    const browser = await launchChromium(resolved)
    browsers.push(browser)
    page = (await browser.pages())[0] ?? await browser.newPage()
  }
  const r = await bareLogin(page, m)
  return { ms: performance.now() - t, clientId: r.clientId }
}

async function close (): Promise<void> {
  await Promise.all(browsers.map(async (b) => await b.close().catch(() => { b.process()?.kill('SIGKILL') })))
  process.exit(0)
}

process.on('message', (m: { type: string, id?: number, url: string, username: string, password: string }) => {
  if (m.type === 'close') { void close(); return }
  if (m.type === 'open') {
    open(m).then((r) => process.send?.({ id: m.id, ...r }), (err: Error) => process.send?.({ id: m.id, error: err.message }))
  }
})
process.on('disconnect', () => { void close() })
process.send?.({ ready: { pid: process.pid } })

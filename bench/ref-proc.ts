// The memory benchmark's reference: what older implementations do, one
// whole Chromium per session (launched through lib/chromium.ts like the
// service's), each logged in by the bare script. A child process, so that
// its tree can be measured like the service's.
import type { Browser } from 'puppeteer-core'
import { launchChromium, resolveChromium } from '../lib/chromium.js'
import { bareLogin } from './bare-login.js'

const browsers: Browser[] = []
const resolved = await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' })

async function open (m: { url: string, username: string, password: string }): Promise<{ ms: number }> {
  const t = performance.now()
  const browser = await launchChromium(resolved)
  browsers.push(browser)
  const [page] = await browser.pages()
  await bareLogin(page ?? await browser.newPage(), m)
  return { ms: performance.now() - t }
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

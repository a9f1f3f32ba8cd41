// The console in real Chromium at a phone's width (390 px) and at desktop
// widths: the page never scrolls sideways and each table (its buttons
// included) stays inside its card, with a running, an ended and a failed
// session listed. Also what webhooks tell, shown in the page: a session
// started from the form with a webhook URL (the signing secret shown once
// verifies the webhook), its events listed as they happen (reconnecting,
// recovered, ended). CONSOLE_LAYOUT_SCREENSHOTS=dir saves a picture per width.
import t from 'tap'
import { join } from 'node:path'
import type { Page } from 'puppeteer-core'
import { Webhook } from 'standardwebhooks'
import { API_KEY, build } from '../helper.ts'
import { fileBrowser, freshPage } from '../../support/foundry/browser.ts'
import { GM, WORLD, endSession, foundry, listSessions, startSession } from './fixtures.ts'
import { payload, startReceiver } from '../webhooks/receiver.ts'

interface Fit { width: number, scrollWidth: number, innerWidth: number, tables: Array<{ id: string, right: number, cardRight: number, buttonsRight: number }> }

/** Where the page and its tables end, against the viewport and their cards. */
async function measure (page: Page): Promise<Fit> {
  return await page.evaluate<[], () => Fit>(`(() => {
    const tables = [...document.querySelectorAll('table')].filter((tb) => !tb.hidden).map((tb) => {
      const card = tb.closest('section')
      const cs = getComputedStyle(card)
      const buttons = [...tb.querySelectorAll('button')].map((b) => b.getBoundingClientRect().right)
      return {
        id: tb.id,
        right: tb.getBoundingClientRect().right,
        cardRight: card.getBoundingClientRect().right - parseFloat(cs.borderRightWidth),
        buttonsRight: Math.max(0, ...buttons)
      }
    })
    return { width: innerWidth, scrollWidth: document.documentElement.scrollWidth, innerWidth, tables }
  })()`)
}

t.test('the console fits every width; it shows the events webhooks tell of', async (t) => {
  const { app } = await build(t, { WEBHOOK_RETRY_BASE_MS: 100 })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const { standin } = await foundry(t)
  const r = await startReceiver(t)

  // An ended and a failed session, through the API.
  const ended = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(ended.statusCode, 200, ended.body)
  await endSession(app, ended.json().sessionId)
  const failed = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: 'not-the-password' })
  t.equal(failed.statusCode, 422)

  const browser = await fileBrowser(t)
  const { page } = await freshPage(t, browser)
  await page.setViewport({ width: 1280, height: 800 })
  const problems: string[] = []
  page.on('pageerror', (e) => { problems.push(`page error: ${(e as Error).message}`) })
  await page.goto(`${base}/console/`)
  await page.locator('::-p-aria(API key)').fill(API_KEY)
  await page.locator('::-p-aria(Foundry URL)').fill(standin.url)
  await page.locator('::-p-aria(User name)').fill(GM.name)
  await page.locator('::-p-aria(World)').fill(WORLD.title)
  await page.locator('::-p-aria(Password)').fill(GM.password)
  const hookPath = '/api/hooks/console-token-Kd8s'
  await page.locator('::-p-aria(Webhook URL)').fill(`${r.url}${hookPath}`)
  await page.locator('::-p-aria(Start session)').click()
  await page.waitForFunction('document.querySelector("#result code.secret") !== null', { timeout: 60_000 })
  const secret = await page.$eval('#result code.secret', (e) => e.textContent ?? '')
  t.match(secret, /^whsec_/, 'the signing secret is shown once')
  t.equal(await page.$eval('::-p-aria(Webhook URL)', (e) => (e as HTMLInputElement).value), '', 'the webhook URL is cleared from the page')
  await page.waitForFunction('document.querySelectorAll("#sessions tbody tr").length === 1 && document.querySelectorAll("#ended tbody tr").length === 2', { timeout: 30_000 })
  t.same(await page.$$eval('#ended button', (bs) => bs.map((b) => b.textContent)), ['Remove'], 'the failed session has its Remove button')

  for (const [width, height] of [[1280, 800], [1024, 768], [800, 900], [390, 844]] as const) {
    t.test(`${width} px wide`, async (t) => {
      await page.setViewport({ width, height, isMobile: width < 500, hasTouch: width < 500, deviceScaleFactor: 1 })
      await new Promise((resolve) => setTimeout(resolve, 300))
      const fit = await measure(page)
      t.ok(fit.scrollWidth <= fit.innerWidth, `no sideways scroll: page ${fit.scrollWidth} px in a ${fit.innerWidth} px viewport`)
      t.equal(fit.tables.length, 2, 'both tables shown')
      for (const tb of fit.tables) {
        t.ok(tb.right <= tb.cardRight + 0.5, `#${tb.id} ends at ${tb.right}, inside its card (${tb.cardRight})`)
        t.ok(tb.buttonsRight <= tb.cardRight + 0.5, `#${tb.id}'s buttons end at ${tb.buttonsRight}, inside its card (${tb.cardRight})`)
      }
      if (process.env.CONSOLE_LAYOUT_SCREENSHOTS !== undefined) {
        await page.screenshot({ path: join(process.env.CONSOLE_LAYOUT_SCREENSHOTS, `console-${width}.png`) as `${string}.png`, fullPage: true })
      }
    })
  }

  t.test('the events list shows reconnecting, recovered and ended as they happen; the webhook verifies with the secret shown', async (t) => {
    await page.setViewport({ width: 1280, height: 800 })
    const sessionId = ((await listSessions(app)).activeSessions[0]!.id) as string
    // Down long enough (several backoff steps) that the reconnecting state is
    // seen on a loaded machine too, even by a stream the console reopens.
    await standin.restart({ downMs: 6000 })
    await page.waitForFunction(`[...document.querySelectorAll('#events li')].some((li) => li.dataset.sessionId === ${JSON.stringify(sessionId)} && li.textContent.includes('reconnecting:'))`, { timeout: 30_000 })
    await page.waitForFunction('[...document.querySelectorAll(\'#events li\')].some((li) => li.textContent.includes(\'recovered:\'))', { timeout: 60_000 })
    // The row settled after the recovery (active, module connected): events re-render the table, and
    // a row that changes height under the pointer between finding the button and clicking it is missed.
    await page.waitForFunction(`(() => {
      const row = document.querySelector('#sessions tr[data-session-id=${JSON.stringify(sessionId)}]')
      const cell = (label) => row?.querySelector('td[data-label="' + label + '"]')?.firstChild?.textContent
      return cell('Status') === 'active' && cell('Module') === 'connected'
    })()`, { timeout: 30_000 })
    await page.locator(`::-p-aria(End ${WORLD.title} ${GM.name})`).click()
    await page.waitForFunction('[...document.querySelectorAll(\'#events li\')].some((li) => li.textContent.includes(\'ended: ended by the client\'))', { timeout: 30_000 })
    const lines = await page.$$eval('#events li', (lis) => lis.map((li) => li.textContent ?? ''))
    t.match(lines[0], /Lost Mine of Phandelver \(Gamemaster\) ended: ended by the client/, lines.join('\n'))
    const hook = await r.wait(hookPath, (x) => payload(x).type === 'session.ended')
    t.doesNotThrow(() => new Webhook(secret).verify(hook.body, hook.headers as Record<string, string>), 'verified with the secret the page showed')
    t.same(problems, [])
  })
})

// The console at /console, in real Chromium against the service and the
// Foundry stand-in, used as a person uses it: fields found by their labels,
// buttons by their names. CONSOLE_SCREENSHOT=path saves a picture of it
// with a session running (docs/console.png in the README).
import t from 'tap'
import type { Page } from 'puppeteer-core'
import { API_KEY, build } from '../helper.ts'
import { fileBrowser, freshPage } from '../../support/foundry/browser.ts'
import { GM, WORLD, foundry, listSessions } from './fixtures.ts'

// One Chromium for the file; each test makes its page in a context of its own.
const browser = await fileBrowser(t)

/** Text of each row of a table of the console. */
async function rows (page: Page, table: 'sessions' | 'ended'): Promise<string[]> {
  return await page.$$eval(`#${table} tbody tr`, (trs) => trs.map((tr) => tr.textContent ?? ''))
}

/** Wait until a row of `table` holds every one of `texts`. */
async function rowWith (page: Page, table: 'sessions' | 'ended', ...texts: string[]): Promise<void> {
  await page.waitForFunction(
    `[...document.querySelectorAll('#${table} tbody tr')].some((tr) => ${JSON.stringify(texts)}.every((x) => tr.textContent.includes(x)))`,
    { timeout: 30_000, polling: 100 })
}

t.test('start, watch and end a session from a browser', async (t) => {
  const { app, logs } = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const { standin, relay } = await foundry(t)
  const { page } = await freshPage(t, browser)
  await page.setViewport({ width: 1280, height: 760 })
  const problems: string[] = []
  page.on('pageerror', (e) => { problems.push(`page error: ${(e as Error).message}`) })
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`) })
  await page.evaluateOnNewDocument('document.addEventListener(\'securitypolicyviolation\', (e) => console.error(\'CSP violation: \' + e.violatedDirective))')

  const res = await page.goto(`${base}/console`)
  t.equal(res?.status(), 200)
  t.equal(new URL(page.url()).pathname, '/console/')
  t.match(res?.headers()['content-security-policy'], /script-src 'self'/, 'served under the strict CSP (no inline script)')

  await page.locator('::-p-aria(API key)').fill(API_KEY)
  await page.locator('::-p-aria(Foundry URL)').fill(standin.url)
  await page.locator('::-p-aria(User name)').fill(GM.name)
  await page.locator('::-p-aria(World)').fill(WORLD.title)
  await page.locator('::-p-aria(Password)').fill(GM.password)
  t.ok(await page.$('::-p-aria(Administrator password)'), 'a labelled field for the administrator password')
  t.ok(await page.$('::-p-aria(Connection token)'), 'a labelled field for the connection token')
  await page.locator('::-p-aria(Start session)').click()

  await rowWith(page, 'sessions', WORLD.title, GM.name, 'active', 'connected')
  const [sessions] = [(await listSessions(app)).activeSessions]
  t.equal(sessions.length, 1, 'one session started')
  const sessionId = sessions[0]!.id as string
  t.match(await page.$eval('#result', (e) => e.textContent), `Foundry session started successfully. Module client id: foundry-${GM.id}.`)
  t.same(await page.$$eval('#stages li', (lis) => lis.map((li) => li.getAttribute('data-stage'))),
    ['reach', 'join', 'game-load', 'module-connection'], 'the login\'s stages, as they happened')
  t.equal(await page.$eval('::-p-aria(Password)', (e) => (e as HTMLInputElement).value), '', 'the password is cleared from the page')
  t.equal(await page.evaluate('sessionStorage.getItem("foundry-sessions.apiKey")'), API_KEY, 'the API key is kept in the tab')
  t.equal(await page.evaluate('localStorage.length'), 0, 'and nowhere else')
  if (process.env.CONSOLE_SCREENSHOT !== undefined) {
    await page.setViewport({ width: 1280, height: 900 })
    await page.evaluate('window.scrollTo(0, 0)')
    await page.screenshot({ path: process.env.CONSOLE_SCREENSHOT as `${string}.png` })
  }

  t.test('a reload keeps the key and shows the session', async (t) => {
    await page.reload()
    await rowWith(page, 'sessions', WORLD.title, 'active')
    t.equal(await page.$eval('::-p-aria(API key)', (e) => (e as HTMLInputElement).value), API_KEY)
  })

  t.test('the session\'s status changes show up by themselves', async (t) => {
    await standin.restart({ downMs: 1500 })
    await rowWith(page, 'sessions', WORLD.title, 'reconnecting')
    await rowWith(page, 'sessions', WORLD.title, 'active', 'connected')
    t.pass('reconnecting, then active again, without a click')
  })

  t.test('End ends it', async (t) => {
    await page.locator(`::-p-aria(End ${WORLD.title} ${GM.name})`).click()
    await page.waitForFunction('document.querySelectorAll("#sessions tbody tr").length === 0', { timeout: 15_000 })
    await rowWith(page, 'ended', WORLD.title, 'ended', 'ended by the client')
    t.match((await listSessions(app)).endedSessions, [{ id: sessionId, status: 'ended' }])
    t.equal(relay.open().length, 0, 'the module connection closed')
  })

  t.test('a wrong password shows Foundry\'s refusal by its code', async (t) => {
    // (The reload above emptied every field but the API key.)
    await page.locator('::-p-aria(Foundry URL)').fill(standin.url)
    await page.locator('::-p-aria(User name)').fill(GM.name)
    await page.locator('::-p-aria(Password)').fill('not-the-password')
    await page.locator('::-p-aria(Start session)').click()
    await page.waitForFunction('document.getElementById("error").textContent !== ""', { timeout: 45_000 })
    t.match(await page.$eval('#error', (e) => e.textContent), /^FOUNDRY_LOGIN_REJECTED .+Stage: Joining the world/,
      await page.$eval('main', (e) => e.textContent?.replace(/\s+/g, ' ')))
    // The failed start leaves the list at once, not at the next slow
    // refresh (15 s), even when a refresh was already on its way.
    t.ok(await page.waitForFunction('document.querySelectorAll("#sessions tbody tr").length === 0', { timeout: 5000, polling: 100 }).then(() => true, () => false),
      `no session listed: ${JSON.stringify(await rows(page, 'sessions'))}`)
  })

  t.test('nothing went wrong in the page, and no secret reached the log', async (t) => {
    t.same(problems.filter((p) => !p.includes('Failed to load resource')), [])
    t.notOk(logs().includes(GM.password))
    t.notOk(logs().includes('not-the-password'))
  })
})

t.test('without an API key the page says what to do', async (t) => {
  const { app } = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const { page } = await freshPage(t, browser)
  await page.goto(`${base}/console/`)
  t.match(await page.$eval('#sessions-note', (e) => e.textContent), 'Enter the API key to see its sessions.')
  await page.locator('::-p-aria(Start session)').click()
  await page.waitForFunction('document.getElementById("error").textContent !== ""')
  t.match(await page.$eval('#error', (e) => e.textContent), 'Fill in: API key, Foundry URL, User name.')
  await page.locator('::-p-aria(API key)').fill('wrong-key')
  await page.keyboard.press('Tab') // change event: the list is fetched with the new key
  await page.waitForFunction('document.getElementById("sessions-note").textContent.includes("API_KEY_INVALID")')
  t.pass('an unknown key shows API_KEY_INVALID')
})

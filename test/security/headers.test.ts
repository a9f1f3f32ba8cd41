// Security headers (helmet) on everything the service serves, and
// the docs page working under them in real Chromium: it renders, its try-it
// console makes a handshake, and no Content-Security-Policy violation is
// reported.
import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import type { ConsoleMessage, HTTPResponse } from 'puppeteer-core'
import { API_KEY, build, NO_LOGIN } from '../helper.ts'

function expectSecurityHeaders (t: Test, headers: Record<string, unknown>, what: string): void {
  const csp = String(headers['content-security-policy'] ?? '')
  t.match(csp, /default-src 'self'/, `${what}: CSP default-src`)
  t.match(csp, /script-src 'self'(;|$)/, `${what}: no inline or foreign scripts`)
  t.match(csp, /frame-ancestors 'none'/, `${what}: CSP forbids framing`)
  t.match(csp, /object-src 'none'/, `${what}: no plugins`)
  t.notMatch(csp, /unsafe-eval/, `${what}: no eval`)
  t.notMatch(/script-src[^;]*/.exec(csp)?.[0] ?? '', /unsafe/, `${what}: no inline scripts`)
  t.equal(headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  t.equal(headers['x-frame-options'], 'DENY', `${what}: X-Frame-Options`)
  t.equal(headers['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`)
}

// One service for both tests; its own Chromium shows the docs page.
const { app, logs } = await build(t, NO_LOGIN)

t.test('every answer carries the headers', async (t) => {
  for (const [method, url, headers] of [
    ['GET', '/docs/', {}],
    ['GET', '/docs', {}],
    ['GET', '/docs/static/swagger-ui-bundle.js', {}],
    ['GET', '/docs/static/swagger-initializer.js', {}],
    ['GET', '/docs/json', {}],
    ['GET', '/health', {}],
    ['GET', '/session', { 'x-api-key': API_KEY }],
    ['GET', '/session', {}],
    ['POST', '/session-handshake', { 'x-api-key': API_KEY }],
    ['GET', '/no-such-route', {}]
  ] as const) {
    const res = await app.inject({ method, url, headers })
    expectSecurityHeaders(t, res.headers, `${method} ${url} (${res.statusCode})`)
  }
})

t.test('the docs page works under its CSP in Chromium', async (t) => {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  // A context of the service's Chromium (none of its sessions' page set-up applies), its gate
  // told that the service's own address is the site it visits (else the service's port is refused).
  const context = await app.browserPool.newContext('docs', { foundryUrl: `${base}/` })
  t.teardown(async () => { await context.close().catch(() => {}) })
  const page = await context.newPage()

  // Every CSP violation, as the page sees it and as Chromium logs it.
  await page.evaluateOnNewDocument(() => {
    const w = window as unknown as { cspViolations: string[] }
    w.cspViolations = []
    document.addEventListener('securitypolicyviolation', (e) => {
      w.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`)
    })
  })
  const consoleErrors: string[] = []
  page.on('console', (m: ConsoleMessage) => { if (m.type() === 'error') consoleErrors.push(m.text()) })
  page.on('pageerror', (e) => { consoleErrors.push(String(e)) })

  const res = await page.goto(`${base}/docs/`, { waitUntil: 'load' })
  t.equal(res?.status(), 200)
  expectSecurityHeaders(t, res?.headers() ?? {}, 'the docs page in Chromium')

  // Swagger UI rendered the operations from /docs/json.
  const summary = await page.waitForSelector('.opblock-summary-path[data-path="/session-handshake"]', { timeout: 30_000 })
  t.ok(summary, 'Swagger UI rendered the API')

  // Authorize with the API key, then try the handshake out.
  await page.click('.btn.authorize')
  await page.type('.auth-container input', API_KEY)
  await page.click('.auth-btn-wrapper .btn.modal-btn.auth')
  await page.click('.auth-btn-wrapper .btn-done')

  await summary?.click()
  const op = '.opblock-post:has(.opblock-summary-path[data-path="/session-handshake"])'
  // tryItOutEnabled: the operation opens ready to execute.
  await page.waitForSelector(`${op} .btn.execute`)
  // The parameter rows render in their own update, not always with the button.
  await (await page.waitForSelector(`${op} tr[data-param-name="x-foundry-url"] input`))!.type('http://127.0.0.1:9/')
  await (await page.waitForSelector(`${op} tr[data-param-name="x-username"] input`))!.type('Gamemaster')
  const answered = page.waitForResponse((r: HTTPResponse) => r.url() === `${base}/session-handshake` && r.request().method() === 'POST')
  await page.click(`${op} .btn.execute`)
  const handshake = await answered
  t.equal(handshake.status(), 200, 'the try-it console made a handshake')
  t.equal(handshake.request().headers()['x-api-key'], API_KEY, 'with the API key from Authorize')
  t.match(await handshake.json(), { token: /^[0-9a-f]{64}$/, publicKey: /BEGIN PUBLIC KEY/ })
  // The console shows the answer.
  const shown = `${op} .live-responses-table tbody .response-col_status`
  await page.waitForSelector(shown)
  t.match(await page.$eval(shown, (e) => e.textContent ?? ''), /200/, 'and shows it')

  const violations = await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)
  t.same(violations, [], 'no CSP violation reported by the page')
  t.same(consoleErrors.filter((m) => /Content Security Policy|Refused to/i.test(m)), [], 'none logged by Chromium')
  t.same(consoleErrors, [], 'no console error at all')
  t.notOk(logs().includes(API_KEY), 'the key did not reach the log')
})

// Ends the file once both tests are done, which closes the shared service.
t.end()

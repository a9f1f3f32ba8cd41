// Page-side code (issue 8 §1): every function the service runs inside a
// Chromium page comes from the plain JavaScript files in lib/foundry/page/,
// loaded exactly as production loads them (pageFunction), and runs in a
// blank page of real Chromium. A source check keeps inline functions (which
// a compiler may rewrite, as tsx's `__name` did) out of puppeteer calls.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WebSocketServer } from 'ws'
import { PAGE_SCRIPTS, pageCallSource, pageFunction, pageScriptSource } from '../../lib/foundry/page-scripts.ts'
import { PAGE_FUNCTIONS } from '../../lib/foundry/page-api.ts'
import { watchWebSockets } from '../../lib/browser/websockets.ts'
import { holdPageCdp } from '../../lib/browser/cdp.ts'
import { fileBrowser, freshPage } from '../../support/foundry/browser.ts'

// One Chromium for the file; each test makes its page in a context of its own.
const browser = await fileBrowser(t)

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

function sourceFiles (dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name)
    if (e.isDirectory()) out.push(...sourceFiles(rel))
    else if (e.name.endsWith('.ts')) out.push(rel)
  }
  return out
}

t.test('every puppeteer call that runs code in a page takes a page script, never an inline function', async (t) => {
  const files = ['app.ts', 'server.ts', ...sourceFiles('lib'), ...sourceFiles('plugins'), ...sourceFiles('routes')]
  const CALL = /\.(evaluate|evaluateHandle|evaluateOnNewDocument|waitForFunction|\$eval|\$\$eval)\(\s*/g
  let calls = 0
  for (const file of files) {
    const src = readFileSync(join(ROOT, file), 'utf8')
    for (const m of src.matchAll(CALL)) {
      calls++
      const rest = src.slice(m.index + m[0].length, m.index + m[0].length + 40)
      const line = src.slice(0, m.index).split('\n').length
      t.ok(/^pageFunction\(/.test(rest), `${file}:${line} ${m[1]}(${rest.split('\n')[0]}…) takes pageFunction(…)`)
    }
  }
  t.ok(calls >= 5, `found the page calls (${calls})`)
})

t.test('the page scripts on disk are the ones the loader knows', async (t) => {
  const onDisk = readdirSync(join(ROOT, 'lib/foundry/page')).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort()
  t.same(onDisk, [...PAGE_SCRIPTS].sort())
  for (const name of PAGE_SCRIPTS) {
    t.equal(pageScriptSource(name), readFileSync(join(ROOT, 'lib/foundry/page', `${name}.js`), 'utf8').trimEnd(), `${name}.js is sent as written`)
    t.notMatch(pageScriptSource(name), /__name|require\(|import /, `${name}.js needs nothing from Node or a bundler`)
  }
  // What puppeteer serialises is the function's source: the files' text.
  const fn = pageFunction('join', 'probe')
  t.ok(fn.toString().includes(pageScriptSource('join')), 'pageFunction\'s source holds join.js verbatim')
  t.ok(fn.toString().includes(pageCallSource('join', 'probe')))
})

t.test('each page script runs in a blank page of real Chromium', async (t) => {
  const { page } = await freshPage(t, browser)
  await page.goto('about:blank')

  // Every function page-api.ts declares (and types the driver's calls by)
  // exists, and no other: evaluate each script's export list.
  for (const name of PAGE_SCRIPTS) {
    const keys = await page.evaluate(`Object.keys((${pageScriptSource(name)})(${name === 'common' ? '' : `(${pageScriptSource('common')})()`}))`)
    t.same(keys, Object.keys(PAGE_FUNCTIONS[name]), `${name}.js exports what page-api.ts declares`)
  }

  // Probes on a page that is none of Foundry's answer "nothing here", not an error.
  t.equal(await page.evaluate(pageFunction('join', 'probe')), false)
  t.equal(await page.evaluate(pageFunction('auth', 'probe')), false)
  t.equal(await page.evaluate(pageFunction('setup', 'ready')), false)
  t.same(await page.evaluate(pageFunction('setup', 'worlds')), [])
  t.equal(await page.evaluate(pageFunction('setup', 'dismissOverlays')), 0)
  t.equal(await page.evaluate(pageFunction('setup', 'launch'), 'w'), false)
  t.equal(await page.evaluate(pageFunction('players', 'ready')), false)
  t.equal(await page.evaluate(pageFunction('players', 'submit')), false)
  t.equal(await page.evaluate(pageFunction('game', 'ready')), false)
  t.match(await page.evaluate(pageFunction('game', 'info')), { userId: '', role: 0, foundryVersion: '' })
  t.equal(await page.evaluate(pageFunction('game', 'otherPrimaryGm'), 'x'), false)
  t.same(await page.evaluate(pageFunction('common', 'users')), [])
  t.equal(await page.evaluate(pageFunction('common', 'lastError'), true), '')
  t.equal(await page.evaluate(pageFunction('join', 'worldTitle')), '')

  // Fed a page: game.users in the shapes Foundry versions use.
  await page.setContent('<header id="main-header"><h1>My World</h1></header><select name="userid"><option value=""></option><option value="u1">GM</option><option value="u2" disabled>Other</option></select><div id="notifications"><p class="notification error">SETUP.WorldLaunchFailure</p></div><input type="password" value="secret">')
  await page.evaluate('globalThis.game = { ready: true, users: { size: 2, contents: [{ id: \'u1\', name: \'GM\', role: 4, active: false }, { _id: \'u2\', name: \'Other\', role: 4, active: false }] } }')
  t.equal(await page.evaluate(pageFunction('join', 'worldTitle')), 'My World')
  t.same(await page.evaluate(pageFunction('join', 'probe')), { kind: 'select' })
  t.same(await page.evaluate(pageFunction('join', 'users')), [{ id: 'u1', name: 'GM', role: 4, active: false }, { id: 'u2', name: 'Other', role: 4, active: true }])
  t.equal(await page.evaluate(pageFunction('game', 'ready')), true)
  t.equal(await page.evaluate(pageFunction('common', 'lastError'), false), 'SETUP.WorldLaunchFailure')
  t.equal(await page.evaluate(pageFunction('setup', 'errorCount')), 1)
  await page.evaluate(pageFunction('common', 'clearPasswords'))
  t.equal(await page.evaluate('document.querySelector("input[type=password]").value'), '', 'password fields emptied')

  // The /players gate is ready once loaded with its form and button.
  await page.setContent('<form id="players-config"><button type="submit" data-action="save">Save and Continue</button></form>')
  t.equal(await page.evaluate(pageFunction('players', 'ready')), true)
})

t.test('the WebSocket watcher, installed as production installs it: accepted, auth-success, close codes 4004 and 1008, and a document that goes', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise((resolve) => wss.once('listening', resolve))
  t.teardown(() => { for (const c of wss.clients) c.terminate(); wss.close() })
  wss.on('connection', (ws, req) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams
    const code = Number(q.get('close'))
    if (code !== 0) { ws.close(code, 'refused'); return }
    // A big frame first (a world's data, which never leaves the page), then the relay's answer.
    if (q.get('auth') === '1') { ws.send('x'.repeat(1 << 20)); ws.send(JSON.stringify({ type: 'auth-success' })) }
  })
  const port = (wss.address() as { port: number }).port
  const { page } = await freshPage(t, browser)
  const watcher = await watchWebSockets(page)
  t.teardown(async () => { await watcher.detach() })
  // The service's own DevTools session (shared with the watcher): no frame crosses it.
  const cdp = await holdPageCdp(page)
  t.teardown(async () => { await cdp.release() })
  let frames = 0
  cdp.on('Network.webSocketFrameReceived', () => { frames++ })
  await page.goto('about:blank')
  await page.evaluate(`new WebSocket('ws://127.0.0.1:${port}/?id=a&close=4004'); new WebSocket('ws://127.0.0.1:${port}/relay?id=b&close=1008')`)
  const taken = await watcher.waitFor((c) => c.url.searchParams.get('id') === 'a' && c.closeCode !== undefined, 10_000)
  t.equal(taken.closeCode, 4004)
  const refused = await watcher.waitFor((c) => c.url.searchParams.get('id') === 'b' && c.closeCode !== undefined, 10_000)
  t.equal(refused.closeCode, 1008)
  t.equal(await page.evaluate('WebSocket.name'), 'Watched', 'the page\'s WebSocket is the watched one')

  await page.evaluate(`window.keep = [new WebSocket('ws://127.0.0.1:${port}/relay?id=c&auth=1'), new WebSocket('ws://127.0.0.1:${port}/?id=d')]`)
  const authed = await watcher.waitFor((c) => c.url.searchParams.get('id') === 'c' && c.authSucceeded, 10_000)
  t.equal(authed.status, 101, 'accepted')
  t.notOk(authed.closed)
  const plain = await watcher.waitFor((c) => c.url.searchParams.get('id') === 'd' && c.status === 101, 10_000)
  t.notOk(plain.authSucceeded, 'no auth-success on a socket that never got one')
  t.equal(frames, 0, 'the 1 MB frame and the auth answer reached the page, not the service\'s DevTools session')
  t.not(authed.requestId, plain.requestId)
  // The document goes (as for the fleet lease's about:blank): its sockets with it, no close code.
  await page.goto('data:text/html,<p>next</p>')
  await watcher.waitFor((c) => c.requestId === authed.requestId && c.closed, 10_000)
  await watcher.waitFor((c) => c.requestId === plain.requestId && c.closed, 10_000)
  t.equal(authed.closeCode, undefined, 'closed with the document, without a code')
  t.ok(watcher.connections().every((c) => c.closed), 'nothing of the old document is left open')
})

t.test('the fleet lease kept by the page: it leaves for about:blank once its deadline passes, and an extension moves the deadline', async (t) => {
  const { page } = await freshPage(t, browser)
  await page.goto('data:text/html,<p>game</p>')
  const now = await page.evaluate('Date.now()') as number
  await page.evaluate(pageFunction('game', 'lease'), now + 60_000)
  await page.evaluate(pageFunction('game', 'lease'), now + 300)
  t.equal(await page.evaluate('globalThis.__fsLeaseUntil'), now + 60_000, 'an earlier deadline never shortens the lease')
  await page.evaluate(pageFunction('game', 'lease'), now + 120_000)
  t.equal(await page.evaluate('globalThis.__fsLeaseUntil'), now + 120_000, 'a later one extends it')
  t.match(page.url(), /^data:/, 'the page stays while its lease runs')
  const { page: short } = await freshPage(t, browser)
  await short.goto('data:text/html,<p>game</p>')
  const navigated = short.waitForNavigation({ timeout: 20_000 })
  await short.evaluate(pageFunction('game', 'lease'), (await short.evaluate('Date.now()') as number) + 200)
  await navigated
  t.equal(short.url(), 'about:blank', 'past the deadline the page left for about:blank')
})

t.test('the fleet lease on a busy page: extensions queued behind a heavy world\'s scripts keep it; without them it leaves once free', async (t) => {
  /** A page whose main thread is busy for `busyMs` from now, with a lease ending before that; `renew`: the service's extensions every 250 ms meanwhile. */
  const busyPage = async (renew: boolean): Promise<{ url: string, late: number }> => {
    const { page } = await freshPage(t, browser)
    await page.goto('data:text/html,<p>game</p>')
    await page.evaluate(pageFunction('game', 'lease'), (await page.evaluate('Date.now()') as number) + 400)
    await page.evaluate('setTimeout(() => { const e = Date.now() + 2000; while (Date.now() < e); }, 50)')
    const end = Date.now() + 2600
    let late = 0
    // As the fleet does (lib/fleet/machines.ts): each renewal moves the deadline 1.5 × its period on.
    while (renew && Date.now() < end) {
      void page.evaluate(pageFunction('game', 'lease'), Date.now() + 1000).catch(() => { late++ })
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    if (!renew) await page.waitForNavigation({ timeout: 20_000 }).catch(() => {})
    await page.evaluate('1').catch(() => {})
    return { url: page.url(), late }
  }
  const renewed = await busyPage(true)
  t.match(renewed.url, /^data:/, 'renewed all along: the page stays, though the first extension it ran was already past')
  t.equal(renewed.late, 0, 'every extension reached the page')
  const stalled = await busyPage(false)
  t.equal(stalled.url, 'about:blank', 'no renewal (a stalled service): the page leaves once its main thread is free')
})

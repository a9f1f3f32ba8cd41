// The service as `npm start` runs it: the compiled dist/server.js in its own
// process (tap's before script builds it).
// Start-up without configuration, refusal of bad configuration, and a
// graceful SIGTERM that ends sessions and Chromium.
import t from 'tap'
import { once } from 'node:events'
import { encryptNode } from '../helper.ts'
import { GM, alive, descendants, eventually, foundry } from './fixtures.ts'
import { startService } from './service-process.ts'

t.test('starts with no configuration, prints a generated API key once, and it works', async (t) => {
  const s = startService({ CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? '' })
  t.teardown(() => { s.child.kill('SIGKILL') })
  t.ok(await s.listening().then(() => true, () => false), 'listening')
  const key = /^\s+(fsk_[A-Za-z0-9_-]+)\s*$/m.exec(s.err())?.[1]
  t.ok(key, 'the key is printed to the terminal')
  t.match(s.err(), /API_KEYS=/, 'with how to set your own')
  t.notOk(s.out().includes(key!), 'and not into the log')
  const res = await fetch(`${s.base()}/session`, { headers: { 'x-api-key': key! } })
  t.equal(res.status, 200)
  const health = await fetch(`${s.base()}/health`)
  t.equal(health.status, 200, `health: ${await health.text()}`)
  s.child.kill('SIGTERM')
  const [code] = await once(s.child, 'exit')
  t.equal(code, 0)
})

t.test('a bad configuration value stops start-up with the reason', async (t) => {
  const s = startService({ PORT: 'not-a-port', API_KEYS: 'k' })
  const [code] = await once(s.child, 'exit')
  t.equal(code, 1)
  t.match(s.err(), /Invalid configuration: .*PORT/)
})

t.test('CHROMIUM_LAUNCH=first-session: no browser until a session needs one; SIGTERM ends every session and Chromium, then exits', async (t) => {
  const { standin, relay } = await foundry(t)
  const s = startService({ API_KEYS: 'server-test-key', CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? '', CHROMIUM_LAUNCH: 'first-session' })
  t.teardown(() => { s.child.kill('SIGKILL') })
  t.ok(await s.listening().then(() => true, () => false), 'listening')
  const idle = await fetch(`${s.base()}/health`)
  t.equal(idle.status, 200, 'healthy without a browser')
  t.match(await idle.json(), { status: 'ok', browser: { chromium: 'down', lastError: null } })
  t.same(descendants(s.child.pid!), [], 'no Chromium process before the first session')
  const headers = { 'x-api-key': 'server-test-key' }
  const hs = await (await fetch(`${s.base()}/session-handshake`, {
    method: 'POST', headers: { ...headers, 'x-foundry-url': standin.url, 'x-username': GM.name }
  })).json() as { token: string, publicKey: string, nonce: string }
  const start = await fetch(`${s.base()}/start-session`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ handshakeToken: hs.token, encryptedPassword: encryptNode(hs.publicKey, { password: GM.password, nonce: hs.nonce }) })
  })
  t.equal(start.status, 200)
  t.match(await (await fetch(`${s.base()}/health`)).json(), { status: 'ok', browser: { chromium: 'running' } }, 'launched by the first session')
  const tree = [s.child.pid!, ...descendants(s.child.pid!)]
  t.ok(tree.length >= 3, 'the service, Chromium and its helpers run')

  const t0 = Date.now()
  s.child.kill('SIGTERM')
  const [code] = await once(s.child, 'exit')
  t.equal(code, 0, 'a clean exit')
  t.ok(Date.now() - t0 < 20_000, 'well inside Fly\'s kill timeout')
  t.ok(await eventually(() => tree.every((p) => !alive(p))), 'no process of the service outlives it')
  t.ok(await eventually(() => relay.open().length === 0), 'the module connection closed')
  t.notOk(s.out().includes(GM.password), 'no password in the log')
})

// Back-pressure on handshakes: a per-key rate limit (429 RATE_LIMITED with
// Retry-After), a per-key bound and a global bound on open handshakes, and
// /health and /session answering promptly through a flood.
import t from 'tap'
import { API_KEY, OTHER_KEY, build, expectError, NO_LOGIN } from '../helper.ts'

const HEADERS = { 'x-foundry-url': 'http://127.0.0.1:9/', 'x-username': 'Gamemaster' }

t.test('handshakes are rate-limited per API key', async (t) => {
  const { app } = await build(t, { ...NO_LOGIN, HANDSHAKE_RATE_MAX: 5, HANDSHAKE_RATE_WINDOW_MS: 60_000 })
  const hs = async (key: string) => await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': key, ...HEADERS } })
  for (let i = 0; i < 5; i++) t.equal((await hs(API_KEY)).statusCode, 200)
  const limited = await hs(API_KEY)
  expectError(t, limited, 429, 'RATE_LIMITED')
  const retry = Number(limited.headers['retry-after'])
  t.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`)
  t.match(limited.json().error, /at most 5 every 60 s/)
  t.equal((await hs(OTHER_KEY)).statusCode, 200, 'another key has its own budget')
  for (let i = 0; i < 20; i++) expectError(t, await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': `wrong-${i}`, ...HEADERS } }), 401, 'API_KEY_INVALID')
  t.equal((await app.inject({ method: 'GET', url: '/session', headers: { 'x-api-key': API_KEY } })).statusCode, 200, 'other routes are not limited')
})

t.test('the window passes', async (t) => {
  // The counters' clock is injected: the window passes when the test says so, however slow the machine.
  let clock = 1_000_000
  const { app } = await build(t, { ...NO_LOGIN, HANDSHAKE_RATE_MAX: 2, HANDSHAKE_RATE_WINDOW_MS: 60_000 }, { now: () => clock })
  const hs = async () => await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': API_KEY, ...HEADERS } })
  t.equal((await hs()).statusCode, 200)
  t.equal((await hs()).statusCode, 200)
  clock += 59_999
  t.equal((await hs()).statusCode, 429, 'still refused a moment before the window ends')
  clock += 1
  t.equal((await hs()).statusCode, 200, 'allowed once it has passed')
})

t.test('HANDSHAKE_RATE_MAX=0 turns the limit off', async (t) => {
  const { app } = await build(t, { ...NO_LOGIN, HANDSHAKE_RATE_MAX: 0 })
  const codes = new Set<number>()
  for (let i = 0; i < 150; i++) codes.add((await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': API_KEY, ...HEADERS } })).statusCode)
  t.same([...codes], [200])
})

t.test('one key cannot take the whole handshake store', async (t) => {
  const { app } = await build(t, { ...NO_LOGIN, HANDSHAKE_RATE_MAX: 0, HANDSHAKE_MAX: 10, HANDSHAKE_MAX_PER_KEY: 4 })
  const hs = async (key: string) => await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': key, ...HEADERS } })
  for (let i = 0; i < 4; i++) t.equal((await hs(API_KEY)).statusCode, 200)
  const full = await hs(API_KEY)
  expectError(t, full, 429, 'HANDSHAKE_STORE_FULL')
  t.match(full.json().error, /This API key has 4 open handshakes/)
  t.ok(Number(full.headers['retry-after']) >= 1, 'Retry-After is set')
  for (let i = 0; i < 4; i++) t.equal((await hs(OTHER_KEY)).statusCode, 200, 'the other key still gets handshakes')
  t.equal(app.keystore.size(), 8)
})

t.test('the global bound holds with Retry-After', async (t) => {
  const { app } = await build(t, { ...NO_LOGIN, API_KEYS: 'k1,k2,k3', HANDSHAKE_RATE_MAX: 0, HANDSHAKE_MAX: 5, HANDSHAKE_MAX_PER_KEY: 5 })
  const hs = async (key: string) => await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': key, ...HEADERS } })
  for (const k of ['k1', 'k1', 'k2', 'k2', 'k3']) t.equal((await hs(k)).statusCode, 200)
  const full = await hs('k3')
  expectError(t, full, 429, 'HANDSHAKE_STORE_FULL')
  t.ok(Number(full.headers['retry-after']) >= 1)
  t.equal(app.keystore.size(), 5)
})

t.test('/health and /session keep answering through a flood of handshakes', async (t) => {
  const { app } = await build(t, { ...NO_LOGIN, HANDSHAKE_RATE_MAX: 100, HANDSHAKE_MAX: 250, HANDSHAKE_MAX_PER_KEY: 200 })
  const flood = Array.from({ length: 600 }, (_, i) => app.inject({
    method: 'POST', url: '/session-handshake', headers: { 'x-api-key': i % 2 === 0 ? API_KEY : OTHER_KEY, ...HEADERS }
  }))
  const probes: number[] = []
  const probing = (async () => {
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now()
      const [health, list] = await Promise.all([
        app.inject({ method: 'GET', url: '/health' }),
        app.inject({ method: 'GET', url: '/session', headers: { 'x-api-key': API_KEY } })
      ])
      probes.push(performance.now() - t0)
      if (health.statusCode !== 200 || list.statusCode !== 200) throw new Error(`probe ${health.statusCode} ${list.statusCode}`)
    }
  })()
  const results = await Promise.all(flood)
  await probing
  const byStatus: Record<number, number> = {}
  for (const r of results) byStatus[r.statusCode] = (byStatus[r.statusCode] ?? 0) + 1
  t.same(Object.keys(byStatus).map(Number).sort(), [200, 429], JSON.stringify(byStatus))
  t.equal(byStatus[200], 200, '100 per key got through')
  t.ok(results.filter((r) => r.statusCode === 429).every((r) => Number(r.headers['retry-after']) >= 1), 'every 429 has Retry-After')
  // How fast they answer is measured in bench/, not asserted here.
  t.equal(probes.length, 10, 'every probe answered 200 while the flood ran')
  t.ok(app.keystore.size() <= 250)
})

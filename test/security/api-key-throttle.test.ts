// Guessing API keys: wrong keys are counted per client address, and past
// API_KEY_FAIL_MAX that address gets 429 API_KEY_THROTTLED (a right key
// too) until the window ends; other addresses are unaffected. The client
// address comes from proxy headers only when TRUST_PROXY says so.
import t from 'tap'
import { API_KEY, OTHER_KEY, build, expectError, NO_LOGIN } from '../helper.ts'
import { clientAddress, parseTrustProxy } from '../../lib/access/client-address.ts'

type Inject = Awaited<ReturnType<typeof build>>['app']

const list = async (app: Inject, key: string, remoteAddress: string, headers: Record<string, string> = {}) =>
  await app.inject({ method: 'GET', url: '/session', remoteAddress, headers: { 'x-api-key': key, ...headers } })

t.test('client address: TRUST_PROXY decides which header counts', async (t) => {
  const req = { ip: '10.0.0.2', headers: { 'fly-client-ip': '203.0.113.9', 'x-forwarded-for': '198.51.100.1, 203.0.113.9' } }
  t.equal(clientAddress(false, req), '10.0.0.2', 'false: the TCP peer, whatever the headers say')
  t.equal(clientAddress('fly', req), '203.0.113.9', 'fly: Fly-Client-IP')
  t.equal(clientAddress('fly', { ip: '10.0.0.2', headers: {} }), '10.0.0.2', 'fly without the header: the peer')
  t.equal(clientAddress('fly', { ip: '10.0.0.2', headers: { 'fly-client-ip': 'not an address' } }), '10.0.0.2', 'fly with garbage: the peer')
  t.equal(clientAddress(1, req), '203.0.113.9', '1 proxy: the rightmost X-Forwarded-For entry')
  t.equal(clientAddress(2, req), '198.51.100.1', '2 proxies: the next one')
  t.equal(clientAddress(5, req), '198.51.100.1', 'more proxies than entries: the leftmost')
  t.equal(clientAddress(1, { ip: '10.0.0.2', headers: {} }), '10.0.0.2', 'no header: the peer')
  t.equal(clientAddress(false, { ip: '2001:db8:1:2:aaaa::1', headers: {} }), clientAddress(false, { ip: '2001:db8:1:2:bbbb::9', headers: {} }), 'one IPv6 /64 is one client')
  t.not(clientAddress(false, { ip: '2001:db8:1:2::1', headers: {} }), clientAddress(false, { ip: '2001:db8:1:3::1', headers: {} }), 'another /64 is another')
  t.equal(parseTrustProxy('false'), false)
  t.equal(parseTrustProxy('fly'), 'fly')
  t.equal(parseTrustProxy('2'), 2)
})

t.test('an invalid TRUST_PROXY stops start-up', async (t) => {
  for (const bad of ['true', 'yes', '0', '-1', 'x-forwarded-for']) {
    await t.rejects(async () => { await build(t, { ...NO_LOGIN, TRUST_PROXY: bad }) }, /TRUST_PROXY/, bad)
  }
})

t.test('without TRUST_PROXY: one address is throttled, others are not, and headers cannot split its bucket', async (t) => {
  const { app, logs } = await build(t, { ...NO_LOGIN, API_KEY_FAIL_MAX: 5, API_KEY_FAIL_WINDOW_MS: 60_000 })
  const attacker = '203.0.113.7'
  for (let i = 0; i < 5; i++) {
    // A spoofed Fly-Client-IP / X-Forwarded-For per guess: ignored by default.
    const spoof = { 'fly-client-ip': `198.51.100.${i}`, 'x-forwarded-for': `198.51.100.${i}` }
    expectError(t, await list(app, `guess-${i}`, attacker, spoof), 401, 'API_KEY_INVALID')
  }
  const limited = await list(app, 'guess-5', attacker, { 'fly-client-ip': '198.51.100.99' })
  expectError(t, limited, 429, 'API_KEY_THROTTLED')
  const retry = Number(limited.headers['retry-after'])
  t.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`)
  t.match(limited.json().error, /at most 5 every 60 s/)
  expectError(t, await list(app, API_KEY, attacker), 429, 'API_KEY_THROTTLED')
  t.match(logs(), /too many wrong API keys from one address/, 'the operator sees it once')
  t.notOk(logs().includes('guess-'), 'no guessed key reached the log')
  // The throttled address cannot tell a right key from a wrong one.
  expectError(t, await app.inject({ method: 'POST', url: '/session-handshake', remoteAddress: attacker, headers: { 'x-api-key': OTHER_KEY } }), 429, 'API_KEY_THROTTLED')
  expectError(t, await app.inject({ method: 'GET', url: '/session', remoteAddress: attacker }), 429, 'API_KEY_THROTTLED')

  t.equal((await list(app, API_KEY, '198.51.100.20')).statusCode, 200, 'a right key from another address is unaffected')
  expectError(t, await list(app, 'guess-x', '198.51.100.20'), 401, 'API_KEY_INVALID')
  t.equal((await app.inject({ method: 'GET', url: '/health', remoteAddress: attacker })).statusCode, 200, 'routes without a key are not throttled')
})

t.test('right keys are never counted', async (t) => {
  const { app } = await build(t, { ...NO_LOGIN, API_KEY_FAIL_MAX: 3 })
  for (let i = 0; i < 20; i++) t.equal((await list(app, API_KEY, '203.0.113.8')).statusCode, 200)
  expectError(t, await list(app, 'wrong', '203.0.113.8'), 401, 'API_KEY_INVALID')
})

t.test('TRUST_PROXY=fly: Fly-Client-IP is the client, behind one proxy address', async (t) => {
  const { app } = await build(t, { ...NO_LOGIN, TRUST_PROXY: 'fly', API_KEY_FAIL_MAX: 3 })
  const proxy = 'fdaa:0:1:a7b:1::2' // Fly's proxy, as the TCP peer of every request
  const from = (ip: string) => ({ 'fly-client-ip': ip })
  for (let i = 0; i < 3; i++) expectError(t, await list(app, `guess-${i}`, proxy, from('203.0.113.50')), 401, 'API_KEY_INVALID')
  expectError(t, await list(app, 'guess-3', proxy, from('203.0.113.50')), 429, 'API_KEY_THROTTLED')
  expectError(t, await list(app, API_KEY, proxy, from('203.0.113.50')), 429, 'API_KEY_THROTTLED')
  t.equal((await list(app, API_KEY, proxy, from('198.51.100.60'))).statusCode, 200, 'another client behind the same proxy is unaffected')
  expectError(t, await list(app, 'guess', proxy, from('198.51.100.60')), 401, 'API_KEY_INVALID')
})

t.test('TRUST_PROXY=1: the X-Forwarded-For entry the proxy appended', async (t) => {
  const { app } = await build(t, { ...NO_LOGIN, TRUST_PROXY: 1, API_KEY_FAIL_MAX: 2 })
  // The client prepends its own entries; the proxy appends what it saw.
  for (let i = 0; i < 2; i++) expectError(t, await list(app, 'guess', '10.0.0.2', { 'x-forwarded-for': `1.2.3.${i}, 203.0.113.70` }), 401, 'API_KEY_INVALID')
  expectError(t, await list(app, 'guess', '10.0.0.2', { 'x-forwarded-for': '9.9.9.9, 203.0.113.70' }), 429, 'API_KEY_THROTTLED')
  t.equal((await list(app, API_KEY, '10.0.0.2', { 'x-forwarded-for': '203.0.113.71' })).statusCode, 200)
})

t.test('the window passes', async (t) => {
  // The counters' clock is injected: the window passes when the test says so, however slow the machine.
  let clock = 1_000_000
  const { app } = await build(t, { ...NO_LOGIN, API_KEY_FAIL_MAX: 1, API_KEY_FAIL_WINDOW_MS: 60_000 }, { now: () => clock })
  expectError(t, await list(app, 'guess', '203.0.113.9'), 401, 'API_KEY_INVALID')
  t.equal((await list(app, API_KEY, '203.0.113.9')).statusCode, 200, 'API_KEY_FAIL_MAX wrong keys are allowed')
  expectError(t, await list(app, 'guess', '203.0.113.9'), 429, 'API_KEY_THROTTLED')
  clock += 59_999
  expectError(t, await list(app, API_KEY, '203.0.113.9'), 429, 'API_KEY_THROTTLED')
  clock += 1
  t.equal((await list(app, API_KEY, '203.0.113.9')).statusCode, 200, 'a right key works again after the window')
})

t.test('API_KEY_FAIL_MAX=0 turns the throttle off', async (t) => {
  const { app } = await build(t, { ...NO_LOGIN, API_KEY_FAIL_MAX: 0 })
  const codes = new Set<number>()
  for (let i = 0; i < 50; i++) codes.add((await list(app, `guess-${i}`, '203.0.113.10')).statusCode)
  t.same([...codes], [401])
  t.equal((await list(app, API_KEY, '203.0.113.10')).statusCode, 200)
})

// The handshake rate limit's answers, header by header: each handshake
// within the budget says its limit, what remains and when the window resets;
// the one past it is 429 RATE_LIMITED with Retry-After and the same headers
// (remaining 0); each API key counts alone, and the window's reset is the
// window's end, not each request's.
import t from 'tap'
import { API_KEY, OTHER_KEY, build, expectError, NO_LOGIN } from '../helper.ts'

const HEADERS = { 'x-foundry-url': 'http://127.0.0.1:9/', 'x-username': 'Gamemaster' }

t.test('x-ratelimit-* on every handshake, Retry-After past the budget', async (t) => {
  const { app } = await build(t, { ...NO_LOGIN, HANDSHAKE_RATE_MAX: 3, HANDSHAKE_RATE_WINDOW_MS: 60_000 })
  const hs = async (key: string) => await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': key, ...HEADERS } })
  for (let i = 1; i <= 3; i++) {
    const r = await hs(API_KEY)
    t.equal(r.statusCode, 200)
    t.equal(r.headers['x-ratelimit-limit'], '3')
    t.equal(r.headers['x-ratelimit-remaining'], String(3 - i))
    const reset = Number(r.headers['x-ratelimit-reset'])
    t.ok(reset >= 59 && reset <= 60, `reset ${reset}`)
    t.notOk('retry-after' in r.headers)
  }
  for (let i = 0; i < 2; i++) {
    const limited = await hs(API_KEY)
    expectError(t, limited, 429, 'RATE_LIMITED')
    t.equal(limited.headers['x-ratelimit-limit'], '3')
    t.equal(limited.headers['x-ratelimit-remaining'], '0')
    const reset = Number(limited.headers['x-ratelimit-reset'])
    t.ok(reset >= 59 && reset <= 60, `reset ${reset}`)
    t.equal(limited.headers['retry-after'], String(reset), 'Retry-After: the window\'s end')
    t.match(limited.json().error, /at most 3 every 60 s\): retry in \d+ s/)
  }
  const other = await hs(OTHER_KEY)
  t.equal(other.statusCode, 200)
  t.equal(other.headers['x-ratelimit-remaining'], '2', 'another key: its own window')
  const wrong = await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': 'wrong', ...HEADERS } })
  expectError(t, wrong, 401, 'API_KEY_INVALID')
  t.notOk('x-ratelimit-limit' in wrong.headers, 'a wrong key never reaches the limit')
  const list = await app.inject({ method: 'GET', url: '/session', headers: { 'x-api-key': API_KEY } })
  t.notOk('x-ratelimit-limit' in list.headers, 'other routes: no limit, no headers')
})

t.test('HANDSHAKE_RATE_MAX=0: no limit and no headers', async (t) => {
  const { app } = await build(t, { ...NO_LOGIN, HANDSHAKE_RATE_MAX: 0 })
  const r = await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': API_KEY, ...HEADERS } })
  t.equal(r.statusCode, 200)
  t.notOk('x-ratelimit-limit' in r.headers)
})

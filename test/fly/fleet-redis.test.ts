// The fleet's use of Redis, with the service built in-process (two apps on
// one real Redis stand for two machines): rate limits shared fleet-wide,
// heartbeats, and Redis lost and back while running.
import t from 'tap'
import { API_KEY, build, expectError, NO_LOGIN } from '../helper.ts'
import { eventually } from '../e2e/fixtures.ts'
import { startRedis } from './redis.ts'

const hsHeaders = { 'x-api-key': API_KEY, 'x-foundry-url': 'http://127.0.0.1:9/', 'x-username': 'Gamemaster' }

t.test('the handshake rate limit counts across the fleet', async (t) => {
  const redis = await startRedis(t)
  const env = { REDIS_URL: redis.url, HANDSHAKE_RATE_MAX: 3, HANDSHAKE_RATE_WINDOW_MS: 60_000 }
  const a = await build(t, { ...NO_LOGIN, ...env, INSTANCE_ID: 'a' })
  const b = await build(t, { ...NO_LOGIN, ...env, INSTANCE_ID: 'b' })
  const codes: number[] = []
  for (const m of [a, b, a]) codes.push((await m.app.inject({ method: 'POST', url: '/session-handshake', headers: hsHeaders })).statusCode)
  t.same(codes, [200, 200, 200], 'three handshakes over two machines')
  const fourth = await b.app.inject({ method: 'POST', url: '/session-handshake', headers: hsHeaders })
  expectError(t, fourth, 429, 'RATE_LIMITED')
  t.ok(Number(fourth.headers['retry-after']) > 0, 'with Retry-After')
  const dump = await redis.dump()
  t.notOk([...dump].some(([k, v]) => k.includes(API_KEY) || v.includes(API_KEY)), 'the counter is keyed by the key\'s digest, never the key')
})

t.test('machines heartbeat with a TTL and say who they are', async (t) => {
  const redis = await startRedis(t)
  const a = await build(t, { ...NO_LOGIN, REDIS_URL: redis.url, INSTANCE_ID: 'beat-a', FLEET_HEARTBEAT_MS: 1000 })
  const beat = JSON.parse(await redis.client.get('fs:machine:beat-a') ?? '{}') as Record<string, unknown>
  t.match(beat, { id: 'beat-a', sessions: 0, maxSessions: 50, closing: false })
  const ttl = await redis.client.pttl('fs:machine:beat-a')
  t.ok(ttl > 0 && ttl <= 3000, `expires (${ttl} ms left, 3 heartbeats)`)
  const hs = await a.app.inject({ method: 'POST', url: '/session-handshake', headers: hsHeaders })
  t.equal(hs.json().instanceId, 'beat-a', 'instanceId in replies')
  await a.app.close()
  t.equal(await redis.client.exists('fs:machine:beat-a'), 0, 'a machine that stops removes its heartbeat')
})

t.test('Redis lost while running: fleet requests get 503 FLEET_UNAVAILABLE with Retry-After; back, the machine re-registers', async (t) => {
  const redis = await startRedis(t)
  const a = await build(t, { ...NO_LOGIN, REDIS_URL: redis.url, INSTANCE_ID: 'lost-a', FLEET_HEARTBEAT_MS: 1000 })
  t.equal((await a.app.inject({ method: 'POST', url: '/session-handshake', headers: hsHeaders })).statusCode, 200)
  t.match((await a.app.inject({ method: 'GET', url: '/health' })).json(), { fleet: { registry: 'connected' } })
  await redis.kill()
  t.ok(await eventually(async () => (await a.app.inject({ method: 'GET', url: '/health' })).json().fleet?.registry === 'unreachable'), '/health says the registry is unreachable')
  const down = await a.app.inject({ method: 'POST', url: '/session-handshake', headers: hsHeaders })
  expectError(t, down, 503, 'FLEET_UNAVAILABLE')
  t.ok(Number(down.headers['retry-after']) > 0, 'with Retry-After')
  const list = await a.app.inject({ method: 'GET', url: '/session', headers: { 'x-api-key': API_KEY } })
  t.ok(list.statusCode === 200 || list.statusCode === 503, `listing answers (${list.statusCode}), never a crash or a 500`)
  await redis.restart()
  t.ok(await eventually(async () => await redis.client.exists('fs:machine:lost-a').catch(() => 0) === 1, 10_000), 'the heartbeat is back in the new Redis')
  t.ok(await eventually(async () => (await a.app.inject({ method: 'POST', url: '/session-handshake', headers: hsHeaders })).statusCode === 200, 10_000), 'handshakes work again')
  t.match(a.logs(), /lost the fleet registry/, 'the loss was logged')
  t.match(a.logs(), /fleet registry \(Redis\) is back/, 'and the return')
})

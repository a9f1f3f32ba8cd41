// Prometheus metrics on METRICS_PORT: handshakes, logins by result and code,
// sessions by status, registry errors; never a secret in a label.
import t from 'tap'
import { newWebhookSecret } from '../../lib/webhooks/url.ts'
import { startReceiver } from '../webhooks/receiver.ts'
import { API_KEY, build } from '../helper.ts'
import { GM, endSession, eventually, foundry, listSessions, startSession } from '../e2e/fixtures.ts'
import { freePort, startRedis } from './redis.ts'

const hsHeaders = { 'x-api-key': API_KEY, 'x-foundry-url': 'http://127.0.0.1:9/', 'x-username': 'Gamemaster' }

t.test('GET /metrics on its own port, in Prometheus text format', async (t) => {
  const redis = await startRedis(t)
  const port = await freePort()
  const { app } = await build(t, { METRICS_PORT: port, HOST: '127.0.0.1', INSTANCE_ID: 'metrics-a', REDIS_URL: redis.url })
  const hs = await app.inject({ method: 'POST', url: '/session-handshake', headers: hsHeaders })
  t.equal(hs.statusCode, 200)
  const bad = await app.inject({ method: 'POST', url: '/start-session', headers: { 'x-api-key': API_KEY }, payload: { handshakeToken: 'a'.repeat(64), encryptedPassword: 'AAAA' } })
  t.equal(bad.statusCode, 401)
  await redis.kill()
  t.equal((await app.inject({ method: 'POST', url: '/session-handshake', headers: hsHeaders })).statusCode, 503)

  const res = await fetch(`http://127.0.0.1:${port}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await res.text()
  t.match(text, /^foundry_handshakes_total\{machine="metrics-a"\} 1$/m, 'one handshake')
  t.match(text, /^foundry_logins_total\{result="failed",code="HANDSHAKE_NOT_FOUND",machine="metrics-a"\} 1$/m, 'a failed login by code')
  t.match(text, /^foundry_login_duration_seconds_count\{machine="metrics-a",result="failed"\} 1$/m, 'its duration')
  t.match(text, /^foundry_sessions\{status="active",machine="metrics-a"\} 0$/m, 'sessions by status')
  t.match(text, /^foundry_registry_errors_total\{machine="metrics-a"\} 1$/m, 'the Redis outage counted')
  t.match(text, /^process_resident_memory_bytes/m, 'process metrics')
  t.notOk(text.includes(API_KEY), 'no API key in a label')
  t.equal((await fetch(`http://127.0.0.1:${port}/session`)).status, 404, 'the metrics port serves nothing else')
})

t.test('a real login and a relogin: login duration by stage, relogins; the webhook backlog', async (t) => {
  const { standin } = await foundry(t)
  // The operator's webhook receiver, which holds its answers until told to.
  const receiver = await startReceiver(t)
  receiver.answer('/op', 'hang')
  const port = await freePort()
  const { app } = await build(t, {
    METRICS_PORT: port,
    HOST: '127.0.0.1',
    INSTANCE_ID: 'metrics-b',
    RELOGIN_BASE_MS: 200,
    RELOGIN_ATTEMPTS: 10,
    WEBHOOK_URL: `${receiver.url}/op`,
    WEBHOOK_SECRET: newWebhookSecret(),
    WEBHOOK_TIMEOUT_MS: 60_000
  })
  const scrape = async (): Promise<string> => await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const backlog = (text: string): number => Number(/^foundry_webhook_pending\{machine="metrics-b"\} (\d+)$/m.exec(text)?.[1] ?? NaN)
  t.equal(backlog(await scrape()), 0, 'no webhook waiting before any session')
  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(res.statusCode, 200, res.body)
  const count = (text: string, stage: string, result: string): number =>
    Number(new RegExp(`^foundry_login_stage_duration_seconds_count\\{[^}]*stage="${stage}"[^}]*result="${result}"[^}]*\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
  const first = await scrape()
  for (const stage of ['join', 'game-load']) t.equal(count(first, stage, 'ok'), 1, `the ${stage} stage timed once`)
  t.match(first, /^foundry_logins_total\{result="ok",code="",machine="metrics-b"\} 1$/m)
  t.notMatch(first, /^foundry_relogins_total\{/m, 'no relogin yet')

  // Foundry restarts: the session logs back in (at least one failed attempt while it is down).
  await standin.restart({ downMs: 1500 })
  t.ok(await eventually(async () => (await listSessions(app)).activeSessions.some((s) => s.relogins === 1 && s.status === 'active'), 30_000), 'logged back in')
  const after = await scrape()
  t.match(after, /^foundry_relogins_total\{result="ok",machine="metrics-b"\} 1$/m, 'one relogin')
  t.equal(count(after, 'join', 'ok'), 2, 'the relogin\'s stages timed too')
  t.notOk(after.includes(GM.password))

  // The session ends: its session.ended goes to the operator's webhook, whose receiver holds the answer.
  t.equal(receiver.at('/op').length, 0, 'no webhook so far (a relogin this short sends none)')
  await endSession(app, res.json().sessionId)
  t.ok(await eventually(() => receiver.held() > 0), 'the operator\'s webhook is being delivered')
  t.ok(backlog(await scrape()) >= 1, 'its message counts as pending while the receiver holds the answer')
  receiver.answer('/op', [204])
  receiver.release(204)
  t.ok(await eventually(async () => backlog(await scrape()) === 0), 'none pending once the receiver answered')
})

t.test('METRICS_PORT unset: no metrics listener', async (t) => {
  const { app } = await build(t)
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404, 'not on the API port either')
})

// Webhooks of real sessions (real Chromium against the Foundry and relay
// stand-ins), received on 127.0.0.1: the session's own webhook (sent
// encrypted at start-session, its secret the client's or made by the
// service) and the operator's (WEBHOOK_URL), for a failed start, a session
// that ends, a Foundry restart (reconnecting, then recovered), the module's
// relay down (module.offline), a password changed in Foundry meanwhile
// (failed after logging back in, with the code), a Discord URL, a URL the
// policy refuses, and a receiver that never answers. The URLs carry tokens
// and never reach a log line or a response.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { Webhook } from 'standardwebhooks'
import { API_KEY, build, encryptNode, expectError } from '../helper.ts'
import { GM, WORLD, endSession, foundry, listSessions } from './fixtures.ts'
import { newWebhookSecret } from '../../lib/webhooks/url.ts'
import { payload, startReceiver, type Received, type Receiver } from '../webhooks/receiver.ts'

const OPERATOR_SECRET = newWebhookSecret()
const SESSION_TOKEN = 'sess-hook-token-Yx3k9'
const OPERATOR_TOKEN = 'op-hook-token-Wq7m2'

interface StartOpts { url: string, username: string, password: string, webhookUrl?: string, webhookSecret?: string }

/** Handshake, encrypt (the webhook URL and secret in their own ciphertexts), start-session. */
async function start (app: FastifyInstance, o: StartOpts, seen: string[]) {
  const hs = await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': API_KEY, 'x-foundry-url': o.url, 'x-username': o.username } })
  seen.push(hs.body)
  const { token, publicKey, nonce } = hs.json()
  const res = await app.inject({
    method: 'POST',
    url: '/start-session',
    headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
    payload: {
      handshakeToken: token,
      encryptedPassword: encryptNode(publicKey, { password: o.password, nonce }),
      ...(o.webhookUrl !== undefined ? { encryptedWebhookUrl: encryptNode(publicKey, { webhookUrl: o.webhookUrl, nonce }, 'sha256') } : {}),
      ...(o.webhookSecret !== undefined ? { encryptedWebhookSecret: encryptNode(publicKey, { webhookSecret: o.webhookSecret, nonce }) } : {})
    }
  })
  seen.push(`${res.statusCode} ${JSON.stringify(res.headers)} ${res.body}`)
  return res
}

function verified (t: { doesNotThrow: (fn: () => unknown, msg: string) => unknown }, r: Received, secret: string, what: string): void {
  t.doesNotThrow(() => new Webhook(secret).verify(r.body, r.headers as Record<string, string>), `${what}: signature verified by standardwebhooks`)
}

async function types (r: Receiver, path: string): Promise<string[]> {
  return r.at(path).map((x) => payload(x).type)
}

t.test('webhooks of real sessions', async (t) => {
  const r = await startReceiver(t)
  const sessionPath = `/hooks/session/${SESSION_TOKEN}`
  const operatorPath = `/hooks/operator/${OPERATOR_TOKEN}`
  const gm = GM
  const world = WORLD
  const { app, logs } = await build(t, {
    LOG_LEVEL: 'trace',
    WEBHOOK_URL: `${r.url}${operatorPath}`,
    WEBHOOK_SECRET: OPERATOR_SECRET,
    WEBHOOK_RECONNECTING_AFTER_MS: 300,
    WEBHOOK_MODULE_OFFLINE_AFTER_MS: 500,
    WEBHOOK_RETRY_BASE_MS: 100,
    RELOGIN_BASE_MS: 500,
    RELOGIN_ATTEMPTS: 6
  })
  const seen: string[] = []
  /** Secrets the service made and returned once. */
  const made: string[] = []

  t.test('a failed start: session.failed with the code, signed with the client\'s secret; the operator\'s too', async (t) => {
    const { standin } = await foundry(t, { worlds: [world] })
    const secret = newWebhookSecret()
    const path = `${sessionPath}/failed`
    const res = await start(app, { url: standin.url, username: gm.name, password: 'not-the-password', webhookUrl: `${r.url}${path}`, webhookSecret: secret }, seen)
    t.equal(res.statusCode, 422)
    const got = await r.wait(path)
    t.match(payload(got), { type: 'session.failed', data: { status: 'failed', code: 'FOUNDRY_LOGIN_REJECTED', reason: /JOIN\.ErrorInvalidPassword|password/i, username: gm.name } })
    verified(t, got, secret, 'session webhook')
    const op = await r.wait(operatorPath, (x) => payload(x).type === 'session.failed')
    verified(t, op, OPERATOR_SECRET, 'operator webhook')
    t.equal(op.headers['webhook-id'], got.headers['webhook-id'], 'one event, one id, whichever webhook')
  })

  t.test('ended: session.ended, signed with the secret the start reply gave', async (t) => {
    const { standin } = await foundry(t, { worlds: [world] })
    const path = `${sessionPath}/ended`
    const res = await start(app, { url: standin.url, username: gm.name, password: gm.password, webhookUrl: `${r.url}${path}` }, seen)
    t.equal(res.statusCode, 200, res.body)
    const { sessionId, webhookSecret } = res.json()
    t.match(webhookSecret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'a secret was made and returned')
    made.push(webhookSecret)
    t.equal((await endSession(app, sessionId)).statusCode, 200)
    const got = await r.wait(path)
    t.match(payload(got), { type: 'session.ended', data: { sessionId, status: 'ended', reason: 'ended by the client' } })
    verified(t, got, webhookSecret, 'session webhook')
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.same(await types(r, path), ['session.ended'], 'nothing else for a session that just ran')
  })

  t.test('a Foundry restart: session.reconnecting, then session.recovered; a password changed meanwhile: session.failed with the code', async (t) => {
    const { standin } = await foundry(t, { worlds: [world] })
    const path = `${sessionPath}/restart`
    const secret = newWebhookSecret()
    const res = await start(app, { url: standin.url, username: gm.name, password: gm.password, webhookUrl: `${r.url}${path}`, webhookSecret: secret }, seen)
    t.equal(res.statusCode, 200, res.body)
    const { sessionId } = res.json()
    await standin.restart({ downMs: 2500 })
    const rec = await r.wait(path, (x) => payload(x).type === 'session.reconnecting', 30_000)
    t.match(payload(rec), { data: { sessionId, status: 'reconnecting' } })
    const back = await r.wait(path, (x) => payload(x).type === 'session.recovered', 60_000)
    t.match(payload(back), { data: { sessionId, status: 'active', after: 'reconnecting', since: payload(rec).timestamp } })
    verified(t, back, secret, 'recovered')

    // Now the password changes in Foundry while it restarts: logging back in is refused.
    standin.setUserPassword(gm.id, 'changed-while-away-Pw')
    await standin.restart({ downMs: 500 })
    const failed = await r.wait(path, (x) => payload(x).type === 'session.failed', 90_000)
    t.match(payload(failed), { data: { sessionId, status: 'failed', code: 'FOUNDRY_LOGIN_REJECTED' } })
    const list = await listSessions(app)
    t.match(list.endedSessions.find((s) => s.id === sessionId), { status: 'failed' })
    await new Promise((resolve) => setTimeout(resolve, 300))
    const seenTypes = await types(r, path)
    t.equal(seenTypes.filter((x) => x === 'session.failed').length, 1, `failed once: ${seenTypes.join(', ')}`)
    t.equal(new Set(r.at(path).map((x) => x.headers['webhook-id'])).size, r.at(path).length, 'every message its own id, each sent once')
  })

  t.test('the module\'s relay down: module.offline after the threshold; back: session.recovered', async (t) => {
    const { standin, relay } = await foundry(t, { worlds: [world], moduleReconnectBaseMs: 200 }, {})
    const path = `${sessionPath}/module`
    const res = await start(app, { url: standin.url, username: gm.name, password: gm.password, webhookUrl: `${r.url}${path}` }, seen)
    t.equal(res.statusCode, 200, res.body)
    const { sessionId } = res.json()
    await relay.down()
    const off = await r.wait(path, (x) => payload(x).type === 'module.offline', 30_000)
    t.match(payload(off), { data: { sessionId, status: 'active', module: { connected: false } } })
    await relay.up()
    const back = await r.wait(path, (x) => payload(x).type === 'session.recovered', 60_000)
    t.match(payload(back), { data: { sessionId, after: 'module-offline', module: { connected: true } } })
    await endSession(app, sessionId)
  })

  t.test('a Discord webhook URL gets a Discord message', async (t) => {
    const { standin } = await foundry(t, { worlds: [world] })
    const path = `/api/webhooks/123456789012345678/${SESSION_TOKEN}-discord`
    const res = await start(app, { url: standin.url, username: gm.name, password: 'wrong-again', webhookUrl: `${r.url}${path}` }, seen)
    t.equal(res.statusCode, 422)
    const got = await r.wait(path)
    const body = JSON.parse(got.body) as Record<string, unknown>
    t.match(body, {
      content: /Foundry session failed/,
      embeds: [{ title: 'Foundry session failed', description: String, color: Number, fields: Array, timestamp: String }],
      allowed_mentions: { parse: [] }
    })
    t.notOk('type' in body || 'data' in body, 'not the Standard Webhooks body')
    t.match(JSON.stringify(body), /FOUNDRY_LOGIN_REJECTED/, 'the code among the fields')
  })

  t.test('a URL the URL policy refuses: 400 INVALID_WEBHOOK_URL, before any login; the URL not repeated', async (t) => {
    const { standin } = await foundry(t, { worlds: [world] })
    const joins = standin.joins.length
    const res = await start(app, { url: standin.url, username: gm.name, password: gm.password, webhookUrl: `http://169.254.169.254/latest/${SESSION_TOKEN}` }, seen)
    expectError(t, res, 400, 'INVALID_WEBHOOK_URL')
    t.match(res.json().error, /link-local|metadata/)
    t.equal(standin.joins.length, joins, 'no login tried')
    const bad = await start(app, { url: standin.url, username: gm.name, password: gm.password, webhookUrl: `ftp://example.com/${SESSION_TOKEN}` }, seen)
    expectError(t, bad, 400, 'INVALID_WEBHOOK_URL')
    const secret = await start(app, { url: standin.url, username: gm.name, password: gm.password, webhookUrl: `${r.url}/x`, webhookSecret: 'short' }, seen)
    expectError(t, secret, 400, 'INVALID_REQUEST')
  })

  t.test('a receiver that never answers does not hold the session up', async (t) => {
    const { standin } = await foundry(t, { worlds: [world] })
    const path = `${sessionPath}/hang`
    r.answer(path, 'hang')
    r.answer(operatorPath, 'hang')
    const failed = await start(app, { url: standin.url, username: gm.name, password: 'wrong', webhookUrl: `${r.url}${path}` }, seen)
    t.equal(failed.statusCode, 422)
    await r.wait(path)
    const res = await start(app, { url: standin.url, username: gm.name, password: gm.password, webhookUrl: `${r.url}${path}` }, seen)
    t.equal(res.statusCode, 200, 'the next start-session answers while both receivers hold their requests')
    t.ok(r.held() >= 1, `${r.held()} requests held`)
    t.equal((await endSession(app, res.json().sessionId)).statusCode, 200, 'and ending answers too')
    r.answer(path, [200])
    r.answer(operatorPath, [200])
  })

  t.test('no webhook URL (or its token) in any log line or response', async (t) => {
    const log = logs()
    t.ok(log.length > 5000, `${log.length} characters of log`)
    t.match(log, /webhook delivered/, 'deliveries were logged')
    for (const token of [SESSION_TOKEN, OPERATOR_TOKEN, r.url.replace('http://', '') + '/hooks', OPERATOR_SECRET]) {
      t.notOk(log.includes(token), `not in the log: ${token.slice(0, 8)}…`)
      t.notOk(seen.some((s) => s.includes(token)), `not in a response: ${token.slice(0, 8)}…`)
    }
    t.ok(made.length > 0)
    for (const secret of made) t.notOk(log.includes(secret), 'a secret the service made is in no log line (only in its start reply)')
  })
})

t.test('the service shutting down ends its sessions: session.ended is delivered before it exits', async (t) => {
  const r = await startReceiver(t)
  const { app } = await build(t, { WEBHOOK_RETRY_BASE_MS: 100 })
  const { standin } = await foundry(t)
  const path = `/hooks/shutdown/${SESSION_TOKEN}`
  r.answer(path, [503, 200])
  const res = await start(app, { url: standin.url, username: GM.name, password: GM.password, webhookUrl: `${r.url}${path}` }, [])
  t.equal(res.statusCode, 200, res.body)
  const { sessionId, webhookSecret } = res.json()
  await app.close()
  const got = r.at(path)
  t.equal(got.length, 2, 'delivered (after one 503) by the time close() resolved')
  t.match(payload(got[1]!), { type: 'session.ended', data: { sessionId, reason: 'the service is shutting down' } })
  t.doesNotThrow(() => new Webhook(webhookSecret).verify(got[1]!.body, got[1]!.headers as Record<string, string>))
})

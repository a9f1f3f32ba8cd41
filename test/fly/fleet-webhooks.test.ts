// Webhooks in a fleet (three `node dist/server.js` machines, a real Redis,
// the fly-replay proxy stand-in): each event is delivered once, by the
// machine running the session, to the session's webhook and the operator's;
// a handover (SIGTERM of the owner) sends nothing and duplicates nothing,
// and the session's webhook URL and secret move with it, sealed: the new
// owner signs the session.ended with the same secret. Redis and the logs
// never hold the URL or the secret.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { GM, eventually } from '../e2e/fixtures.ts'
import { encryptNode } from '../helper.ts'
import { newWebhookSecret } from '../../lib/webhooks/url.ts'
import { payload, startReceiver, type Received } from '../webhooks/receiver.ts'
import { startFleet, type Fleet } from './fleet.ts'

const SEAL_KEY = randomBytes(32).toString('base64')
const OPERATOR_SECRET = newWebhookSecret()
const SESSION_TOKEN = 'fleet-hook-token-Pz4r8'
const OPERATOR_TOKEN = 'fleet-op-token-Hv6n1'

t.test('one delivery per event on three machines, through a handover', async (t) => {
  const r = await startReceiver(t)
  const sessionPath = `/s/${SESSION_TOKEN}`
  const operatorPath = `/op/${OPERATOR_TOKEN}`
  const f: Fleet = await startFleet(t, {
    SESSION_SEAL_KEY: SEAL_KEY,
    FLEET_HEARTBEAT_MS: '1000',
    RELOGIN_BASE_MS: '200',
    WEBHOOK_URL: `${r.url}${operatorPath}`,
    WEBHOOK_SECRET: OPERATOR_SECRET,
    WEBHOOK_RETRY_BASE_MS: '100',
    // Every reconnect is news: a handover told twice (by the machine giving it and the one taking it) would show.
    WEBHOOK_RECONNECTING_AFTER_MS: '0'
  })
  const sessionSecret = newWebhookSecret()
  f.secrets.push(SEAL_KEY, OPERATOR_SECRET, sessionSecret, SESSION_TOKEN, OPERATOR_TOKEN)

  const start = async (password: string, path: string): Promise<{ status: number, body: Record<string, unknown> }> => {
    const hs = await (await fetch(`${f.proxy.url}/session-handshake`, {
      method: 'POST', headers: { 'x-api-key': f.apiKey, 'x-foundry-url': f.standin.url, 'x-username': GM.name }
    })).json() as { token: string, publicKey: string, nonce: string }
    const res = await fetch(`${f.proxy.url}/start-session`, {
      method: 'POST',
      headers: { 'x-api-key': f.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({
        handshakeToken: hs.token,
        encryptedPassword: encryptNode(hs.publicKey, { password, nonce: hs.nonce }),
        encryptedWebhookUrl: encryptNode(hs.publicKey, { webhookUrl: `${r.url}${path}`, nonce: hs.nonce }),
        encryptedWebhookSecret: encryptNode(hs.publicKey, { webhookSecret: sessionSecret, nonce: hs.nonce })
      })
    })
    return { status: res.status, body: await res.json() as Record<string, unknown> }
  }
  const verify = (x: Received, secret: string): boolean => {
    try { new Webhook(secret).verify(x.body, x.headers as Record<string, string>); return true } catch { return false }
  }

  // A failed start: one session.failed, from the machine that tried.
  const failedPath = `${sessionPath}/failed`
  const failed = await start('wrong-password', failedPath)
  t.equal(failed.status, 422)
  await r.wait(failedPath)

  const started = await start(GM.password, sessionPath)
  t.equal(started.status, 200, JSON.stringify(started.body))
  const sessionId = started.body.sessionId as string
  t.notOk('webhookSecret' in started.body, 'the client sent its secret: none made')
  const owner = f.byId((await f.find(f.proxy.url, sessionId))!.instanceId)

  // SIGTERM of the owner: handed over, logged back in elsewhere.
  owner.kill('SIGTERM')
  f.drop(owner)
  const other = f.machines.find((m) => m !== owner)!
  t.ok(await eventually(async () => {
    const s = await f.find(other.url, sessionId)
    return s?.status === 'active' && s.instanceId !== owner.id && s.relogins === 1
  }, 30_000), 'active again on another machine')
  t.equal(await owner.exited, 0, 'the old owner exited cleanly')
  const newOwner = (await f.find(f.proxy.url, sessionId))!.instanceId
  const scanRedis = async (when: string): Promise<void> => {
    const dump = await f.redis.dump()
    const all = [...dump].map(([k, v]) => `${k}\n${v}`).join('\n')
    for (const s of [SESSION_TOKEN, OPERATOR_TOKEN, sessionSecret, OPERATOR_SECRET]) t.notOk(all.includes(s), `not in Redis ${when}: ${s.slice(0, 10)}…`)
  }
  t.ok((await f.redis.dump()).has(`fs:seal:${sessionId}`), 'the credentials are kept, sealed')
  await scanRedis('while the session runs')

  const end = await fetch(`${f.proxy.url}/end-session?sessionId=${sessionId}`, { method: 'DELETE', headers: { 'x-api-key': f.apiKey } })
  t.equal(end.status, 200)
  const ended = await r.wait(sessionPath, (x) => payload(x).type === 'session.ended')
  await r.wait(operatorPath, (x) => payload(x).type === 'session.ended')
  // Every running machine's webhooks delivered: a duplicate on its way
  // anywhere has arrived by then (a message counts as pending until its
  // receiver answered).
  const running = f.running()
  t.ok(await eventually(async () => {
    for (const m of running) if (!/^foundry_webhook_pending\{[^}]*\} 0$/m.test(await f.metrics(m))) return false
    return true
  }, 20_000), `no webhook pending on ${running.map((m) => m.id).join(', ')}`)

  t.match(payload(ended), { data: { sessionId, instanceId: newOwner, status: 'ended' } }, 'sent by the machine that ran it at the end')
  t.ok(verify(ended, sessionSecret), 'signed with the session\'s secret, which moved with it (sealed)')
  const mine = r.at(sessionPath)
  const kinds = mine.map((x) => payload(x).type)
  // The move itself is logging back in on the new machine: told by that machine only, once.
  t.same(kinds.filter((k) => k !== 'session.reconnecting' && k !== 'session.recovered'), ['session.ended'], `the session's webhook: the end once (${kinds.join(', ')})`)
  t.ok(kinds.filter((k) => k === 'session.reconnecting').length <= 1, 'reconnecting told at most once')
  t.ok(mine.every((x) => payload(x).data.instanceId === newOwner), 'everything from the machine that runs it now (none from the one that handed it over)')
  t.same(r.at(failedPath).map((x) => payload(x).type), ['session.failed'], 'the failed start: once')
  const op = r.at(operatorPath)
  t.same(op.map((x) => payload(x).type).sort(), [...kinds, 'session.failed'].sort(), 'the operator\'s webhook: the same events, each once')
  t.ok(op.every((x) => verify(x, OPERATOR_SECRET)), 'every operator message verifies')
  const ids = r.received.map((x) => `${x.path} ${String(x.headers['webhook-id'])}`)
  t.equal(new Set(ids).size, ids.length, 'no webhook-id twice at one receiver path')

  await scanRedis('after')
  for (const m of f.machines) {
    const out = m.out() + m.err()
    for (const s of [SESSION_TOKEN, OPERATOR_TOKEN, sessionSecret, OPERATOR_SECRET]) t.notOk(out.includes(s), `not in ${m.id}'s log: ${s.slice(0, 10)}…`)
  }
})

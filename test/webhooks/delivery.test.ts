// Webhook delivery against a real HTTP receiver on 127.0.0.1: signed so
// that the standardwebhooks library's verifier accepts it, retried after
// 500s with the same webhook-id, bounded, never blocking one queue on
// another (a receiver that never answers), refused addresses never
// contacted (a name that changes its answer included), and the URL (it
// carries a token) in no log line.
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'
import { createUrlPolicy, parseAddressList, type Resolver } from '../../lib/access/url-policy.ts'
import { createDelivery, type Target } from '../../lib/webhooks/delivery.ts'
import { newWebhookSecret } from '../../lib/webhooks/url.ts'
import { startReceiver } from './receiver.ts'

function memoryLog () {
  const lines: string[] = []
  const at = (level: string) => (obj: object, msg?: string) => { lines.push(JSON.stringify({ level, ...obj, msg })) }
  return { log: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') }, text: () => lines.join('\n') }
}

const TOKEN = 'tok-Zq81x-secret-path'

t.test('signed: the standardwebhooks verifier accepts every attempt; 500, 500, 200 → delivered, one id', async (t) => {
  const r = await startReceiver(t)
  const { log, text } = memoryLog()
  const secret = newWebhookSecret()
  const d = createDelivery({ log, attempts: 5, baseDelayMs: 50, timeoutMs: 5000 })
  t.teardown(async () => { await d.close(0) })
  const path = `/hook/${TOKEN}`
  r.answer(path, [500, 500, 200])
  const target: Target = { kind: 'session', url: `${r.url}${path}`, secret }
  const body = JSON.stringify({ type: 'session.ended', timestamp: new Date().toISOString(), data: { sessionId: 's1' } })
  d.send(target, { id: 'msg_one', type: 'session.ended', sessionId: 's1', body })
  t.ok(d.pending() > 0, 'send only enqueues')
  await r.wait(path, (_x) => r.at(path).length >= 3)
  await new Promise((resolve) => setTimeout(resolve, 200))
  const got = r.at(path)
  t.equal(got.length, 3, 'three attempts: two 500s, then 200; no fourth')
  t.same(new Set(got.map((x) => x.headers['webhook-id'])), new Set(['msg_one']), 'one webhook-id on every attempt')
  const wh = new Webhook(secret)
  for (const x of got) {
    t.same(wh.verify(x.body, x.headers as Record<string, string>), JSON.parse(body), 'verified by the library')
    t.equal(x.body, body, 'the body as given')
  }
  t.throws(() => new Webhook(newWebhookSecret()).verify(got[0]!.body, got[0]!.headers as Record<string, string>), 'another secret does not verify')
  t.throws(() => wh.verify(got[0]!.body.replace('s1', 's2'), got[0]!.headers as Record<string, string>), 'a changed body does not verify')
  t.equal(d.pending(), 0)
  t.match(text(), /"webhook":"session".*"attempt":3,"status":200.*webhook delivered/)
  t.notOk(text().includes(TOKEN), 'the URL is in no log line')
})

t.test('bounded: a 500 every time is tried WEBHOOK_ATTEMPTS times; a 404 once', async (t) => {
  const r = await startReceiver(t)
  const { log, text } = memoryLog()
  const d = createDelivery({ log, attempts: 3, baseDelayMs: 20, timeoutMs: 5000 })
  t.teardown(async () => { await d.close(0) })
  r.answer('/always-500', [500])
  r.answer('/gone', [404])
  d.send({ kind: 'instance', url: `${r.url}/always-500`, secret: newWebhookSecret() }, { id: 'msg_a', type: 'session.failed', sessionId: 's1', body: '{}' })
  d.send({ kind: 'instance', url: `${r.url}/gone`, secret: newWebhookSecret() }, { id: 'msg_b', type: 'session.failed', sessionId: 's1', body: '{}' })
  for (let i = 0; i < 200 && d.pending() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(d.pending(), 0, 'given up')
  t.equal(r.at('/always-500').length, 3)
  t.equal(r.at('/gone').length, 1)
  t.match(text(), /not delivered after 3 attempts/)
  t.match(text(), /refused it \(no retry\)/)
})

t.test('a receiver that never answers blocks nothing: send returns at once, other queues deliver, the attempt times out', async (t) => {
  const r = await startReceiver(t)
  const { log, text } = memoryLog()
  const d = createDelivery({ log, attempts: 2, baseDelayMs: 20, timeoutMs: 500 })
  t.teardown(async () => { await d.close(0) })
  r.answer('/slow', 'hang')
  d.send({ kind: 'session', url: `${r.url}/slow`, secret: newWebhookSecret() }, { id: 'msg_s', type: 'session.ended', sessionId: 'a', body: '{}' })
  d.send({ kind: 'session', url: `${r.url}/fast`, secret: newWebhookSecret() }, { id: 'msg_f', type: 'session.ended', sessionId: 'b', body: '{}' })
  await r.wait('/fast')
  t.equal(r.held(), 1, 'the slow receiver still holds its request while the other one got its message')
  for (let i = 0; i < 200 && d.pending() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(d.pending(), 0, 'the slow one gave up after its attempts')
  t.equal(r.at('/slow').length, 2, 'two attempts, each cut at the timeout')
  t.match(text(), /"code":"TIMEOUT"/)
})

t.test('a refused connection is retried, then given up; an address the policy refuses is never contacted', async (t) => {
  const r = await startReceiver(t)
  const { log, text } = memoryLog()
  const closedUrl = r.url
  await r.close()
  const d = createDelivery({ log, attempts: 2, baseDelayMs: 20, timeoutMs: 2000 })
  d.send({ kind: 'session', url: `${closedUrl}/x/${TOKEN}`, secret: newWebhookSecret() }, { id: 'msg_c', type: 'session.ended', sessionId: 'a', body: '{}' })
  for (let i = 0; i < 200 && d.pending() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(text(), /"code":"ECONNREFUSED".*not delivered after 2 attempts/)
  await d.close(0)

  const r2 = await startReceiver(t)
  const guarded = createDelivery({ log, attempts: 2, baseDelayMs: 20, timeoutMs: 2000, checkUrl: createUrlPolicy({ mode: 'public-only' }).checkUrl })
  guarded.send({ kind: 'session', url: `${r2.url}/x/${TOKEN}`, secret: newWebhookSecret() }, { id: 'msg_d', type: 'session.ended', sessionId: 'a', body: '{}' })
  guarded.send({ kind: 'session', url: `${r2.url.replace('127.0.0.1', 'localhost')}/y/${TOKEN}`, secret: newWebhookSecret() }, { id: 'msg_e', type: 'session.ended', sessionId: 'b', body: '{}' })
  for (let i = 0; i < 200 && guarded.pending() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(r2.received.length, 0, 'neither the IP literal nor a name resolving to it was contacted')
  t.match(text(), /URL_POLICY_REFUSED/)
  await guarded.close(0)
  t.notOk(text().includes(TOKEN), 'the URL is in no log line')
})

t.test('DNS rebinding: each attempt connects to the address the policy checked, never to a later answer', async (t) => {
  const r = await startReceiver(t)
  const port = Number(new URL(r.url).port)
  // A canary on 127.0.0.2 (denied), same port.
  const canaryHits: string[] = []
  const canary = createServer((_req, res) => { canaryHits.push('request'); res.end() })
  canary.on('connection', () => { canaryHits.push('tcp') })
  await new Promise<void>((resolve) => canary.listen(port, '127.0.0.2', resolve))
  t.teardown(() => { canary.closeAllConnections(); canary.close() })
  t.equal((canary.address() as AddressInfo).port, port)

  let lookups = 0
  const rebinding: Resolver = async (host) => {
    if (host !== 'hooks.test') throw new Error(`ENOTFOUND ${host}`)
    return ++lookups === 1 ? ['127.0.0.1'] : ['127.0.0.2']
  }
  const policy = createUrlPolicy({ mode: 'default', resolve: rebinding, cacheMs: 0, deny: parseAddressList('FOUNDRY_URL_DENY', '127.0.0.2') })
  const { log, text } = memoryLog()
  const d = createDelivery({ log, attempts: 3, baseDelayMs: 20, timeoutMs: 2000, checkUrl: policy.checkUrl })
  t.teardown(() => d.close(0))
  const target: Target = { kind: 'session', url: `http://hooks.test:${port}/h/${TOKEN}`, secret: newWebhookSecret() }

  d.send(target, { id: 'msg_r1', type: 'session.started', sessionId: 'r', body: '{}' })
  const first = await r.wait(`/h/${TOKEN}`)
  t.equal(first.headers.host, `hooks.test:${port}`, 'delivered at the checked address (127.0.0.1), the name as Host')
  t.equal(lookups, 1, 'one resolution: the policy\'s')

  // The name now answers with the denied address.
  d.send(target, { id: 'msg_r2', type: 'session.ended', sessionId: 'r', body: '{}' })
  for (let i = 0; i < 200 && d.pending() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(d.pending(), 0)
  t.equal(r.received.length, 1, 'nothing more at the allowed address')
  t.same(canaryHits, [], 'the denied address saw no connection')
  t.match(text(), /"webhookId":"msg_r2".*"code":"URL_POLICY_REFUSED".*no retry/, 'refused once, not retried')
  t.equal(lookups, 2, 'one resolution for the refused attempt, none more')
  t.notOk(text().includes(TOKEN), 'the URL is in no log line')
})

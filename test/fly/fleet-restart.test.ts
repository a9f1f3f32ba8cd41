// One machine with Redis and a seal key keeps its session across its own
// restart (a one-machine `fly deploy`: SIGTERM, then the new machine with the
// same id starts): no machine had room to take it, so it is left in Redis,
// reconnecting with the reason, and the machine claims it again at start.
// Without a seal key, a machine killed and started again fails the sessions
// of its previous life, frees their slots and tells the operator's webhook
// once (session.failed).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { GM, eventually } from '../e2e/fixtures.ts'
import { neverTwice, startFleet } from './fleet.ts'
import { processTree } from '../../support/proc.ts'
import { payload, startReceiver } from '../webhooks/receiver.ts'
import { newWebhookSecret } from '../../lib/webhooks/url.ts'

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

t.test('a single machine restarted with a seal key keeps its session', async (t) => {
  const f = await startFleet(t, { SESSION_SEAL_KEY: randomBytes(32).toString('base64') }, ['solo'])
  const started = await f.start()
  t.equal(started.status, 200, JSON.stringify(started.body))
  const { sessionId, clientId } = started.body as { sessionId: string, clientId: string }
  const first = f.machines[0]!

  const tree = processTree(first.child.pid!)
  t.ok(tree.length > 1, `its Chromium runs below it (${tree.length} processes)`)
  first.kill('SIGTERM')
  t.equal(await first.exited, 0, 'it shut down cleanly')
  t.ok(await eventually(() => tree.every((pid) => !alive(pid)), 10_000), `every process it started ended with it (left: ${tree.filter(alive).join(', ')})`)
  t.equal(f.relay.open().filter((c) => c.id === clientId).length, 0, 'its page closed (the relay freed the module id)')
  const left = JSON.parse(await f.redis.client.get(`fs:s:${sessionId}`) ?? '{}') as { status?: string, statusReason?: string }
  t.match(left, { status: 'reconnecting', statusReason: /its machine solo shut down and no machine of the fleet had room/ }, 'left in Redis, saying why')

  const at = Date.now()
  const again = await f.add('solo')
  t.ok(await eventually(async () => (await f.find(again.url, sessionId))?.status === 'active', 30_000), 'active again after the restart')
  t.match(await f.find(again.url, sessionId), { sessionId, clientId, instanceId: 'solo', statusReason: /logged back in after: its machine solo restarted/ })
  t.ok(await eventually(() => f.relay.open().some((c) => c.id === clientId && c.openedAt >= at), 10_000), 'the module connected again')
  t.ok(neverTwice(f.relay))
  t.notOk(again.out().includes(GM.password) || first.out().includes(GM.password), 'no password in the logs')
})

t.test('a single machine killed and restarted without a seal key fails its session once, saying why, and tells the operator', async (t) => {
  const r = await startReceiver(t)
  const f = await startFleet(t, { FLEET_HEARTBEAT_MS: '1000', WEBHOOK_URL: `${r.url}/op`, WEBHOOK_SECRET: newWebhookSecret(), WEBHOOK_RETRY_BASE_MS: '100', MAX_SESSIONS: '1' }, ['solo'])
  const started = await f.start()
  t.equal(started.status, 200, JSON.stringify(started.body))
  const { sessionId } = started.body as { sessionId: string }
  await f.kill(f.machines[0]!)
  t.match(JSON.parse(await f.redis.client.get(`fs:s:${sessionId}`) ?? '{}'), { status: 'active' }, 'killed: its record still says active')

  const again = await f.add('solo')
  const failed = await r.wait('/op', (x) => payload(x).type === 'session.failed', 20_000)
  t.match(payload(failed), { type: 'session.failed', data: { sessionId, instanceId: 'solo', status: 'failed', reason: /its machine solo restarted; without SESSION_SEAL_KEY no machine can log it back in/ } })
  t.match(await f.find(again.url, sessionId), { status: 'failed', statusReason: /its machine solo restarted/ }, 'listed as failed, saying why')
  const next = await f.start()
  t.equal(next.status, 200, `its slot is free again (MAX_SESSIONS=1): ${JSON.stringify(next.body)}`)
  t.match(await f.metrics(again), /^foundry_recoveries_total\{result="no_seal_key",machine="[^"]+"\} 1$/m, 'counted once')
  t.same(r.at('/op').filter((x) => payload(x).data.sessionId === sessionId).map((x) => payload(x).type), ['session.failed'], 'told once (as of a whole login later)')
})

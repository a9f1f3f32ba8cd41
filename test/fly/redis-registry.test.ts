// The Redis session registry against the registry contract every
// implementation runs (test/lib/registry-contract.ts), on a real Redis; then
// what only a shared store has: caps across machines, and records that
// carry their machine.
import t from 'tap'
import { createRedisRegistry } from '../../lib/fleet/registry.js'
import { record, registryContract } from '../lib/registry-contract.js'
import { startRedis } from './redis.js'

const redis = await startRedis(t)
let n = 0
registryContract(t, (opts) => createRedisRegistry({ redis: redis.client, instanceId: 'contract', retainEndedMs: opts.retainEndedMs, prefix: `t${n++}:` }))

t.test('redis: the per-key cap counts every machine; each machine has its own MAX_SESSIONS', async (t) => {
  const a = createRedisRegistry({ redis: redis.client, instanceId: 'a', retainEndedMs: 60_000, prefix: 'caps:' })
  const b = createRedisRegistry({ redis: redis.client, instanceId: 'b', retainEndedMs: 60_000, prefix: 'caps:' })
  const caps = { maxSessions: 2, maxPerOwner: 3 }
  await a.insert(record(), caps)
  await a.insert(record(), caps)
  await t.rejects(a.insert(record({ ownerId: 'c'.repeat(64) }), caps), { code: 'AT_CAPACITY', message: /maximum of 2 sessions/ }, 'machine a is full')
  await b.insert(record(), caps)
  await t.rejects(b.insert(record(), caps), { code: 'AT_CAPACITY', message: /This API key has its maximum of 3/ }, 'the key\'s third session was on another machine')
  t.equal(await a.liveCount(), 2)
  t.equal(await b.liveCount(), 1)
})

t.test('redis: concurrent inserts from two machines never overshoot the per-key cap', async (t) => {
  const a = createRedisRegistry({ redis: redis.client, instanceId: 'a', retainEndedMs: 60_000, prefix: 'race:' })
  const b = createRedisRegistry({ redis: redis.client, instanceId: 'b', retainEndedMs: 60_000, prefix: 'race:' })
  const caps = { maxSessions: 100, maxPerOwner: 4 }
  const results = await Promise.allSettled(Array.from({ length: 20 }, async (_, i) => { await (i % 2 === 0 ? a : b).insert(record(), caps) }))
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 4)
})

t.test('redis: every machine sees every record and which machine runs it; resync puts back what Redis lost', async (t) => {
  const a = createRedisRegistry({ redis: redis.client, instanceId: 'a', retainEndedMs: 60_000, prefix: 'see:' })
  const b = createRedisRegistry({ redis: redis.client, instanceId: 'b', retainEndedMs: 60_000, prefix: 'see:' })
  const s = record({ status: 'active', clientId: 'foundry-x' })
  await a.insert(s, { maxSessions: 10, maxPerOwner: 10 })
  t.same(await b.get(s.id), s)
  t.same((await b.listByOwner(s.ownerId)).map((x) => x.id), [s.id])
  t.same([...await b.machinesOf([s.id, 'nope'])], [[s.id, 'a']])
  t.same(await b.liveOn('a'), [s.id])
  for (const k of await redis.client.keys('see:*')) await redis.client.del(k)
  t.equal(await b.get(s.id), undefined, 'Redis lost it')
  t.equal(await a.resync(), 1)
  t.same(await b.get(s.id), s, 'back after resync')
  t.same(await b.liveOn('a'), [s.id])
})

t.test('redis: fencing tokens — a claim outdates the old machine\'s writes, which are refused and reported', async (t) => {
  const a = createRedisRegistry({ redis: redis.client, instanceId: 'a', retainEndedMs: 60_000, prefix: 'fence:' })
  const b = createRedisRegistry({ redis: redis.client, instanceId: 'b', retainEndedMs: 60_000, prefix: 'fence:' })
  const refused: string[] = []
  a.onRefused((id, what) => { refused.push(`${id} ${what}`) })
  const s = record({ status: 'active', clientId: 'foundry-x' })
  await a.insert(s, { maxSessions: 10, maxPerOwner: 10 })
  t.equal(await redis.client.hget('fence:tok', s.id), '1', 'token 1 at insert')
  t.same([...await a.holds([s.id])], [s.id], 'a holds it')
  await a.putSealed(s.id, 'sealed-by-a')
  t.ok(await b.claim(s.id, 'a', 10, 'moving'), 'b claims it')
  t.equal(await redis.client.hget('fence:tok', s.id), '2', 'the claim counted the token up')
  t.same([...await a.holds([s.id])], [], 'a no longer holds it')
  await a.update({ ...s, statusReason: 'late write of a' })
  t.match(await b.get(s.id), { status: 'reconnecting', statusReason: 'moving' }, 'a\'s late update changed nothing')
  await a.putSealed(s.id, 'late seal of a')
  t.equal(await redis.client.get(`fence:seal:${s.id}`), 'sealed-by-a', 'nor its late sealed credentials')
  t.same(refused, [`${s.id} update`], 'the refusal is reported once; after it a writes nothing more for the session')
  await a.finish({ ...s, status: 'ended', statusReason: 'a ends it', endedAt: 5000 })
  t.match(await b.get(s.id), { status: 'reconnecting' }, 'a stale finish deletes nothing of the new owner\'s')
  t.equal(await redis.client.get(`fence:seal:${s.id}`), 'sealed-by-a', 'its seal stays')
  t.equal(await a.resync(), 0, 'a never re-registers it')
  await b.update({ ...s, status: 'active', statusReason: 'logged in on b' })
  t.match(await a.get(s.id), { statusReason: 'logged in on b' }, 'b writes with its token')
  await b.finish({ ...s, status: 'ended', statusReason: 'ended on b', endedAt: 6000 })
  t.match(await a.get(s.id), { status: 'ended', statusReason: 'ended on b' })
})

t.test('redis: a lapsed machine\'s session is claimed only while its heartbeat is gone; finishOn ends only a record still there', async (t) => {
  const a = createRedisRegistry({ redis: redis.client, instanceId: 'a', retainEndedMs: 60_000, prefix: 'lapse:' })
  const b = createRedisRegistry({ redis: redis.client, instanceId: 'b', retainEndedMs: 60_000, prefix: 'lapse:' })
  const s = record({ status: 'active' })
  await a.insert(s, { maxSessions: 10, maxPerOwner: 10 })
  await redis.client.set('lapse:machine:a', '{}', 'PX', 5000)
  t.notOk(await b.claim(s.id, 'a', 10, 'taken over', true), 'a renewed its heartbeat (back from a stall): not claimed')
  await redis.client.del('lapse:machine:a')
  const other = record({ status: 'active', username: 'Other' })
  await a.insert(other, { maxSessions: 10, maxPerOwner: 10 })
  t.notOk(await b.finishOn({ ...other, status: 'ended', statusReason: 'x', endedAt: 1 }, 'c'), 'not on c: refused')
  t.ok(await b.finishOn({ ...other, status: 'ended', statusReason: 'ended by the client', endedAt: 1 }, 'a'), 'on a: ended')
  t.ok(await b.claim(s.id, 'a', 10, 'taken over', true), 'gone: claimed')
  t.notOk(await b.finishOn({ ...s, status: 'ended', statusReason: 'x', endedAt: 1 }, 'a'), 'no longer on a: refused')
})

t.test('redis: an end this machine could not write (Redis unreachable) is written at the next resync', async (t) => {
  const a = createRedisRegistry({ redis: redis.client, instanceId: 'a', retainEndedMs: 60_000, prefix: 'unwritten:' })
  const s = record({ status: 'active' })
  await a.insert(s, { maxSessions: 10, maxPerOwner: 10 })
  // Redis unreachable for one command (the registry's client times it out).
  const client = redis.client as unknown as { eval: (...a: unknown[]) => Promise<unknown> }
  const real = client.eval.bind(client)
  let fail = true
  client.eval = async (...args) => {
    if (fail) { fail = false; throw new Error('Command timed out') }
    return await real(...args)
  }
  t.teardown(() => { client.eval = real })
  await t.rejects(a.finish({ ...s, status: 'ended', statusReason: 'ended by the client', endedAt: 2000 }), { code: 'FLEET_UNAVAILABLE' })
  t.match(await a.get(s.id), { status: 'active' }, 'still live in Redis')
  await a.resync()
  t.match(await a.get(s.id), { status: 'ended', statusReason: 'ended by the client' }, 'written once Redis answers')
  t.equal(await a.liveCount(), 0)
})

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

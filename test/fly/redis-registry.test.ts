// The Redis session registry against the registry contract every
// implementation runs (test/lib/registry-contract.ts), the fleet's part
// included (machines, claims, fencing), on a real Redis; then what only Redis
// has: two machines' inserts racing, the fencing token as
// stored, and a Redis that lost everything or did not answer.
import t from 'tap'
import { createRedisRegistry } from '../../lib/fleet/registry.ts'
import { fleetContract, record, registryContract } from '../lib/registry-contract.ts'
import { monitoredArgs, redisFleet, startRedis } from './redis.ts'

const redis = await startRedis(t)
let n = 0
registryContract(t, (opts) => createRedisRegistry({ redis: redis.client, instanceId: 'contract', retainEndedMs: opts.retainEndedMs, prefix: `t${n++}:` }))
fleetContract(t, () => redisFleet(redis.client))

t.test('redis: concurrent inserts from two machines never overshoot the per-key cap', async (t) => {
  const a = createRedisRegistry({ redis: redis.client, instanceId: 'a', retainEndedMs: 60_000, prefix: 'race:' })
  const b = createRedisRegistry({ redis: redis.client, instanceId: 'b', retainEndedMs: 60_000, prefix: 'race:' })
  const caps = { maxSessions: 100, maxPerOwner: 4 }
  const results = await Promise.allSettled(Array.from({ length: 20 }, async (_, i) => { await (i % 2 === 0 ? a : b).insert(record(), caps) }))
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 4)
})

t.test('redis: resync puts back what Redis lost', async (t) => {
  const a = createRedisRegistry({ redis: redis.client, instanceId: 'a', retainEndedMs: 60_000, prefix: 'see:' })
  const b = createRedisRegistry({ redis: redis.client, instanceId: 'b', retainEndedMs: 60_000, prefix: 'see:' })
  const s = record({ status: 'active', clientId: 'foundry-x' })
  await a.insert(s, { maxSessions: 10, maxPerOwner: 10 })
  t.same(await b.get(s.id), s)
  for (const k of await redis.client.keys('see:*')) await redis.client.del(k)
  t.equal(await b.get(s.id), undefined, 'Redis lost it')
  t.equal(await a.resync(), 1)
  t.same(await b.get(s.id), s, 'back after resync')
  t.same(await b.liveOn('a'), [s.id])
})

t.test('redis: the fencing token as stored: 1 at insert, one more per claim', async (t) => {
  const a = createRedisRegistry({ redis: redis.client, instanceId: 'a', retainEndedMs: 60_000, prefix: 'fence:' })
  const b = createRedisRegistry({ redis: redis.client, instanceId: 'b', retainEndedMs: 60_000, prefix: 'fence:' })
  const s = record({ status: 'active', clientId: 'foundry-x' })
  await a.insert(s, { maxSessions: 10, maxPerOwner: 10 })
  t.equal(await redis.client.hget('fence:tok', s.id), '1', 'token 1 at insert')
  t.ok(await b.claim(s.id, 'a', 10, 'moving'), 'b claims it')
  t.equal(await redis.client.hget('fence:tok', s.id), '2', 'the claim counted the token up')
  t.ok(await a.claim(s.id, 'b', 10), 'a claims it back')
  t.equal(await redis.client.hget('fence:tok', s.id), '3')
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

t.test('MONITOR lines are read back into their arguments (test/fly/redis.ts monitoredArgs)', async (t) => {
  // As Redis writes them: printable bytes as they are, quotes and
  // backslashes escaped, control bytes as \n \r \t or \xHH, UTF-8 byte by byte.
  const line = String.raw`+1700000000.123456 [0 127.0.0.1:5000] "SET" "fs:rec" "{\"clientId\":\"a b\"}" "line\nnext\ttab" "\x00\x7f" "\xc3\xa9t\xc3\xa9" ""`
  t.same(monitoredArgs(line), ['SET', 'fs:rec', '{"clientId":"a b"}', 'line\nnext\ttab', '\u0000\u007f', 'été', ''])
  t.same(monitoredArgs('+OK'), [], 'not a command line')
})

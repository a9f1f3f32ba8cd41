// The session registry's contract, as a suite any implementation can run:
// registryContract(t, (opts) => createXRegistry(opts)). The in-memory store
// runs it in session-registry.test.ts; a shared (Redis) store runs the same.
import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import { initialState } from '../../lib/session/machine.js'
import type { SessionRegistry } from '../../lib/session/registry.js'
import type { Session } from '../../lib/session/types.js'

export interface ContractOptions { retainEndedMs: number }
export type MakeRegistry = (opts: ContractOptions) => SessionRegistry | Promise<SessionRegistry>

type Tap = Test

const OWNER_A = 'a'.repeat(64)
const OWNER_B = 'b'.repeat(64)
const URL_1 = 'http://foundry.test:30000/'
const URL_2 = 'http://other.test:30000/'

export function record (over: Partial<Session> = {}): Session {
  return {
    id: randomUUID(),
    ownerId: OWNER_A,
    ...initialState(1000),
    stage: null,
    foundryUrl: URL_1,
    username: 'Gamemaster',
    worldName: '',
    clientId: null,
    info: null,
    ...over
  }
}

const CAPS = { maxSessions: 100, maxPerOwner: 100 }

export function registryContract (t: Tap, make: MakeRegistry): void {
  const fresh = async (retainEndedMs = 60_000): Promise<SessionRegistry> => await make({ retainEndedMs })

  t.test('insert, get, update: records are copies, not shared objects', async (t) => {
    const r = await fresh()
    const s = record({ worldName: 'Lost Mine' })
    await r.insert(s, CAPS)
    t.same(await r.get(s.id), s, 'what was inserted comes back')
    const got = (await r.get(s.id))!
    got.status = 'active'
    s.stage = 'join'
    t.same(await r.get(s.id), { ...s, stage: null }, 'changing a returned or inserted object changes nothing stored')
    await r.update({ ...s, status: 'active', statusReason: 'logged in', activeSince: 2000, clientId: 'foundry-x' })
    t.match(await r.get(s.id), { status: 'active', statusReason: 'logged in', activeSince: 2000, clientId: 'foundry-x' })
    t.equal(await r.get(randomUUID()), undefined, 'an unknown id is undefined')
    t.equal(await r.liveCount(), 1)
  })

  t.test('listByOwner: only that owner\'s, live first then ended', async (t) => {
    const r = await fresh()
    const a1 = record()
    const a2 = record({ username: 'Player' })
    const b1 = record({ ownerId: OWNER_B })
    for (const s of [a1, a2, b1]) await r.insert(s, CAPS)
    await r.finish({ ...a1, status: 'ended', statusReason: 'ended by the client', endedAt: 3000 })
    const listed = await r.listByOwner(OWNER_A)
    t.same(listed.map((s) => s.id), [a2.id, a1.id])
    t.match(listed[1], { status: 'ended', endedAt: 3000 })
    t.same((await r.listByOwner(OWNER_B)).map((s) => s.id), [b1.id])
    t.same(await r.listByOwner('c'.repeat(64)), [])
  })

  t.test('caps: total and per owner, with retryAfter; ended sessions do not count', async (t) => {
    const r = await fresh()
    const caps = { maxSessions: 3, maxPerOwner: 2 }
    await r.insert(record(), caps)
    const second = record()
    await r.insert(second, caps)
    await t.rejects(r.insert(record(), caps), { code: 'AT_CAPACITY', statusCode: 429, retryAfter: 30, message: /This API key has its maximum of 2 sessions/ }, 'per owner')
    await r.insert(record({ ownerId: OWNER_B }), caps)
    await t.rejects(r.insert(record({ ownerId: OWNER_B }), caps), { code: 'AT_CAPACITY', message: /maximum of 3 sessions/ }, 'in total')
    t.equal(await r.liveCount(), 3)
    await r.finish({ ...second, status: 'failed', statusReason: 'x', endedAt: 2000 })
    t.equal(await r.liveCount(), 2)
    await r.insert(record(), caps)
    t.equal(await r.liveCount(), 3, 'a finished session freed its place')
  })

  t.test('caps are counted atomically with the insert: concurrent inserts never overshoot', async (t) => {
    const r = await fresh()
    const caps = { maxSessions: 50, maxPerOwner: 5 }
    const results = await Promise.allSettled(Array.from({ length: 20 }, async () => { await r.insert(record(), caps) }))
    t.equal(results.filter((x) => x.status === 'fulfilled').length, 5, 'exactly the cap got in')
    t.ok(results.filter((x) => x.status === 'rejected').every((x) => (x as PromiseRejectedResult).reason.code === 'AT_CAPACITY'))
    t.equal((await r.listByOwner(OWNER_A)).length, 5)
  })

  t.test('findSame: same owner, Foundry URL and user (any case, or the user id); live only', async (t) => {
    const r = await fresh()
    const mine = record({ status: 'active', info: { userId: 'aB3dE5gH7jK9mN1p' } as Session['info'] })
    const otherUrl = record({ foundryUrl: URL_2 })
    const otherOwner = record({ ownerId: OWNER_B })
    const otherUser = record({ username: 'Player One' })
    for (const s of [mine, otherUrl, otherOwner, otherUser]) await r.insert(s, CAPS)
    const ids = async (username: string, ownerId = OWNER_A, foundryUrl = URL_1): Promise<string[]> =>
      (await r.findSame({ ownerId, foundryUrl, username })).map((s) => s.id)
    t.same(await ids('Gamemaster'), [mine.id])
    t.same(await ids('gamemaster'), [mine.id], 'user names match without regard to case')
    t.same(await ids('aB3dE5gH7jK9mN1p'), [mine.id], 'or by the logged-in user id')
    t.same(await ids('Gamemaster', OWNER_B), [otherOwner.id], 'never another owner\'s')
    t.same(await ids('Gamemaster', OWNER_A, URL_2), [otherUrl.id])
    t.same(await ids('Nobody'), [])
    await r.finish({ ...mine, status: 'ended', statusReason: 'ended by the client', endedAt: 2000 })
    t.same(await ids('Gamemaster'), [], 'an ended session is not found')
  })

  t.test('finish: kept as ended; an update after it does not bring it back; only final statuses', async (t) => {
    const r = await fresh()
    const s = record({ status: 'active' })
    await r.insert(s, CAPS)
    await t.rejects(r.finish(s), 'an active record cannot be finished')
    const ended = { ...s, status: 'ended' as const, statusReason: 'ended by the client', endedAt: 5000 }
    await r.finish(ended)
    await r.update({ ...s, status: 'active', statusReason: 'late write' })
    t.same(await r.get(s.id), ended, 'the late write changed nothing')
    t.equal(await r.liveCount(), 0)
  })

  t.test('remove: live or retained; false when there is none', async (t) => {
    const r = await fresh()
    const a = record()
    const b = record()
    await r.insert(a, CAPS)
    await r.insert(b, CAPS)
    await r.finish({ ...b, status: 'failed', statusReason: 'x', endedAt: 2000 })
    t.equal(await r.remove(a.id), true)
    t.equal(await r.remove(b.id), true)
    t.equal(await r.remove(b.id), false)
    t.equal(await r.get(a.id), undefined)
    t.equal(await r.get(b.id), undefined)
    t.same(await r.listByOwner(OWNER_A), [])
  })

  t.test('prune: ended sessions are forgotten retainEndedMs after they ended; live ones stay', async (t) => {
    const r = await fresh(10_000)
    const old = record()
    const recent = record()
    const running = record({ status: 'active' })
    for (const s of [old, recent, running]) await r.insert(s, CAPS)
    await r.finish({ ...old, status: 'ended', statusReason: 'x', endedAt: 1000 })
    await r.finish({ ...recent, status: 'failed', statusReason: 'y', endedAt: 5000 })
    await r.prune(10_999)
    t.same((await r.listByOwner(OWNER_A)).map((s) => s.id).sort(), [old.id, recent.id, running.id].sort(), 'nothing yet')
    await r.prune(11_000)
    t.same((await r.listByOwner(OWNER_A)).map((s) => s.id).sort(), [recent.id, running.id].sort(), 'the old one went')
    await r.prune(1e9)
    t.same((await r.listByOwner(OWNER_A)).map((s) => s.id), [running.id], 'a live session is never pruned')
  })

  t.test('start lock: one live session per lock, even for inserts at the same moment; free again once it is over', async (t) => {
    const r = await fresh()
    const lock = 'lock-1'
    const tries = Array.from({ length: 6 }, () => record())
    const held = await Promise.all(tries.map(async (s) => await r.insert(s, CAPS, lock)))
    const winners = tries.filter((_, i) => held[i] === null)
    t.equal(winners.length, 1, 'exactly one inserted')
    t.ok(held.every((h) => h === null || h === winners[0]!.id), 'the others are told who holds it')
    t.equal(await r.liveCount(), 1)
    t.equal(await r.insert(record(), CAPS, 'lock-2'), null, 'another lock is free')
    t.equal(await r.insert(record(), CAPS), null, 'no lock: no check')
    await r.finish({ ...winners[0]!, status: 'failed', statusReason: 'x', endedAt: 2000 })
    const next = record()
    t.equal(await r.insert(next, CAPS, lock), null, 'a finished session let go of its lock')
    await r.remove(next.id)
    t.equal(await r.insert(record(), CAPS, lock), null, 'so did a removed one')
  })

  t.test('touch: the latest API call made elsewhere, for live sessions only', async (t) => {
    const r = await fresh()
    const a = record()
    const b = record()
    await r.insert(a, CAPS)
    await r.insert(b, CAPS)
    await r.touch([a.id], 5000)
    await r.touch([a.id], 4000)
    t.same([...await r.touched([a.id, b.id])], [[a.id, 5000]], 'the latest; none for b')
    await r.finish({ ...a, status: 'ended', statusReason: 'x', endedAt: 6000 })
    await r.touch([a.id], 7000)
    t.same([...await r.touched([a.id])], [], 'an ended session keeps no touch')
  })
}

// The session registry's contract, as a suite any implementation can run:
// registryContract(t, (opts) => createXRegistry(opts)), and what a fleet's
// registry adds (machines, claims, fencing tokens, sealed credentials):
// fleetContract(t, makeFleet), with several machines on one store. The
// in-memory store runs both in session-registry.test.ts; the Redis store
// runs the same in test/fly/redis-registry.test.ts.
import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import { initialState } from '../../lib/session/machine.ts'
import { createMemoryRegistry, createMemoryStore, type FleetRegistry, type SessionRegistry } from '../../lib/session/registry.ts'
import type { Session } from '../../lib/session/types.ts'

export interface ContractOptions { retainEndedMs: number }
export type MakeRegistry = (opts: ContractOptions) => SessionRegistry | Promise<SessionRegistry>

/** One fleet's shared store, fresh: the registry of each machine on it, and the machines' heartbeats (their leases). */
export interface FleetBackend {
  /**
   * The registry of machine `machine` (one per machine; every machine of a backend sees the same records);
   * fresh: a new one in its place (the machine's process restarted: it holds no token).
   */
  on: (machine: string, fresh?: boolean) => FleetRegistry
  /** Machine `machine`'s heartbeat alive (its lease held) or gone. */
  heartbeat: (machine: string, alive: boolean) => Promise<void>
}
export type MakeFleet = () => FleetBackend | Promise<FleetBackend>

/** A fresh in-memory fleet: one MemoryStore, one registry per machine on it. */
export function memoryFleet (): FleetBackend {
  const store = createMemoryStore()
  const machines = new Map<string, FleetRegistry>()
  return {
    on (machine, fresh = false) {
      let r = fresh ? undefined : machines.get(machine)
      if (r === undefined) { r = createMemoryRegistry({ retainEndedMs: 60_000, instanceId: machine, store }); machines.set(machine, r) }
      return r
    },
    async heartbeat (machine, alive) {
      if (alive) store.heartbeats.add(machine)
      else store.heartbeats.delete(machine)
    }
  }
}

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

/** What a fleet's registry adds: which machine runs what, claims, fencing, sealed credentials. */
export function fleetContract (t: Tap, make: MakeFleet): void {
  const caps = { maxSessions: 10, maxPerOwner: 10 }

  t.test('fleet: every machine sees every record and the machine running it; MAX_SESSIONS per machine, the per-key cap fleet-wide', async (t) => {
    const f = await make()
    const a = f.on('a')
    const b = f.on('b')
    const s = record({ status: 'active', clientId: 'foundry-x' })
    await a.insert(s, caps)
    t.same(await b.get(s.id), s)
    t.same((await b.listByOwner(s.ownerId)).map((x) => x.id), [s.id])
    t.same([...await b.machinesOf([s.id, randomUUID()])], [[s.id, 'a']])
    t.same(await b.liveOn('a'), [s.id])
    t.same(await b.liveOn('b'), [])
    t.equal(await a.liveCount(), 1)
    t.equal(await b.liveCount(), 0, 'liveCount: this machine\'s')
    const small = { maxSessions: 2, maxPerOwner: 3 }
    await a.insert(record({ username: 'Two' }), small)
    await t.rejects(a.insert(record({ ownerId: OWNER_B }), small), { code: 'AT_CAPACITY', message: /maximum of 2 sessions/ }, 'machine a is full')
    await b.insert(record({ username: 'Three' }), small)
    await t.rejects(b.insert(record({ username: 'Four' }), small), { code: 'AT_CAPACITY', message: /This API key has its maximum of 3/ }, 'the key\'s third session was on another machine')
    t.equal(await b.insert(record({ ownerId: OWNER_B }), small), null, 'b has room of its own')
  })

  t.test('fleet: fencing tokens — a claim outdates the old machine\'s writes, which are refused and reported once', async (t) => {
    const f = await make()
    const a = f.on('a')
    const b = f.on('b')
    const refused: string[] = []
    a.onRefused((id, what) => { refused.push(`${id} ${what}`) })
    const s = record({ status: 'active', clientId: 'foundry-x' })
    await a.insert(s, caps)
    t.same([...await a.holds([s.id])], [s.id], 'a holds it')
    t.same([...await b.holds([s.id])], [], 'b does not')
    await a.putSealed(s.id, 'sealed-by-a')
    t.equal(await b.sealed(s.id), 'sealed-by-a')
    t.ok(await b.claim(s.id, 'a', 10, 'moving'), 'b claims it')
    t.same([...await b.machinesOf([s.id])], [[s.id, 'b']])
    t.same([...await b.holds([s.id])], [s.id], 'b holds it now')
    t.same([...await a.holds([s.id])], [], 'a no longer does')
    t.match(await a.get(s.id), { status: 'reconnecting', statusReason: 'moving', module: null }, 'the claim\'s reason is in the record from the same step on')
    t.notOk(await a.claim(s.id, 'a', 10), 'no longer on a: a claim from a is refused')
    await a.update({ ...s, statusReason: 'late write of a' })
    t.match(await b.get(s.id), { status: 'reconnecting', statusReason: 'moving' }, 'a\'s late update changed nothing')
    await a.putSealed(s.id, 'late seal of a')
    t.equal(await b.sealed(s.id), 'sealed-by-a', 'nor its late sealed credentials')
    t.same(refused, [`${s.id} update`], 'the refusal is reported once; after it a writes nothing more for the session')
    await a.finish({ ...s, status: 'ended', statusReason: 'a ends it', endedAt: 5000 })
    t.match(await b.get(s.id), { status: 'reconnecting' }, 'a stale finish deletes nothing of the new owner\'s')
    t.equal(await b.sealed(s.id), 'sealed-by-a', 'its seal stays')
    t.equal(await a.resync(), 0, 'a never writes it again')
    t.same(await a.liveOn('a'), [], 'nor registers it as its own')
    await b.update({ ...s, status: 'active', statusReason: 'logged in on b' })
    t.match(await a.get(s.id), { statusReason: 'logged in on b' }, 'b writes with its token')
    await b.finish({ ...s, status: 'ended', statusReason: 'ended on b', endedAt: 6000 })
    t.match(await a.get(s.id), { status: 'ended', statusReason: 'ended on b' })
    t.equal(await a.sealed(s.id), null, 'its sealed credentials went with it')
    t.same(refused, [`${s.id} update`])
  })

  t.test('fleet: one claimer wins; a claimer needs room, the session\'s own machine always has it', async (t) => {
    const f = await make()
    const a = f.on('a')
    const s = record({ status: 'active' })
    await a.insert(s, caps)
    const claimers = ['b', 'c', 'd', 'e'].map((m) => f.on(m))
    const won = await Promise.all(claimers.map(async (r) => await r.claim(s.id, 'a', 10)))
    t.equal(won.filter(Boolean).length, 1, 'exactly one claim of the same session at once')
    const winner = claimers[won.indexOf(true)]!
    const full = f.on('full')
    await full.insert(record({ username: 'Full' }), { maxSessions: 1, maxPerOwner: 10 })
    const other = record({ status: 'active', username: 'Other' })
    await a.insert(other, caps)
    t.notOk(await full.claim(other.id, 'a', 1), 'no room on the claimer')
    t.ok(await a.claim(other.id, 'a', 0), 'its own machine claims it again (a handover that found nobody): a new token, no room needed')
    t.same([...await a.holds([other.id])], [other.id])
    t.same([...await winner.holds([s.id])], [s.id])
  })

  t.test('fleet: a lapsed machine\'s session is claimed only while its heartbeat is gone; finishOn ends only a record still there', async (t) => {
    const f = await make()
    const a = f.on('a')
    const b = f.on('b')
    const s = record({ status: 'active' })
    await a.insert(s, caps)
    await f.heartbeat('a', true)
    t.notOk(await b.claim(s.id, 'a', 10, 'taken over', true), 'a renewed its heartbeat (back from a stall): not claimed')
    await f.heartbeat('a', false)
    const other = record({ status: 'active', username: 'Other' })
    await a.insert(other, caps)
    t.notOk(await b.finishOn({ ...other, status: 'ended', statusReason: 'x', endedAt: 1 }, 'c'), 'not on c: refused')
    await t.rejects(b.finishOn({ ...other, status: 'active' }, 'a'), 'only a final record')
    await f.heartbeat('a', true)
    t.notOk(await b.finishOn({ ...other, status: 'ended', statusReason: 'x', endedAt: 1 }, 'a', true), 'lapsed, but a renewed its heartbeat: refused')
    await f.heartbeat('a', false)
    t.ok(await b.finishOn({ ...other, status: 'ended', statusReason: 'ended by the client', endedAt: 1 }, 'a', true), 'on a, its heartbeat gone: ended')
    t.match(await a.get(other.id), { status: 'ended', statusReason: 'ended by the client' })
    t.ok(await b.claim(s.id, 'a', 10, 'taken over', true), 'gone: claimed')
    t.match(await a.get(s.id), { status: 'reconnecting', statusReason: 'taken over' })
    t.notOk(await b.finishOn({ ...s, status: 'ended', statusReason: 'x', endedAt: 1 }, 'a'), 'no longer on a: refused')
    const ended = { ...s, status: 'failed' as const, statusReason: 'x', endedAt: 1 }
    t.ok(await a.finishOn(ended, 'b'), 'on b: ended')
    t.notOk(await b.claim(s.id, 'b', 10), 'an ended session is never claimed')
  })

  t.test('fleet: disown forgets the token (writes of this machine change nothing, and nothing is reported); holds and resync count only what is held', async (t) => {
    const f = await make()
    const a = f.on('a')
    const refused: string[] = []
    a.onRefused((id) => { refused.push(id) })
    const kept = record({ status: 'active' })
    const given = record({ status: 'active', username: 'Given' })
    await a.insert(kept, caps)
    await a.insert(given, caps)
    t.equal(await a.resync(), 2)
    a.disown(given.id)
    await a.update({ ...given, statusReason: 'after disown' })
    t.match(await a.get(given.id), { status: 'active', statusReason: given.statusReason }, 'not written')
    t.same(refused, [], 'and not reported: it is not this machine\'s any more')
    t.same([...await a.holds([kept.id, given.id])], [kept.id])
    t.equal(await a.resync(), 1)
    await a.remove(kept.id)
    t.same([...await a.holds([kept.id])], [], 'removed: nothing held')
    t.equal(await a.sealed(kept.id), null)
  })
}

// The fleet's decisions (lib/fleet/coordinator.ts) on a real Redis registry,
// with this machine's sessions, heartbeat and handover as plain collaborators
// that record what they were asked; and replay routing as a pure function.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createCoordinator, route, type CoordinatedSessions } from '../../lib/fleet/coordinator.js'
import { createRedisRegistry } from '../../lib/fleet/registry.js'
import { createSealer, sealCredentials } from '../../lib/fleet/seal.js'
import type { MachineState } from '../../lib/fleet/machines.js'
import { startOptions, type Session } from '../../lib/session/types.js'
import { record } from '../lib/registry-contract.js'
import { startRedis } from './redis.js'

const redis = await startRedis(t)
const KEY = randomBytes(32).toString('base64')
const CAPS = { maxSessions: 10, maxPerOwner: 10 }
const quiet = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} }
let n = 0

function setup (opts: { key?: string, machines?: MachineState[], offer?: boolean } = {}) {
  const prefix = `c${n++}:`
  const reg = (id: string) => createRedisRegistry({ redis: redis.client, instanceId: id, retainEndedMs: 60_000, prefix })
  const here = reg('me')
  const there = reg('x')
  const sealer = createSealer(opts.key ?? KEY)
  const taken: Array<{ id: string, reason: string, password: string }> = []
  const released: string[] = []
  const offers: string[] = []
  let running: Session[] = []
  const sessions: CoordinatedSessions = {
    takeOver: (s, c, reason) => { taken.push({ id: s.id, reason, password: c.secrets.password }); running.push(s) },
    release: async (id) => { released.push(id); running = running.filter((s) => s.id !== id); return true },
    running: () => running,
    ids: () => running.map((s) => s.id),
    keepAgain: async () => 0
  }
  const coordinator = createCoordinator({
    me: 'me',
    maxSessions: 10,
    registry: here,
    heartbeat: { machines: async () => opts.machines ?? [], acting: () => true },
    handover: { offer: async (id, _owner, to) => { offers.push(`${id}→${to}`); return opts.offer ?? false } },
    sessions,
    sealer,
    closing: () => false,
    log: quiet
  })
  return { prefix, here, there, coordinator, taken, released, offers }
}

/** A live session on machine x, its credentials sealed there with `key`. */
async function onX (x: ReturnType<typeof createRedisRegistry>, key = KEY): Promise<Session> {
  const s = record({ status: 'active', clientId: 'foundry-x' })
  await x.insert(s, CAPS)
  const options = startOptions({ foundryUrl: s.foundryUrl, username: s.username }, {})
  await x.putSealed(s.id, sealCredentials(createSealer(key), s.id, { options, secrets: { password: 'pw-x' } }, s.ownerId))
  return s
}

t.test('route: served here, replayed, replay missed, or its machine gone', async (t) => {
  const s = record({ status: 'active' })
  const base = { me: 'm1', replayed: false, session: s, machine: 'm2', live: ['m1', 'm2'] }
  t.same(route(base), { to: 'replay', machine: 'm2' })
  t.same(route({ ...base, replayed: true }), { to: 'missed', machine: 'm2' }, 'never replayed twice')
  t.same(route({ ...base, machine: 'm1' }), { to: 'here' })
  t.same(route({ ...base, machine: undefined }), { to: 'here' })
  t.same(route({ ...base, session: undefined }), { to: 'here' }, 'unknown or another key\'s: SESSION_NOT_FOUND here')
  t.same(route({ ...base, session: { ...s, status: 'ended' } }), { to: 'here' }, 'over: its final state from here')
  t.same(route({ ...base, live: ['m1'] }), { to: 'gone', machine: 'm2' })
  t.same(route({ ...base, machine: 'm2;elsewhere=true', live: ['m1', 'm2;elsewhere=true'] }), { to: 'gone', machine: 'm2;elsewhere=true' }, 'a malformed machine id never reaches fly-replay')
})

t.test('a lapsed machine\'s session is claimed and adopted here, with its credentials', async (t) => {
  const c = setup()
  const s = await onX(c.there)
  await c.coordinator.machineGone('x')
  t.same(c.taken.map((x) => [x.id, x.password]), [[s.id, 'pw-x']], 'logged in here from the sealed credentials')
  t.match(c.taken[0]!.reason, /machine x stopped.*taken over by machine me/)
  t.same([...await c.here.machinesOf([s.id])], [[s.id, 'me']], 'the registry says it runs here')
  t.equal(await redis.client.hget(`${c.prefix}tok`, s.id), '2', 'with a new fencing token')
})

t.test('credentials that do not open here: not claimed; passed on, or failed saying why', async (t) => {
  const c = setup({ machines: [{ id: 'y', sessions: 0, maxSessions: 5, closing: false, at: 0 }] })
  const s = await onX(c.there, randomBytes(32).toString('base64'))
  await c.coordinator.machineGone('x')
  t.same(c.taken, [], 'not taken here')
  t.same(c.offers, [`${s.id}→y`], 'offered to the machine with room')
  t.match(await c.here.get(s.id), { status: 'failed', statusReason: /no machine of the fleet could take it over/ }, 'nobody took it: failed, saying why')
})

t.test('offers: only from the machine running the session, or for one closing or gone; declined when the credentials do not open', async (t) => {
  const alive = { id: 'x', sessions: 1, maxSessions: 5, closing: false, at: 0 }
  t.ok(await setup({ machines: [alive] }).coordinator.acceptOffer('s', 'x', 'x'), 'from its machine')
  t.notOk(await setup({ machines: [alive] }).coordinator.acceptOffer('s', 'x', 'z'), 'a third machine offering a live machine\'s session: refused')
  t.ok(await setup({ machines: [{ ...alive, closing: true }] }).coordinator.acceptOffer('s', 'x', 'z'), 'its machine is closing')
  t.ok(await setup({ machines: [] }).coordinator.acceptOffer('s', 'x', 'z'), 'its machine is gone')

  const c = setup()
  const s = await onX(c.there, randomBytes(32).toString('base64'))
  t.notOk(await c.coordinator.claimOffered(s.id, 'x'), 'another key\'s seal: declined')
  t.same([...await c.here.machinesOf([s.id])], [[s.id, 'x']], 'still on x')
  const ok = await onX(c.there)
  t.ok(await c.coordinator.claimOffered(ok.id, 'x'), 'its own key: claimed')
})

t.test('back after a fence: sessions another machine took are dropped here, never re-registered; refused writes drop at once', async (t) => {
  const c = setup()
  const mine = record({ status: 'active' })
  const kept = record({ status: 'active', username: 'Other' })
  await c.here.insert(mine, CAPS)
  await c.here.insert(kept, CAPS)
  await c.coordinator.machineGone('nobody') // nothing to do
  // Make them run here, as far as the coordinator's sessions know.
  await c.there.claim(mine.id, 'me', 10, 'taken over while me was cut off')
  const sessions = [mine, kept]
  const released: string[] = []
  const c2 = createCoordinator({
    me: 'me',
    maxSessions: 10,
    registry: c.here,
    heartbeat: { machines: async () => [], acting: () => true },
    handover: { offer: async () => false },
    sealer: null,
    closing: () => false,
    log: quiet,
    sessions: { takeOver: () => {}, release: async (id) => { released.push(id); return true }, running: () => sessions, ids: () => sessions.map((s) => s.id), keepAgain: async () => 0 }
  })
  await c2.comeBack()
  t.same(released, [mine.id], 'the one x took is dropped; the other stays')
  t.equal(await c.here.resync(), 1, 'only the kept one is registered again')
  c2.refused(kept.id, 'update')
  t.same(released, [mine.id, kept.id], 'a refused write drops the session')
})

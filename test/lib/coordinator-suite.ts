// The fleet's decisions (lib/fleet/coordinator.ts) as a suite any fleet
// registry runs: coordinatorSuite(t, makeFleet) with the in-memory registry
// (test/lib/coordinator.test.ts) and the Redis one (test/fly/coordinator.test.ts).
// This machine ('me') is the coordinator's; machine 'x' runs sessions on the
// same store. This machine's sessions, heartbeat and handover are plain
// collaborators that record what they were asked.
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { createCoordinator, type CoordinatedSessions } from '../../lib/fleet/coordinator.ts'
import { createSealer, sealCredentials } from '../../lib/fleet/seal.ts'
import type { MachineState } from '../../lib/fleet/machines.ts'
import type { FleetRegistry } from '../../lib/session/registry.ts'
import { startOptions, type Session } from '../../lib/session/types.ts'
import { record, type FleetBackend, type MakeFleet } from './registry-contract.ts'

export const KEY = randomBytes(32).toString('base64')
const CAPS = { maxSessions: 10, maxPerOwner: 10 }
export const quiet = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} }

export const HOOK = 'https://hooks.example/session-x'

/** A live session on machine x (active unless told), its credentials (with its own webhook) sealed there with `key`. */
export async function onX (x: FleetRegistry, key = KEY, over: Partial<Session> = {}): Promise<Session> {
  const s = record({ status: 'active', clientId: 'foundry-x', ...over })
  await x.insert(s, CAPS)
  const options = startOptions({ foundryUrl: s.foundryUrl, username: s.username }, {})
  await x.putSealed(s.id, sealCredentials(createSealer(key), s.id, { options, secrets: { password: 'pw-x', webhookUrl: HOOK, webhookSecret: 'whsec_x' } }, s.ownerId))
  return s
}

export function coordinatorSuite (t: Test, make: MakeFleet): void {
  /** key null: no SESSION_SEAL_KEY; fleet and fresh: this machine restarted on a fleet that ran it before. */
  async function setup (opts: { key?: string | null, machines?: MachineState[], offer?: boolean, fleet?: FleetBackend, fresh?: boolean } = {}) {
    const fleet = opts.fleet ?? await make()
    const here = fleet.on('me', opts.fresh)
    const there = fleet.on('x')
    const sealer = opts.key === null ? null : createSealer(opts.key ?? KEY)
    const taken: Array<{ id: string, reason: string, password: string }> = []
    const released: string[] = []
    const offers: string[] = []
    /** What onDecided was told: the record written, and the session's webhook when its credentials opened here. */
    const failed: Array<{ id: string, status: string, reason: string, webhookUrl: string | null }> = []
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
      log: quiet,
      onDecided: (s, webhook) => { failed.push({ id: s.id, status: s.status, reason: s.statusReason, webhookUrl: webhook?.webhookUrl ?? null }) }
    })
    return { fleet, here, there, coordinator, taken, released, offers, failed }
  }

  t.test('a lapsed machine\'s session is claimed and adopted here, with its credentials', async (t) => {
    const c = await setup()
    const s = await onX(c.there)
    await c.coordinator.machineGone('x')
    t.same(c.taken.map((x) => [x.id, x.password]), [[s.id, 'pw-x']], 'logged in here from the sealed credentials')
    t.match(c.taken[0]!.reason, /machine x stopped.*taken over by machine me/)
    t.same([...await c.here.machinesOf([s.id])], [[s.id, 'me']], 'the registry says it runs here')
    t.same([...await c.here.holds([s.id])], [s.id], 'with a fencing token of this machine\'s')
    t.same([...await c.there.holds([s.id])], [], 'x\'s token is stale')
  })

  t.test('a lapsed machine that is back (its heartbeat renewed) keeps its session: neither taken nor failed', async (t) => {
    for (const key of [KEY, randomBytes(32).toString('base64'), null]) {
      const c = await setup({ key })
      const s = await onX(c.there)
      await c.fleet.heartbeat('x', true)
      await c.coordinator.machineGone('x')
      t.same(c.taken, [], 'not taken here')
      t.same([...await c.there.holds([s.id])], [s.id], 'x still holds it')
      t.match(await c.there.get(s.id), { status: 'active' }, key === null ? 'without a seal key' : key === KEY ? 'with the seal key' : 'with a seal key that does not open it')
    }
  })

  t.test('this machine\'s previous life without SESSION_SEAL_KEY: its sessions fail, saying why, and free their slots', async (t) => {
    const fleet = await make()
    const before = record({ status: 'active' })
    await fleet.on('me').insert(before, CAPS)
    const c = await setup({ fleet, fresh: true, key: null })
    t.equal(await c.here.liveCount(), 1)
    await c.coordinator.machineGone('me')
    t.match(await c.here.get(before.id), { status: 'failed', statusReason: /its machine me restarted; without SESSION_SEAL_KEY no machine can log it back in/ })
    t.equal(await c.here.liveCount(), 0, 'it no longer counts against MAX_SESSIONS')
  })

  t.test('credentials that do not open here: not claimed; passed on, or failed saying why', async (t) => {
    const c = await setup({ machines: [{ id: 'y', sessions: 0, maxSessions: 5, closing: false, at: 0 }] })
    const s = await onX(c.there, randomBytes(32).toString('base64'))
    await c.coordinator.machineGone('x')
    t.same(c.taken, [], 'not taken here')
    t.same(c.offers, [`${s.id}→y`], 'offered to the machine with room')
    t.match(await c.here.get(s.id), { status: 'failed', statusReason: /no machine of the fleet could take it over/ }, 'nobody took it: failed, saying why')
    t.match(c.failed, [{ id: s.id, status: 'failed', reason: /no machine of the fleet could take it over/, webhookUrl: null }], 'told once (to the operator\'s webhook: its own is sealed with a key this machine lacks)')
    t.equal(c.failed.length, 1)
  })

  t.test('a failure this machine writes is told once, with the session\'s webhook when its credentials open here; one it could not write, never', async (t) => {
    const c = await setup()
    const starting = await onX(c.there, KEY, { status: 'starting' })
    await c.coordinator.machineGone('x')
    t.match(await c.here.get(starting.id), { status: 'failed', statusReason: /machine x stopped.*while it was logging in/ })
    t.same(c.failed.map((f) => [f.id, f.status, f.webhookUrl]), [[starting.id, 'failed', HOOK]], 'told once, to its own webhook too')
    await c.coordinator.machineGone('x')
    t.equal(c.failed.length, 1, 'dealt with again: nothing more (it is over)')

    // Two machines deal with the same lapsed machine at once (the sweep's claim lets one; the
    // registry's write lets one too): both decide, and both write only once both have decided.
    const fleet = await make()
    const both = await onX(fleet.on('x'), randomBytes(32).toString('base64'))
    let arrived = 0
    let open = (): void => {}
    const gate = new Promise<void>((resolve) => { open = resolve })
    const told: string[] = []
    const racer = (id: string) => {
      const r = fleet.on(id)
      return createCoordinator({
        me: id,
        maxSessions: 10,
        registry: { ...r, finishOn: async (s, m, lapsed) => { if (++arrived === 2) open(); await gate; return await r.finishOn(s, m, lapsed) } },
        heartbeat: { machines: async () => [], acting: () => true },
        handover: { offer: async () => false },
        sessions: { takeOver: () => {}, release: async () => true, running: () => [], ids: () => [], keepAgain: async () => 0 },
        sealer: null,
        closing: () => false,
        log: quiet,
        onDecided: (s) => { told.push(`${id}: ${s.id}`) }
      })
    }
    await Promise.all([racer('y').machineGone('x'), racer('z').machineGone('x')])
    t.equal(arrived, 2, 'both machines decided to fail it')
    t.match(await fleet.on('x').get(both.id), { status: 'failed' })
    t.equal(told.length, 1, `told once, by the machine whose write went through (${told.join(', ')})`)

    // Its machine is back: nothing written, nothing told.
    const c3 = await setup({ key: null })
    await onX(c3.there)
    await c3.fleet.heartbeat('x', true)
    await c3.coordinator.machineGone('x')
    t.same(c3.failed, [])
  })

  t.test('offers: only from the machine running the session, or for one closing or gone; declined when the credentials do not open', async (t) => {
    const alive = { id: 'x', sessions: 1, maxSessions: 5, closing: false, at: 0 }
    t.ok(await (await setup({ machines: [alive] })).coordinator.acceptOffer('s', 'x', 'x'), 'from its machine')
    t.notOk(await (await setup({ machines: [alive] })).coordinator.acceptOffer('s', 'x', 'z'), 'a third machine offering a live machine\'s session: refused')
    t.ok(await (await setup({ machines: [{ ...alive, closing: true }] })).coordinator.acceptOffer('s', 'x', 'z'), 'its machine is closing')
    t.ok(await (await setup({ machines: [] })).coordinator.acceptOffer('s', 'x', 'z'), 'its machine is gone')

    const c = await setup()
    const s = await onX(c.there, randomBytes(32).toString('base64'))
    t.notOk(await c.coordinator.claimOffered(s.id, 'x'), 'another key\'s seal: declined')
    t.same([...await c.here.machinesOf([s.id])], [[s.id, 'x']], 'still on x')
    const ok = await onX(c.there)
    t.ok(await c.coordinator.claimOffered(ok.id, 'x'), 'its own key: claimed')
  })

  t.test('back after a fence: sessions another machine took are dropped here, never re-registered; refused writes drop at once', async (t) => {
    const c = await setup()
    const mine = record({ status: 'active' })
    const kept = record({ status: 'active', username: 'Other' })
    await c.here.insert(mine, CAPS)
    await c.here.insert(kept, CAPS)
    await c.coordinator.machineGone('nobody') // nothing to do
    // x takes one of them while this machine was cut off.
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
    t.same(await c.here.liveOn('me'), [kept.id])
    c2.refused(kept.id, 'update')
    t.same(released, [mine.id, kept.id], 'a refused write drops the session')
  })

  t.test('end-session of a session whose machine is gone: ended here and told once, with its own webhook; refused while that machine is back', async (t) => {
    const c = await setup()
    const s = await onX(c.there)
    t.ok(await c.coordinator.endGone(s.id, 'x', 'ended by the client (its machine x had stopped)'))
    t.match(await c.here.get(s.id), { status: 'ended', statusReason: 'ended by the client (its machine x had stopped)' })
    t.same(c.failed.map((f) => [f.id, f.status, f.webhookUrl]), [[s.id, 'ended', HOOK]], 'session.ended told once, to its own webhook too')
    t.notOk(await c.coordinator.endGone(s.id, 'x', 'again'), 'over is over: nothing written')
    t.equal(c.failed.length, 1, 'and nothing told again')

    const back = await setup()
    const alive = await onX(back.there)
    await back.fleet.heartbeat('x', true)
    t.notOk(await back.coordinator.endGone(alive.id, 'x', 'ended by the client'), 'its machine is back: the write is refused (the client retries, and the request goes there)')
    t.match(await back.here.get(alive.id), { status: 'active' })
    t.same(back.failed, [], 'nothing told')
  })
}

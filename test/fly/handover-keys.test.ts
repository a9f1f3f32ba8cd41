// A machine whose keys do not open a session's sealed credentials declines
// the offer instead of failing the session: the real handover path
// (lib/fleet/handover.ts over Redis pub/sub, signed messages, the
// coordinator's handOverAll/claimOffered/adoptOffered, the Redis registry's
// claim) between three machines in this process, with this machine's
// sessions as recording stubs. Mid-rotation: the session was sealed under the
// old key; every machine signs with the new one; machine d has dropped the
// old key (and has the most room, so it is offered the session first),
// machine t keeps it.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { createCoordinator, type CoordinatedSessions } from '../../lib/fleet/coordinator.ts'
import { createHandover, type Handover } from '../../lib/fleet/handover.ts'
import { channel } from '../../lib/fleet/keys.ts'
import { messageKeys } from '../../lib/fleet/messages.ts'
import { createRedisRegistry } from '../../lib/fleet/registry.ts'
import { createSealer, sealCredentials } from '../../lib/fleet/seal.ts'
import type { MachineState } from '../../lib/fleet/machines.ts'
import { isFinal, startOptions, type Session } from '../../lib/session/types.ts'
import { record } from '../lib/registry-contract.ts'
import { eventually } from '../e2e/fixtures.ts'
import { startRedis } from './redis.ts'

const redis = await startRedis(t)
const b64 = (): string => randomBytes(32).toString('base64')
const OLD = b64()
const NEW = b64()
const PREFIX = 'hk:'

interface Machine {
  id: string
  handover: Handover
  taken: Array<{ id: string, reason: string, password: string }>
  released: string[]
  warnings: string[]
  running: Session[]
  coordinator: ReturnType<typeof createCoordinator>
}

const subs: Redis[] = []
t.teardown(() => { for (const s of subs) s.disconnect() })

async function machine (id: string, keyring: string, machines: MachineState[]): Promise<Machine> {
  const registry = createRedisRegistry({ redis: redis.client, instanceId: id, retainEndedMs: 60_000, prefix: PREFIX })
  const sealer = createSealer(keyring)
  const m: Machine = { id, taken: [], released: [], warnings: [], running: [], handover: null as unknown as Handover, coordinator: null as unknown as Machine['coordinator'] }
  const log = { info: () => {}, debug: () => {}, error: () => {}, warn: (_o: object, msg?: string) => { m.warnings.push(msg ?? '') } }
  const sessions: CoordinatedSessions = {
    takeOver: (s, c, reason) => { m.taken.push({ id: s.id, reason, password: c.secrets.password }); m.running.push(s) },
    release: async (sid) => { m.released.push(sid); m.running = m.running.filter((s) => s.id !== sid); return true },
    running: () => m.running,
    ids: () => m.running.map((s) => s.id),
    keepAgain: async () => 0
  }
  const sub = redis.client.duplicate()
  sub.on('error', () => {})
  subs.push(sub)
  m.handover = createHandover({
    redis: redis.client,
    sub,
    instanceId: id,
    log,
    keys: messageKeys(sealer.keys()),
    acceptOffer: async (sid, owner, from) => await m.coordinator.acceptOffer(sid, owner, from),
    claim: async (sid, owner, reason) => await m.coordinator.claimOffered(sid, owner, reason),
    adopt: async (sid, owner, reason) => { await m.coordinator.adoptOffered(sid, owner, reason) }
  })
  m.coordinator = createCoordinator({
    me: id,
    maxSessions: 10,
    registry,
    heartbeat: { machines: async () => machines.filter((x) => x.id !== id), acting: () => true },
    handover: m.handover,
    sessions,
    sealer,
    closing: () => false,
    log
  })
  await m.handover.listen()
  t.teardown(async () => { await m.handover.close() })
  return m
}

t.test('offered a session its keys do not open, a machine declines at once; the next one takes it; it never fails', async (t) => {
  const state = (id: string, maxSessions: number): MachineState => ({ id, sessions: 0, maxSessions, closing: false, at: Date.now() })
  const fleet = [state('d', 20), state('t', 5)]
  const g = await machine('g', `new:${NEW},old:${OLD}`, fleet)
  const d = await machine('d', `new:${NEW}`, fleet)
  const tk = await machine('t', `new:${NEW},old:${OLD}`, fleet)

  // The session runs on g, its credentials sealed (before the rotation) with the old key.
  const giver = createRedisRegistry({ redis: redis.client, instanceId: 'g', retainEndedMs: 60_000, prefix: PREFIX })
  const s = record({ status: 'active', clientId: 'foundry-hk' })
  await giver.insert(s, { maxSessions: 10, maxPerOwner: 10 })
  const options = startOptions({ foundryUrl: s.foundryUrl, username: s.username }, {})
  const password = `pw-${randomBytes(8).toString('hex')}`
  await giver.putSealed(s.id, sealCredentials(createSealer(`old:${OLD}`), s.id, { options, secrets: { password } }, s.ownerId))
  t.ok(await giver.sealed(s.id), 'sealed under the old key')
  g.running.push(s)

  // What goes over g's channel (the answers to its offers), and the record's statuses meanwhile.
  const listener = redis.client.duplicate()
  listener.on('error', () => {})
  subs.push(listener)
  const answers: Array<{ t: string, from: string }> = []
  listener.on('message', (_c: string, text: string) => { const m = JSON.parse(text) as { t: string, from: string }; answers.push({ t: m.t, from: m.from }) })
  await listener.subscribe(channel('g'))
  const statuses = new Set<string>()
  const watch = setInterval(() => { void giver.get(s.id).then((r) => { if (r !== undefined) statuses.add(r.status) }, () => {}) }, 10)
  t.teardown(() => { clearInterval(watch) })

  t.equal(await g.coordinator.handOverAll(), 0, 'no session left behind')
  t.ok(await eventually(() => tk.taken.length === 1, 10_000), 'machine t logs it in')
  clearInterval(watch)
  t.same(answers.map((a) => `${a.from}: ${a.t}`), ['d: declined', 't: claimed'], 'd answered at once, declining; then t claimed it')
  t.ok(d.warnings.some((w) => /sealed credentials do not open here/.test(w)), 'd says why')
  t.same(d.taken, [], 'd took nothing')
  t.same(tk.taken.map((x) => [x.id, x.password]), [[s.id, password]], 't opened the credentials sealed under the old key')
  t.match(tk.taken[0]!.reason, /handed over by machine g \(shutting down\) to machine t/)
  t.same(g.released, [s.id], 'g closed its page')
  t.same([...await giver.machinesOf([s.id])], [[s.id, 't']], 'the registry says t runs it')
  const now = await giver.get(s.id)
  t.notOk(now === undefined || isFinal(now.status), `not failed: ${now?.status ?? 'gone'}`)
  t.notOk([...statuses].some((x) => x === 'failed' || x === 'ended'), `never failed nor ended on the way: ${[...statuses].join(', ')}`)
})

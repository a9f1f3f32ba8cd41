// Machines that are slow or cut off but alive, on three machines behind the
// fly-replay stand-in and a real Redis: one machine cut off from Redis (a TCP
// gate that holds bytes both ways for 2× the lease, then lets them through),
// then one machine's Node process stopped (SIGSTOP) for 2× the lease and
// continued — each while its Chromium runs on. Sampled every 200 ms, Foundry
// never sees two live logins of the Gamemaster and the relay never refuses
// the module's id (4004); the session ends active on exactly one machine
// with the same sessionId and clientId; the cut machine answers within
// seconds (503 or served). Then garbage on every fleet channel moves nothing
// and takes no machine down, and end-session leaves no page anywhere.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { GM, eventually } from '../e2e/fixtures.ts'
import { messageKeys, signMessage } from '../../lib/fleet/messages.ts'
import { startFleet, watchTwice, type Fleet } from './fleet.ts'
import { startGate } from './gate.ts'
import type { MachineProc } from './machines.ts'

const SEAL_KEY = randomBytes(32).toString('base64')
const HEARTBEAT_MS = 1000
const LEASE_MS = 3 * HEARTBEAT_MS

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

interface Health { status: string, sessions: { starting: number, active: number, reconnecting: number } }
async function health (m: MachineProc, timeoutMs = 10_000): Promise<{ code: number, body: Health }> {
  const res = await fetch(`${m.url}/health`, { signal: AbortSignal.timeout(timeoutMs) })
  return { code: res.status, body: await res.json() as Health }
}
/** Sessions with a page on the machine (starting, active or reconnecting). */
const pages = (h: Health): number => h.sessions.starting + h.sessions.active + h.sessions.reconnecting

t.test('a machine cut off or stalled never runs a session twice', async (t) => {
  const env = { SESSION_SEAL_KEY: SEAL_KEY, FLEET_HEARTBEAT_MS: String(HEARTBEAT_MS), FLEET_REDIS_TIMEOUT_MS: '500', RELOGIN_BASE_MS: '200' }
  const f: Fleet = await startFleet(t, env, ['m1', 'm2'])
  f.secrets.push(SEAL_KEY)
  const gate = await startGate(f.redis.port, t)
  const m3 = await f.add('m3', { REDIS_URL: gate.url })
  const twice = watchTwice(f)
  t.teardown(twice.stop)

  const started = await f.start({ hsAt: m3.url, startAt: m3.url })
  t.equal(started.status, 200, JSON.stringify(started.body))
  const sessionId = started.body.sessionId as string
  const clientId = started.body.clientId as string
  t.equal((await f.find(f.proxy.url, sessionId))?.instanceId, 'm3', 'it runs on m3, behind the gate')

  /** Exactly one machine runs the session, active, with the same ids; no other machine has a page. */
  async function settledOnOne (): Promise<MachineProc | null> {
    const hs = await Promise.all(f.machines.filter((m) => m.child.exitCode === null).map(async (m) => ({ m, h: (await health(m)).body })))
    const withPage = hs.filter((x) => pages(x.h) > 0)
    if (withPage.length !== 1 || withPage[0]!.h.sessions.active !== 1) return null
    const s = await f.find(withPage[0]!.m.url, sessionId)
    return s?.status === 'active' && s.instanceId === withPage[0]!.m.id && s.clientId === clientId && f.standin.liveLogins(GM.id) === 1 ? withPage[0]!.m : null
  }

  t.test('m3 cut off from Redis for 2× the lease', async (t) => {
    gate.hold()
    const cutAt = Date.now()
    // Requests to the cut machine answer within seconds, all along.
    const answers: Array<{ code: number, ms: number }> = []
    let unhealthy = false
    while (Date.now() - cutAt < 2 * LEASE_MS) {
      const at = Date.now()
      const res = await fetch(`${m3.url}/session`, { headers: { 'x-api-key': f.apiKey }, signal: AbortSignal.timeout(10_000) }).catch(() => null)
      answers.push({ code: res?.status ?? 0, ms: Date.now() - at })
      if ((await health(m3)).code === 503) unhealthy = true
      await sleep(300)
    }
    gate.release()
    t.ok(answers.every((a) => (a.code === 200 || a.code === 503) && a.ms < 3000), `every request answered, 503 or served, within 3 s: ${JSON.stringify(answers)}`)
    t.ok(answers.some((a) => a.code === 503), 'once cut off, it says the fleet is unavailable')
    t.ok(unhealthy, '/health on the cut machine reported it unhealthy')
    t.match(m3.out(), /cut off from the fleet/, 'it said it was cut off')
    const where: { on: MachineProc | null } = { on: null }
    t.ok(await eventually(async () => (where.on = await settledOnOne()) !== null, 40_000), 'active on exactly one machine, same sessionId and clientId, one Foundry login')
    t.not(where.on?.id, 'm3', 'taken over by a machine that can reach Redis (its lease ran out long before the cut healed)')
    t.match(await f.find(f.proxy.url, sessionId), { relogins: 1 }, 'logged in once more, on its new machine')
    t.ok(await eventually(async () => (await health(m3)).code === 200, 15_000), 'm3 healthy again once Redis answers')
    // Its held writes arrive with a stale fencing token (refused: dropped at once), or its return finds the session elsewhere.
    t.match(m3.out(), /refused a write of this machine \(another machine runs the session now\): dropping it here|back in the fleet: this session runs on another machine now/, 'm3 dropped it on its return')
  })

  t.test('the machine running it stopped (SIGSTOP) for 2× the lease, then continued', async (t) => {
    const owner = f.byId((await f.find(f.proxy.url, sessionId))!.instanceId)
    owner.child.kill('SIGSTOP')
    await sleep(2 * LEASE_MS)
    owner.child.kill('SIGCONT')
    const where: { on: MachineProc | null } = { on: null }
    t.ok(await eventually(async () => (where.on = await settledOnOne()) !== null, 40_000), 'active on exactly one machine, same sessionId and clientId, one Foundry login')
    // Which one depends on timing: taken over while the stalled machine's lease was gone, or kept if it came back first.
    t.comment(`stalled ${owner.id}; the session now runs on ${where.on?.id ?? '?'}`)
    t.equal(owner.child.exitCode, null, 'the stalled machine runs on')
    t.ok(await eventually(async () => (await health(owner)).code === 200, 15_000), 'and is healthy again')
  })

  t.test('garbage on every fleet channel: nothing moves, no machine falls over', async (t) => {
    const where = (await f.find(f.proxy.url, sessionId))!
    const [key] = messageKeys([Buffer.from(SEAL_KEY, 'base64')])
    const now = Date.now()
    for (const m of f.machines) {
      const others = f.machines.filter((x) => x !== m && x.id !== where.instanceId)
      const junk = ['null', '', '42', '[]', '{}', '"offer"', '{"t":"offer"}', 'not json {',
        JSON.stringify({ t: 'offer', id: sessionId, owner: where.instanceId, from: others[0]?.id ?? 'x' }),
        JSON.stringify({ t: 'released', id: sessionId }),
        JSON.stringify({ v: 1, t: 'offer', id: sessionId, owner: where.instanceId, from: where.instanceId, to: m.id, at: now, mac: 'A'.repeat(43) }),
        // Signed with a key of the fleet, but the sender does not run the session and its machine is alive.
        ...others.map((o) => signMessage(key!, { t: 'offer', id: sessionId, owner: where.instanceId }, o.id, m.id, now)),
        // Another machine's message, replayed to this one.
        signMessage(key!, { t: 'claimed', id: sessionId }, where.instanceId, 'm-other', now)]
      for (const j of junk) await f.redis.client.publish(`fs:fleet:${m.id}`, j)
    }
    await sleep(3 * HEARTBEAT_MS)
    for (const m of f.machines) {
      t.equal(m.child.exitCode, null, `${m.id} still runs`)
      t.equal((await health(m)).code, 200, `${m.id} healthy`)
      t.match(m.out(), /dropped a fleet message/, `${m.id} warned about what it dropped`)
      t.notMatch(m.err() + m.out(), /TypeError|uncaught/i, `${m.id}: no error thrown`)
    }
    t.match(await f.find(f.proxy.url, sessionId), { instanceId: where.instanceId, status: 'active', clientId }, 'the session did not move')
  })

  t.test('end-session leaves no page anywhere', async (t) => {
    const res = await fetch(`${f.proxy.url}/end-session?sessionId=${sessionId}`, { method: 'DELETE', headers: { 'x-api-key': f.apiKey } })
    t.equal(res.status, 200)
    t.ok(await eventually(async () => {
      const hs = await Promise.all(f.machines.map(async (m) => (await health(m)).body))
      return hs.every((h) => pages(h) === 0) && f.standin.liveLogins(GM.id) === 0 && !f.relay.open().some((c) => c.id === clientId)
    }, 10_000), 'no session on any machine, no Foundry login, no module connection')
    t.match(await f.find(f.proxy.url, sessionId), { status: 'ended' })
    twice.stop()
    t.same(twice.seen, [], `never twice (${twice.samples()} samples): no two Foundry logins, no two module connections, no 4004`)
    for (const m of f.machines) t.notOk(m.out().includes(GM.password) || m.err().includes(GM.password), `no password in ${m.id}'s logs`)
  })

  /**
   * A start on machine `m` while Foundry's sockets are held back (its login waits at /join), `fault`
   * done to `m` once the login reached Foundry: the start must answer 503 FLEET_UNAVAILABLE with
   * Retry-After (not FOUNDRY_LOGIN_LOST, not SESSION_CANCELLED), and leave no page anywhere.
   */
  async function startCutShort (t: Test, m: MachineProc, fault: () => Promise<void>): Promise<void> {
    const seen = f.standin.requests.length
    const blocked = f.standin.blockSockets(4 * LEASE_MS)
    const starting = f.start({ hsAt: m.url, startAt: m.url })
    t.ok(await eventually(async () => f.standin.requests.slice(seen).some((r) => r.method === 'GET' && r.path.endsWith('/join')), 20_000), 'the login reached Foundry\'s /join (its form waits for the socket)')
    await fault()
    const started = await starting
    t.equal(started.status, 503, JSON.stringify(started.body))
    // Fenced by the watchdog, or the page left by itself at the lease's end (./page/game.js lease).
    t.match(started.body, { code: 'FLEET_UNAVAILABLE', error: /cut off from the fleet|fleet lease ran out/ }, 'says the machine lost its lease, not that Foundry lost the login or the client cancelled')
    t.ok(Number(started.retryAfter) > 0, `Retry-After: ${String(started.retryAfter)}`)
    await blocked
    t.ok(await eventually(async () => {
      const hs = await Promise.all(f.machines.map(async (x) => (await health(x)).body))
      return hs.every((h) => pages(h) === 0) && f.standin.liveLogins(GM.id) === 0
    }, 20_000), 'no page on any machine, no Foundry login')
  }

  t.test('cut off while logging in: the start answers 503 FLEET_UNAVAILABLE with Retry-After, and leaves no page', async (t) => {
    await startCutShort(t, m3, async () => {
      gate.hold()
      await sleep(2 * LEASE_MS)
      gate.release()
    })
  })

  t.test('stalled while logging in (SIGSTOP for 2× the lease): the start answers 503 FLEET_UNAVAILABLE once it runs again', async (t) => {
    const m1 = f.byId('m1')
    await startCutShort(t, m1, async () => {
      m1.child.kill('SIGSTOP')
      await sleep(2 * LEASE_MS)
      m1.child.kill('SIGCONT')
    })
  })
})

// Two things only a fleet can get wrong, on three machines and a real Redis:
// the same login started on two machines at the same moment logs in once
// (the start lock), and a session used only through other machines is not
// ended for being idle (their calls reach its machine through Redis).
import t from 'tap'
import { GM, eventually } from '../e2e/fixtures.ts'
import { neverTwice, startFleet } from './fleet.ts'

const IDLE_MS = 5000

t.test('start lock and idle timeout across machines', async (t) => {
  const f = await startFleet(t, { SESSION_IDLE_TIMEOUT_MS: String(IDLE_MS), FLEET_HEARTBEAT_MS: '1000' })
  const [m1, m2, m3] = f.machines as [typeof f.machines[0], typeof f.machines[0], typeof f.machines[0]]

  t.test('two start-sessions of the same key, Foundry, world and user on two machines at once: one login', async (t) => {
    const joinsBefore = f.standin.joins.filter((j) => j.ok).length
    // The client lists its sessions while it waits (a login on a loaded host can take longer than the idle timeout).
    const lister = setInterval(() => { void f.list(m3.url).catch(() => {}) }, 1000)
    t.teardown(() => { clearInterval(lister) })
    const [a, b] = await Promise.all([
      f.start({ hsAt: m1.url, startAt: m1.url }),
      f.start({ hsAt: m2.url, startAt: m2.url })
    ])
    t.equal(a.status, 200, JSON.stringify(a.body))
    t.equal(b.status, 200, JSON.stringify(b.body))
    t.equal(a.body.sessionId, b.body.sessionId, 'one session')
    t.equal(a.body.clientId, b.body.clientId)
    t.same([a.body.existingSession, b.body.existingSession].filter((x) => x === true), [true], 'the other start was told it already runs')
    t.equal(f.standin.joins.filter((j) => j.ok).length - joinsBefore, 1, 'Foundry saw one login')
    const listed = await f.list(m3.url)
    clearInterval(lister)
    t.equal(listed.activeSessions.length + listed.pendingSessions.length, 1, `one session in the fleet: ${JSON.stringify(listed)}`)
    t.ok(neverTwice(f.relay), 'one module connection')
  })

  t.test('a session listed only through other machines stays; left alone, it ends idle', async (t) => {
    const listed = (await f.list(m3.url)).activeSessions[0]!
    const owner = f.byId(listed.instanceId)
    const others = f.machines.filter((m) => m !== owner)
    const since = listed.lastActivity
    // Twice the idle timeout, listing every second through the other two machines only.
    const until = Date.now() + 2 * IDLE_MS
    for (let i = 0; Date.now() < until; i++) {
      const s = await f.find(others[i % 2]!.url, listed.sessionId)
      t.equal(s?.status, 'active', `still active after ${Math.round((Date.now() - since) / 1000)} s`)
      if (s?.status !== 'active') break
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    t.ok(await eventually(async () => ((await f.find(owner.url, listed.sessionId))?.lastActivity ?? 0) > since + IDLE_MS), 'its machine took the later calls as activity')
    // Now nobody calls: its machine ends it for being idle.
    const ended = await eventually(async () => {
      const r = await f.redis.client.get(`fs:s:${listed.sessionId}`)
      return r !== null && (JSON.parse(r) as { status: string }).status === 'ended'
    }, 4 * IDLE_MS)
    t.ok(ended, 'ended once idle')
    t.match((await f.find(others[0]!.url, listed.sessionId))?.statusReason, /idle/)
    t.notOk(owner.out().includes(GM.password), 'no password in the logs')
  })
})

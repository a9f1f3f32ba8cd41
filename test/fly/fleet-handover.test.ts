// Sessions that outlive their machine (SESSION_SEAL_KEY), on three machines
// and a real Redis: SIGTERM of the owner hands the session to another
// machine (same sessionId and clientId, the module reconnected at the
// relay); SIGKILL of the next owner, and a survivor logs it back in within
// the heartbeat TTL. The credentials sit in Redis only sealed; no session
// ever runs twice (Foundry never sees two live logins of the Gamemaster, the
// relay never refuses the module's id). Redis lost and back empty on the way
// changes none of it. Redis MONITOR over the whole handover shows no secret,
// the REST API module 3.x's connection token included (the stand-in runs
// module 3.x, whose relay takes the token in the module's first message).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { monitorRedis } from './redis.ts'
import { GM, eventually } from '../e2e/fixtures.ts'
import { createClient, type SessionEvent } from '../../public/client.ts'
import { startFleet, watchTwice, type Fleet } from './fleet.ts'

const SEAL_KEY = randomBytes(32).toString('base64')
/** The module's v3 connection token (its relay's pairing): a secret like the password. */
const CONNECTION_TOKEN = `v3-token-${randomBytes(16).toString('hex')}`

t.test('handover on SIGTERM, recovery after SIGKILL', async (t) => {
  const f: Fleet = await startFleet(t, { SESSION_SEAL_KEY: SEAL_KEY, FLEET_HEARTBEAT_MS: '1000', RELOGIN_BASE_MS: '200' }, undefined, {
    standin: { moduleVersion: 3 },
    relay: { validTokens: [CONNECTION_TOKEN] }
  })
  f.secrets.push(SEAL_KEY)
  // Sampled all along: Foundry logins, open module connections and refusals.
  const twice = watchTwice(f)
  t.teardown(twice.stop)
  // Every command any machine sends Redis over the whole handover and recovery (from the SIGTERM on:
  // a MONITOR connection does not outlive the Redis restart below).
  const commands: string[] = []
  let monitor: { close: () => void } | null = null
  t.teardown(() => { monitor?.close() })

  const started = await f.start({ connectionToken: CONNECTION_TOKEN })
  t.equal(started.status, 200, JSON.stringify(started.body))
  t.ok(f.secrets.includes(CONNECTION_TOKEN), 'the connection token is among the secrets scanned for')
  const sessionId = started.body.sessionId as string
  const clientId = started.body.clientId as string
  const owner = f.byId((await f.find(f.proxy.url, sessionId))!.instanceId)
  t.ok(await f.redis.client.exists(`fs:seal:${sessionId}`), 'its credentials are kept, sealed')

  t.test('Redis lost and back empty: the owner writes the record, its start lock and the sealed credentials again', async (t) => {
    await f.redis.restart()
    t.ok(await eventually(async () => await f.redis.client.exists(`fs:s:${sessionId}`, `fs:seal:${sessionId}`).catch(() => 0) === 2, 20_000), 'record and sealed credentials back')
    t.equal((await f.redis.client.keys('fs:same:*').catch(() => [])).length, 1, 'the start lock back')
    // The handover below opens what was sealed again.
  })

  t.test('SIGTERM of the owner: the same session active on another machine, the module reconnected', async (t) => {
    monitor = await monitorRedis(f.redis.port, (args) => { commands.push(args.join(' ')) })
    const at = Date.now()
    // What the fleet says about the session while it moves.
    const seen: string[] = []
    const watch = setInterval(() => {
      void f.redis.client.get(`fs:s:${sessionId}`).then((r) => {
        const s = JSON.parse(r ?? '{}') as { status?: string, statusReason?: string }
        const line = `${s.status ?? '?'}: ${s.statusReason ?? ''}`
        if (seen.at(-1) !== line) seen.push(line)
      }, () => {})
    }, 25)
    t.teardown(() => { clearInterval(watch) })
    // A stream of the session's events on its machine: it ends when the session leaves.
    const stream = createClient({ server: owner.url, apiKey: f.apiKey }).events(sessionId)
    t.match((await stream.next()).value, { type: 'status', status: 'active' }, 'a stream on the owner opens')
    const streamed = (async () => { const rest: SessionEvent[] = []; for await (const e of stream) rest.push(e); return rest })()
    owner.kill('SIGTERM')
    f.drop(owner)
    const other = f.machines.find((m) => m !== owner)!
    t.ok(await eventually(async () => {
      const s = await f.find(other.url, sessionId)
      return s?.status === 'active' && s.instanceId !== owner.id && s.relogins === 1
    }, 30_000), 'active again (logged in once more), on another machine')
    clearInterval(watch)
    t.ok(seen.some((l) => new RegExp(`^reconnecting: handed over by machine ${owner.id} \\(shutting down\\)`).test(l)), `reconnecting, saying why, while it moved: ${JSON.stringify(seen)}`)
    const s = (await f.find(other.url, sessionId))!
    t.match(s, { sessionId, clientId, statusReason: new RegExp(`handed over by machine ${owner.id}`) }, JSON.stringify(s))
    t.ok(await eventually(() => f.relay.open().some((c) => c.id === clientId && c.openedAt >= at), 10_000), 'the relay sees the module connect again')
    const rest = await streamed
    t.match(rest.at(-1), { type: 'status', status: 'reconnecting', reason: new RegExp(`left machine ${owner.id} for another machine`) }, `the stream ended with a last event saying the session moved: ${JSON.stringify(rest.map((e) => e.type === 'status' ? e.reason : e.type))}`)
    t.equal(await owner.exited, 0, 'the old owner exited cleanly')
    const receiver = f.byId(s.instanceId)
    t.notMatch(receiver.out(), /did not say its page closed in time/, 'the old owner said its page closed (no waiting it out)')
    t.match(await f.metrics(receiver), /^foundry_handovers_total\{direction="in",result="ok",machine="[^"]+"\} 1$/m, 'counted by the receiver')
    t.notOk(owner.out().includes(GM.password) || receiver.out().includes(GM.password), 'no password in the logs')
  })

  t.test('SIGKILL of the new owner: a survivor logs it back in', async (t) => {
    const victim = f.byId((await f.find(f.proxy.url, sessionId))!.instanceId)
    const joins = f.standin.joins.filter((j) => j.ok).length
    const at = Date.now()
    await f.kill(victim)
    const survivor = f.machines.find((m) => m !== victim && m !== owner)!
    t.ok(await eventually(async () => {
      const s = await f.find(survivor.url, sessionId)
      return s?.status === 'active' && s.instanceId === survivor.id && s.relogins === 2
    }, 30_000), 'active again (logged in once more) on the survivor')
    t.match(await f.find(survivor.url, sessionId), { clientId, statusReason: new RegExp(`machine ${victim.id} stopped.*taken over by machine ${survivor.id}`) })
    t.ok(f.standin.joins.filter((j) => j.ok).length > joins, 'with a login')
    t.ok(await eventually(() => f.relay.open().some((c) => c.id === clientId && c.openedAt >= at), 10_000), 'the module connected again')
    t.match(await f.metrics(survivor), /^foundry_recoveries_total\{result="ok",machine="[^"]+"\} 1$/m, 'counted as a recovery')
  })

  t.test('Redis holds nothing secret in plaintext; ending the session deletes its sealed credentials', async (t) => {
    const dump = await f.redis.dump()
    const all = [...dump].map(([k, v]) => `${k}\n${v}`).join('\n')
    t.ok(dump.has(`fs:seal:${sessionId}`))
    for (const s of f.secrets) t.notOk(all.includes(s), 'no password, API key, seal key, handshake token or nonce in any Redis key or value')
    const res = await fetch(`${f.proxy.url}/end-session?sessionId=${sessionId}`, { method: 'DELETE', headers: { 'x-api-key': f.apiKey } })
    t.equal(res.status, 200)
    t.equal(await f.redis.client.exists(`fs:seal:${sessionId}`), 0, 'gone with the session')
    twice.stop()
    t.same(twice.seen, [], `no session ever ran twice (${twice.samples()} samples)`)
    monitor?.close()
    const cookies = f.standin.joins.map((j) => j.sessionCookie)
    t.ok(commands.length > 100 && commands.some((c) => c.includes('fs:seal:')), `MONITOR saw the whole run (${commands.length} commands)`)
    const traffic = commands.join('\n')
    // The scan can fail: the records' values are in what was scanned (not only key names), and the
    // token was really used: every login of the run (first, handed over, recovered) sent it to the relay.
    t.ok(traffic.includes(`"clientId":"${clientId}"`), 'the records written to Redis, values included, are in the scanned commands')
    const authed = f.relay.connections.filter((c) => c.id === clientId && c.authed)
    t.ok(authed.length >= 3 && authed.every((c) => c.protocol === 'v3' && c.messages.some((m) => (m as { token?: unknown } | null)?.token === CONNECTION_TOKEN)),
      `each module connection of the session authenticated at the relay with the connection token (${authed.length})`)
    for (const secret of [...f.secrets, ...cookies]) t.notOk(traffic.includes(secret), 'no password, API key, seal key, handshake token, nonce, v3 connection token or Foundry session cookie in any command sent to Redis')
    t.notOk(traffic.includes(CONNECTION_TOKEN), 'the v3 connection token is nowhere in it')
  })
})

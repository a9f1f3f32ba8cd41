// Three machines (node dist/server.js) on one real Redis behind the
// fly-replay proxy stand-in: sessions listed and ended from every machine,
// existingSession and the per-key cap across machines, and a machine killed
// with SIGKILL (no seal key: its session fails, with the reason, listed
// fleet-wide). No session ever runs twice; nothing secret reaches Redis.
import t from 'tap'
import { GM, PLAYER, eventually, foundry } from '../e2e/fixtures.ts'
import { encryptNode } from '../helper.ts'
import { processTree } from '../../support/proc.ts'
import { startRedis } from './redis.ts'
import { startFlyProxy } from './proxy.ts'
import { startMachine, type MachineProc } from './machines.ts'

const KEY = 'fleet-sessions-key-0123456789'
const headers = { 'x-api-key': KEY }
const json = { ...headers, 'content-type': 'application/json' }

interface Listed { sessionId: string, instanceId: string, status: string, statusReason: string, clientId: string }
interface List { activeSessions: Listed[], endedSessions: Listed[], pendingSessions: Listed[] }

t.test('a fleet of three: list, end, existingSession and caps from any machine; a SIGKILLed machine\'s session fails with the reason', async (t) => {
  const redis = await startRedis(t)
  const { standin, relay } = await foundry(t)
  const env = { API_KEYS: KEY, REDIS_URL: redis.url, MAX_SESSIONS_PER_KEY: '1', FLEET_HEARTBEAT_MS: '1000' }
  // One after the other: three cold starts at once (RSA keys, Chromium) on a busy 2-core box can pass Fastify's plugin timeout.
  const machines: MachineProc[] = []
  for (const id of ['m1', 'm2', 'm3']) machines.push(await startMachine(id, env, t))
  const byId = (id: string): MachineProc => machines.find((m) => m.id === id)!
  const proxy = await startFlyProxy(machines)
  t.teardown(proxy.close)
  const secrets: string[] = [GM.password, PLAYER.password, KEY]
  const neverTwice = (): boolean => {
    const open = relay.open().map((c) => c.id)
    return new Set(open).size === open.length
  }

  const start = async (user: { name: string, password: string }, body: Record<string, unknown> = {}): Promise<{ status: number, body: Record<string, unknown> }> => {
    const hs = await (await fetch(`${proxy.url}/session-handshake`, {
      method: 'POST', headers: { ...headers, 'x-foundry-url': standin.url, 'x-username': user.name }
    })).json() as { token: string, publicKey: string, nonce: string }
    secrets.push(hs.token, hs.nonce)
    const res = await fetch(`${proxy.url}/start-session`, {
      method: 'POST', headers: json, body: JSON.stringify({ handshakeToken: hs.token, encryptedPassword: encryptNode(hs.publicKey, { password: user.password, nonce: hs.nonce }), ...body })
    })
    return { status: res.status, body: await res.json() as Record<string, unknown> }
  }
  const list = async (m: MachineProc): Promise<List> => await (await fetch(`${m.url}/session`, { headers })).json() as List

  const first = await start(GM)
  t.equal(first.status, 200, JSON.stringify(first.body))
  const sessionId = first.body.sessionId as string
  const owner = (await list(machines[0]!)).activeSessions[0]?.instanceId ?? ''
  t.ok(['m1', 'm2', 'm3'].includes(owner), `runs on ${owner}`)
  for (const m of machines) {
    t.match((await list(m)).activeSessions, [{ sessionId, instanceId: owner, status: 'active', clientId: first.body.clientId }], `listed by ${m.id}, naming its machine`)
  }

  // The same key, Foundry and user again, wherever it lands: the running session.
  const again = await start(GM)
  t.equal(again.status, 200)
  t.match(again.body, { sessionId, existingSession: true, clientId: first.body.clientId })
  // The per-key cap counts the session on the other machine.
  const capped = await start(PLAYER, { requireModule: false })
  t.equal(capped.status, 429)
  t.match(capped.body, { code: 'AT_CAPACITY', error: /This API key has its maximum of 1/ })
  t.ok(neverTwice(), 'one module connection per client id')

  // Its live events from a machine that does not run it: replayed to the
  // owner, where they happen (the stream carries the end below).
  const other = machines.find((m) => m.id !== owner)!
  const eventsPath = `/session/${sessionId}/events`
  const directEvents = await fetch(`${other.url}${eventsPath}`, { headers })
  t.equal(directEvents.status, 409)
  t.equal(directEvents.headers.get('fly-replay'), `instance=${owner}`)
  t.match(await directEvents.json(), { code: 'OTHER_MACHINE', error: new RegExp(`runs on machine ${owner}`) })
  const streamed = fetch(`${proxy.url}${eventsPath}`, { headers }).then(async (r) => ({ status: r.status, text: await r.text() }))

  // End from a machine that does not run it: replayed to the owner.
  const direct = await fetch(`${other.url}/end-session?sessionId=${sessionId}`, { method: 'DELETE', headers })
  t.equal(direct.status, 409)
  t.equal(direct.headers.get('fly-replay'), `instance=${owner}`)
  let ended: Response | undefined
  for (let i = 0; i < 3 && ended?.status !== 200; i++) ended = await fetch(`${proxy.url}/end-session?sessionId=${sessionId}`, { method: 'DELETE', headers })
  t.equal(ended?.status, 200)
  t.ok(await eventually(() => relay.open().length === 0), 'the module connection closed')
  const events = await streamed
  t.equal(events.status, 200)
  t.match(events.text, /event: status\ndata: \{[^\n]*"status":"ended"/, 'the stream carried the end')
  t.match(proxy.log.filter((l) => l.path === eventsPath && l.status === 200), [{ machine: owner }], 'served by the owner')
  for (const m of machines) t.match((await list(m)).endedSessions, [{ sessionId, status: 'ended' }], `ended, seen from ${m.id}`)

  // SIGKILL the machine running a session: within the heartbeat TTL another
  // machine claims it; without a seal key it fails, saying why.
  const second = await start(GM)
  t.equal(second.status, 200, JSON.stringify(second.body))
  const killedId = (await list(machines[0]!)).activeSessions[0]!.instanceId
  const victim = byId(killedId)
  const tree = processTree(victim.child.pid!)
  t.teardown(() => { for (const pid of tree) { try { process.kill(pid, 'SIGKILL') } catch {} } })
  victim.kill('SIGKILL')
  await victim.exited
  for (const pid of tree) { try { process.kill(pid, 'SIGKILL') } catch {} } // Chromium cannot outlive a SIGKILLed parent by itself
  proxy.setMachines(machines.filter((m) => m !== victim))
  const survivor = machines.find((m) => m !== victim)!
  t.ok(await eventually(async () => (await list(survivor)).endedSessions.some((s) => s.sessionId === second.body.sessionId && s.status === 'failed'), 30_000), 'failed, listed by the survivors')
  const failed = (await list(survivor)).endedSessions.find((s) => s.sessionId === second.body.sessionId)!
  t.match(failed.statusReason, new RegExp(`machine ${killedId} stopped.*SESSION_SEAL_KEY`), 'with the reason')
  t.notOk(survivor.out().includes(GM.password), 'no password in the logs')

  const dump = await redis.dump()
  const all = [...dump].map(([k, v]) => `${k}\n${v}`).join('\n')
  t.ok(dump.size > 0)
  for (const s of secrets) t.notOk(all.includes(s), 'no password, API key, handshake token or nonce in any Redis key or value')
  t.ok(neverTwice(), 'no session ever ran twice')
})

// Two machines on one real Redis behind the fly-replay proxy stand-in:
// handshakes are found fleet-wide and start-session is replayed to the
// machine that holds the handshake's key. Redis unreachable at start stops a
// machine with the reason. Nothing secret reaches Redis.
import t from 'tap'
import { GM, GM2, PLAYER, WORLD, eventually, foundry } from '../e2e/fixtures.ts'
import { encryptNode } from '../helper.ts'
import { startRedis, freePort } from './redis.ts'
import { startFlyProxy } from './proxy.ts'
import { startMachine } from './machines.ts'

const KEY = 'fleet-routing-key-0123456789'
const headers = { 'x-api-key': KEY }

t.test('REDIS_URL set but unreachable: the machine refuses to start and says why', async (t) => {
  const port = await freePort()
  const m = startMachine('lonely', { API_KEYS: KEY, REDIS_URL: `redis://:hunter2-secret@127.0.0.1:${port}` }, t)
  await t.rejects(m, /exited \(1\) before listening/)
  const err = await m.catch((e: Error) => e.message)
  t.match(err, new RegExp(`Redis at redis://127\\.0\\.0\\.1:${port} cannot be reached`), 'names the address it tried')
  t.notMatch(err, /hunter2-secret/, 'and never the password in REDIS_URL')
})

t.test('handshake on one machine, start-session landing on another: the session runs where the key is', async (t) => {
  const redis = await startRedis(t)
  const { standin, relay } = await foundry(t)
  const env = { API_KEYS: KEY, REDIS_URL: redis.url, LOG_LEVEL: 'debug' }
  const [a, b] = await Promise.all([startMachine('machine-a', env, t), startMachine('machine-b', env, t)])
  const proxy = await startFlyProxy([a, b])
  t.teardown(proxy.close)

  const hsRes = await fetch(`${proxy.url}/session-handshake`, {
    method: 'POST', headers: { ...headers, 'x-foundry-url': standin.url, 'x-username': GM.name, 'x-world-name': WORLD.id }
  })
  t.equal(hsRes.status, 200)
  const hs = await hsRes.json() as { token: string, publicKey: string, nonce: string, instanceId: string }
  const holder = hs.instanceId
  const other = holder === 'machine-a' ? b : a
  t.equal(proxy.log.at(-1)?.machine, holder, 'instanceId names the machine that answered')

  const body = JSON.stringify({ handshakeToken: hs.token, encryptedPassword: encryptNode(hs.publicKey, { password: GM.password, nonce: hs.nonce }) })
  const json = { ...headers, 'content-type': 'application/json' }

  // Straight to the other machine: it says where the handshake is, both to
  // Fly's proxy (fly-replay) and in words.
  const direct = await fetch(`${other.url}/start-session`, { method: 'POST', headers: json, body })
  t.equal(direct.status, 409)
  t.equal(direct.headers.get('fly-replay'), `instance=${holder}`)
  t.match(await direct.json(), { code: 'OTHER_MACHINE', error: new RegExp(holder) })
  // A request already replayed once is never replayed again.
  const looped = await fetch(`${other.url}/start-session`, { method: 'POST', headers: { ...json, 'fly-replay-src': `instance=${holder};region=test;t=1` }, body })
  t.equal(looped.status, 503)
  t.equal(looped.headers.get('fly-replay'), null, 'no second replay')
  t.match(await looped.json(), { code: 'REPLAY_MISSED' })
  t.ok(Number(looped.headers.get('retry-after')) >= 1, 'with Retry-After')

  // Through the proxy: round robin sends it to the other machine first.
  const before = proxy.log.length
  const start = await fetch(`${proxy.url}/start-session`, { method: 'POST', headers: json, body })
  const startBody = await start.json() as { sessionId: string, clientId: string }
  t.equal(start.status, 200, JSON.stringify(startBody))
  const hops = proxy.log.slice(before)
  t.same(hops.map((h) => [h.machine, h.replay]), [[other.id, false], [holder, true]], 'landed on the other machine, replayed to the holder')
  t.ok(relay.open().some((c) => c.id === startBody.clientId), 'the module is connected')
  const onHolder = await (await fetch(`${(holder === 'machine-a' ? a : b).url}/session`, { headers })).json() as { activeSessions: Array<{ sessionId: string, instanceId: string }> }
  t.match(onHolder.activeSessions, [{ sessionId: startBody.sessionId, instanceId: holder }], 'the session runs on the holder')

  // Nothing secret in Redis: password, API key, handshake token, nonce.
  const dump = await redis.dump()
  t.ok(dump.size > 0, 'the fleet wrote to Redis')
  const all = [...dump].map(([k, v]) => `${k}\n${v}`).join('\n')
  for (const secret of [GM.password, KEY, hs.token, hs.nonce]) t.notOk(all.includes(secret), 'no secret in any Redis key or value')
  t.notOk(a.out().includes(GM.password) || b.out().includes(GM.password), 'no password in the logs')
})

t.test('a handshake whose machine stopped: a clear 401 on the others, not a replay to nowhere', async (t) => {
  const redis = await startRedis(t)
  // Neither machine logs in: Chromium waits for a first session (CHROMIUM_LAUNCH).
  const env = { API_KEYS: KEY, REDIS_URL: redis.url, FLEET_HEARTBEAT_MS: '1000', CHROMIUM_LAUNCH: 'first-session' }
  const [a, b] = await Promise.all([startMachine('machine-a', env, t), startMachine('machine-b', env, t)])
  const hs = await (await fetch(`${a.url}/session-handshake`, {
    method: 'POST', headers: { ...headers, 'x-foundry-url': 'http://127.0.0.1:9/', 'x-username': GM.name }
  })).json() as { token: string, publicKey: string, nonce: string }
  a.kill('SIGTERM')
  t.equal(await a.exited, 0)
  const res = await fetch(`${b.url}/start-session`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ handshakeToken: hs.token, encryptedPassword: encryptNode(hs.publicKey, { password: 'x', nonce: hs.nonce }) })
  })
  t.equal(res.status, 401)
  t.equal(res.headers.get('fly-replay'), null)
  t.match(await res.json(), { code: 'HANDSHAKE_NOT_FOUND', error: /machine that made this handshake has stopped/ })
})

t.test('placement: a full machine sends handshakes elsewhere; 429 only when the whole fleet is full', async (t) => {
  const redis = await startRedis(t)
  const { standin } = await foundry(t)
  const env = { API_KEYS: KEY, REDIS_URL: redis.url, MAX_SESSIONS: '1', FLEET_HEARTBEAT_MS: '1000' }
  const [a, b] = await Promise.all([startMachine('machine-a', env, t), startMachine('machine-b', env, t)])
  const proxy = await startFlyProxy([a, b])
  t.teardown(proxy.close)
  const json = { ...headers, 'content-type': 'application/json' }
  const start = async (user: { name: string, password: string }, body: Record<string, unknown> = {}): Promise<{ status: number, body: Record<string, unknown>, hsMachine: string }> => {
    const hs = await (await fetch(`${proxy.url}/session-handshake`, {
      method: 'POST', headers: { ...headers, 'x-foundry-url': standin.url, 'x-username': user.name }
    })).json() as { token: string, publicKey: string, nonce: string, instanceId: string }
    const res = await fetch(`${proxy.url}/start-session`, {
      method: 'POST', headers: json, body: JSON.stringify({ handshakeToken: hs.token, encryptedPassword: encryptNode(hs.publicKey, { password: user.password, nonce: hs.nonce }), ...body })
    })
    return { status: res.status, body: await res.json() as Record<string, unknown>, hsMachine: hs.instanceId }
  }
  const first = await start(GM)
  t.equal(first.status, 200, JSON.stringify(first.body))
  const full = first.hsMachine
  const roomy = full === 'machine-a' ? 'machine-b' : 'machine-a'
  // Once the full machine's heartbeat says so, every handshake ends up on the other one.
  const landed = async (): Promise<string[]> => {
    const out: string[] = []
    for (let i = 0; i < 2; i++) {
      out.push(((await (await fetch(`${proxy.url}/session-handshake`, { method: 'POST', headers: { ...headers, 'x-foundry-url': standin.url, 'x-username': PLAYER.name } })).json()) as { instanceId: string }).instanceId)
    }
    return out
  }
  t.ok(await eventually(async () => (await landed()).every((m) => m === roomy), 10_000), `handshakes go to ${roomy}`)
  const replayed = proxy.log.filter((h) => h.path === '/session-handshake' && h.replay)
  t.ok(replayed.length > 0 && replayed.every((h) => h.machine === roomy), 'by fly-replay: elsewhere=true from the full machine')
  const direct = await fetch(`${(full === 'machine-a' ? a : b).url}/session-handshake`, { method: 'POST', headers: { ...headers, 'x-foundry-url': standin.url, 'x-username': PLAYER.name } })
  t.equal(direct.status, 409)
  t.equal(direct.headers.get('fly-replay'), 'elsewhere=true')

  const second = await start(PLAYER, { requireModule: false })
  t.equal(second.status, 200, JSON.stringify(second.body))
  t.equal(second.hsMachine, roomy)
  // Both full: the handshake is served where it lands, the start says the fleet is full.
  t.ok(await eventually(async () => {
    const r = await fetch(`${(full === 'machine-a' ? a : b).url}/session-handshake`, { method: 'POST', headers: { ...headers, 'x-foundry-url': standin.url, 'x-username': GM2.name } })
    return r.status === 200
  }, 10_000), 'no replay once no machine has room')
  const third = await start(GM2)
  t.equal(third.status, 429)
  t.match(third.body, { code: 'AT_CAPACITY' })
})

// The service started the way the README tells users to (`npm start`: the
// compiled `node dist/server.js`, as the Docker image runs it), driven over
// HTTP only: a full login, both relay refusals with their own codes, and a
// Foundry restart. Issue 8 §1: under `tsx server.ts` the page-side WebSocket
// watcher broke and both refusals came back as MODULE_NOT_CONNECTED.
import t from 'tap'
import { defaultClientId } from '../../support/foundry/standin.ts'
import { GM, WORLD, eventually, foundry } from './fixtures.ts'
import { startService, startSessionHttp, type ServiceProcess } from './service-process.ts'

const KEY = 'as-users-run-key'
let service: ServiceProcess
let base: string

t.before(async () => {
  service = startService({
    API_KEYS: KEY,
    CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? '',
    // Long next to the few seconds a refusal takes: a refusal that is only
    // noticed by the timeout answers 504 MODULE_NOT_CONNECTED instead.
    MODULE_CONNECT_TIMEOUT_MS: '30000',
    RELOGIN_BASE_MS: '500',
    RELOGIN_ATTEMPTS: '8'
  })
  base = await service.listening()
})
t.teardown(async () => { await service.stop() })

async function session (id: string): Promise<Record<string, unknown> | undefined> {
  const res = await fetch(`${base}/session`, { headers: { 'x-api-key': KEY } })
  const list = await res.json() as Record<string, Array<Record<string, unknown>>>
  return [...list.activeSessions, ...list.pendingSessions, ...list.endedSessions].find((s) => s.id === id)
}

t.test('one full login, then a Foundry restart: the session logs back in', async (t) => {
  const { standin, relay } = await foundry(t)
  const res = await startSessionHttp({ base, apiKey: KEY, foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title })
  t.equal(res.status, 200, res.text)
  t.match(res.json, { success: true, clientId: `foundry-${GM.id}` })
  const { sessionId, clientId } = res.json
  t.ok(relay.open().some((c) => c.id === clientId), 'the module is connected at the relay')

  await standin.restart({ downMs: 3000 })
  t.ok(await eventually(async () => (await session(sessionId))?.status === 'reconnecting', 20_000), 'reconnecting while Foundry is away')
  t.ok(await eventually(async () => {
    const s = await session(sessionId)
    return s?.status === 'active' && s.relogins === 1
  }, 40_000), 'active again, same sessionId')
  t.ok(await eventually(() => relay.open().some((c) => c.id === clientId), 10_000), 'the module is connected again')
  const end = await fetch(`${base}/end-session?sessionId=${sessionId}`, { method: 'DELETE', headers: { 'x-api-key': KEY } })
  t.equal(end.status, 200)
  t.notOk(service.out().includes(GM.password), 'no password in the log')
})

t.test('module 2.x: the relay refuses the id (close 4004) → 409 MODULE_CONNECTION_TAKEN', async (t) => {
  const { standin } = await foundry(t, {}, { rejectIds: [`foundry-${GM.id}`] })
  const res = await startSessionHttp({ base, apiKey: KEY, foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(res.status, 409, res.text)
  t.match(res.json, { statusCode: 409, code: 'MODULE_CONNECTION_TAKEN', error: /4004/, stage: 'module-connection' })
})

t.test('module 3.x: the relay refuses the token (close 1008) → 422 MODULE_TOKEN_REFUSED', async (t) => {
  const TOKEN = 'as-run-token-' + 'y'.repeat(32)
  const { standin, relay } = await foundry(t, { moduleVersion: 3 }, { validTokens: [TOKEN] })
  const res = await startSessionHttp({ base, apiKey: KEY, foundryUrl: standin.url, username: GM.name, password: GM.password, connectionToken: 'wrong-token-' + 'z'.repeat(20) })
  t.equal(res.status, 422, res.text)
  t.match(res.json, { statusCode: 422, code: 'MODULE_TOKEN_REFUSED', error: /close 1008/, stage: 'module-connection' })
  t.ok(relay.connections.some((c) => c.id === defaultClientId(WORLD.id) && c.closeCode === 1008), 'the relay did close it with 1008')
  t.notOk(service.out().includes('wrong-token-'), 'the token never reached the log')
})

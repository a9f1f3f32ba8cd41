// GET /session/{id}/events over HTTP, read with the typed client (the same
// code the console and the CLI run), against real Chromium and the stand-in.
import t from 'tap'
import { createClient, type SessionEvent } from '../../public/client.ts'
import { API_KEY, OTHER_KEY, build } from '../helper.ts'
import { GM, WORLD, eventually, foundry } from './fixtures.ts'

const ORDER = ['reach', 'admin-auth', 'world-launch', 'join', 'game-load', 'module-connection']

async function listening (t: Parameters<typeof build>[0], env: Parameters<typeof build>[1] = {}) {
  const built = await build(t, env)
  await built.app.listen({ host: '127.0.0.1', port: 0 })
  return { ...built, server: `http://127.0.0.1:${(built.app.server.address() as { port: number }).port}` }
}

/** Collect a session's events until `until` says stop (or the stream ends). */
async function collect (events: AsyncGenerator<SessionEvent>, until: (e: SessionEvent, all: SessionEvent[]) => boolean): Promise<SessionEvent[]> {
  const all: SessionEvent[] = []
  for await (const e of events) {
    all.push(e)
    if (until(e, all)) break
  }
  return all
}

// One service (one Chromium) for the tests that neither close it nor need
// its stream caps: each test has its own stand-in and ends its session. The
// Foundry restart's relogin settings change nothing for the others.
const shared = await listening(t, { RELOGIN_BASE_MS: 500, RELOGIN_ATTEMPTS: 6 })

const brief = (e: SessionEvent): string => e.type === 'stage' ? `stage:${e.stage}` : e.type === 'status' ? `status:${e.status}` : e.type === 'module' ? `module:${e.connected}` : `egress:${e.reason}`

t.test('a login\'s stages and its status arrive in order, and the stream ends with the session', async (t) => {
  const { server } = shared
  // Slow pages leave time to subscribe while the login runs.
  const { standin } = await foundry(t, { joinRenderDelayMs: 1500, gameReadyDelayMs: 800 })
  const client = createClient({ server, apiKey: API_KEY })
  const started = client.start({ foundryUrl: standin.url, username: GM.name, worldName: WORLD.title, password: GM.password })
  started.catch(() => {})
  let id: string | undefined
  t.ok(await eventually(async () => { id = (await client.list()).pendingSessions[0]?.id; return id !== undefined }, 20_000), 'listed as pending')
  const login = await collect(client.events(id!), (e) => e.type === 'status' && e.status === 'active')
  const reply = await started
  t.equal(reply.sessionId, id)

  const names = login.map(brief)
  t.equal(names[0], 'status:starting', 'the stream opens with the current status')
  t.equal(names.at(-1), 'status:active', 'and follows it to active')
  const stages = login.filter((e) => e.type === 'stage').map((e) => e.stage)
  t.same(stages.slice(-3), ['join', 'game-load', 'module-connection'], 'the last stages, as the login went through them')
  t.same([...stages].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b)), stages, 'every stage in order, none twice')
  t.ok(login.every((e) => e.sessionId === id), 'every event names the session')
  t.ok(login.every((e, i) => i === 0 || Date.parse(e.at) >= Date.parse(login[i - 1]!.at)), 'times never go back')

  // A newcomer gets the current status first; ending the session ends the stream.
  const later = client.events(id!)
  const first = await later.next()
  t.match(first.value, { type: 'status', status: 'active', sessionId: id })
  await client.end(id!)
  const rest = await collect(later, () => false)
  t.match(rest.map(brief), ['status:ended'], 'then ended, and the stream is over')
  t.match(rest.at(-1), { reason: 'ended by the client' })
})

t.test('a Foundry restart: reconnecting (and why), the new login\'s stages, active again', async (t) => {
  const { server } = shared
  const { standin } = await foundry(t)
  const client = createClient({ server, apiKey: API_KEY })
  const { sessionId } = await client.start({ foundryUrl: standin.url, username: GM.name, password: GM.password })
  const stream = client.events(sessionId)
  t.match((await stream.next()).value, { type: 'status', status: 'active' })
  await standin.restart({ downMs: 3000 })
  const seen = await collect(stream, (e) => e.type === 'status' && e.status === 'active')
  const names = seen.map(brief)
  // The module's relay connection goes with the page: that may come first.
  const firstStatus = seen.find((e) => e.type === 'status')
  t.equal(firstStatus !== undefined ? brief(firstStatus) : '', 'status:reconnecting', 'first status: reconnecting')
  t.match(firstStatus, { reason: /Foundry|page|connection/ }, 'with the reason')
  t.ok(seen.slice(0, seen.indexOf(firstStatus!)).every((e) => e.type === 'module' && !e.connected), 'before it, at most the module going')
  t.equal(names.at(-1), 'status:active', 'last: active again')
  const stages = seen.filter((e) => e.type === 'stage').map((e) => e.stage)
  t.ok(stages.includes('join') && stages.at(-1) === 'module-connection', `the new login's stages (${stages.join(', ')})`)
  await client.end(sessionId)
})

t.test('isolation and bad input: 404 for another key\'s or an unknown id, 401 without a key', async (t) => {
  const { app, server } = shared
  const { standin } = await foundry(t)
  const { sessionId } = await createClient({ server, apiKey: API_KEY }).start({ foundryUrl: standin.url, username: GM.name, password: GM.password })
  const other = createClient({ server, apiKey: OTHER_KEY })
  await t.rejects(other.events(sessionId).next(), { name: 'ApiError', statusCode: 404, code: 'SESSION_NOT_FOUND' })
  const unknown = await app.inject({ url: '/session/no-such-session/events', headers: { 'x-api-key': API_KEY } })
  t.match({ status: unknown.statusCode, body: unknown.json() }, { status: 404, body: { statusCode: 404, code: 'SESSION_NOT_FOUND', error: /Session not found/ } })
  const noKey = await app.inject({ url: `/session/${sessionId}/events` })
  t.match(noKey.json(), { statusCode: 401, code: 'API_KEY_MISSING' })
  const json = await app.inject({ url: '/session/x/events', headers: { 'x-api-key': API_KEY, accept: 'application/json' } })
  t.match(json.json(), { statusCode: 404, code: 'SESSION_NOT_FOUND' }, 'the one error shape whatever the Accept header')
  const res = await fetch(`${server}/session/${sessionId}/events`, { headers: { 'x-api-key': API_KEY } })
  t.equal(res.headers.get('content-type'), 'text/event-stream')
  await res.body?.cancel()
  await createClient({ server, apiKey: API_KEY }).end(sessionId)
})

t.test('the OpenAPI document describes the stream', async (t) => {
  const { app } = shared
  const doc = (await app.inject('/docs/json')).json()
  const op = doc.paths['/session/{id}/events'].get
  t.ok(op.responses['200'].content['text/event-stream'].schema, 'a text/event-stream 200 with the event schema')
  t.ok(op.responses['404'], 'and its 404')
})

t.test('closing the service ends every open stream with the sessions', async (t) => {
  const { app, server } = await listening(t)
  const { standin } = await foundry(t)
  const client = createClient({ server, apiKey: API_KEY })
  const { sessionId } = await client.start({ foundryUrl: standin.url, username: GM.name, password: GM.password })
  const stream = client.events(sessionId)
  t.match((await stream.next()).value, { type: 'status', status: 'active' })
  const closing = app.close()
  const rest = await collect(stream, () => false)
  t.match(rest.at(-1), { type: 'status', status: 'ended', reason: /shutting down/ })
  await closing
  t.pass('and the service closed')
})

t.test('streams are bounded per API key: past EVENT_STREAMS_PER_KEY, 429 TOO_MANY_STREAMS with Retry-After; a closed stream frees its place', async (t) => {
  const { server } = await listening(t, { EVENT_STREAMS_PER_KEY: 2 })
  const { standin } = await foundry(t)
  const client = createClient({ server, apiKey: API_KEY })
  const { sessionId: id } = await client.start({ foundryUrl: standin.url, username: GM.name, password: GM.password })
  const open = async (): Promise<{ res: Response, stop: AbortController }> => {
    const stop = new AbortController()
    const res = await fetch(`${server}/session/${id}/events`, { headers: { 'x-api-key': API_KEY }, signal: stop.signal })
    return { res, stop }
  }
  const a = await open()
  const b = await open()
  t.equal(a.res.status, 200)
  t.equal(b.res.status, 200)
  const c = await open()
  t.equal(c.res.status, 429, 'the third stream of the key is refused')
  t.match(await c.res.json(), { code: 'TOO_MANY_STREAMS' })
  t.ok(Number(c.res.headers.get('retry-after')) > 0, 'with Retry-After')
  a.stop.abort()
  t.ok(await eventually(async () => {
    const d = await open()
    d.stop.abort()
    return d.res.status === 200
  }, 5000), 'a stream closed by its client frees its place')
  b.stop.abort()
  await client.end(id)
})

// Ends the file once the tests above are done, so the shared service (and
// its Chromium) is closed then rather than keeping the process alive.
t.end()

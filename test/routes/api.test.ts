// The API's contract without a Foundry: auth, validation, handshakes,
// start-session's pre-login failures, end, list, docs and health. One app
// for the file (it starts a real Chromium); every case uses fresh handshakes.
import t from 'tap'
import { FormatRegistry } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { HandshakeReply } from '../../schemas/session.ts'
import { API_KEY, OTHER_KEY, build, encryptNode, expectError, handshake } from '../helper.ts'

// TypeBox checks formats only once they are registered (Fastify's Ajv knows date-time).
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v))

const HEADERS = { 'x-foundry-url': 'http://127.0.0.1:9/', 'x-username': 'Gamemaster' }

t.test('API contract', async (t) => {
  const { app, logs } = await build(t)

  const post = (url: string, headers: Record<string, string>, payload?: unknown) =>
    app.inject({ method: 'POST', url, headers, ...(payload !== undefined ? { payload: payload as object } : {}) })

  t.test('every session route needs a known API key', async (t) => {
    for (const [method, url] of [['POST', '/session-handshake'], ['POST', '/start-session'], ['DELETE', '/end-session?sessionId=x'], ['GET', '/session']] as const) {
      expectError(t, await app.inject({ method, url }), 401, 'API_KEY_MISSING')
      expectError(t, await app.inject({ method, url, headers: { 'x-api-key': 'nope' } }), 401, 'API_KEY_INVALID')
    }
    t.notOk(logs().includes('"nope"'), 'a rejected key is not logged')
  })

  t.test('handshake', async (t) => {
    const res = await post('/session-handshake', { 'x-api-key': API_KEY, ...HEADERS, 'x-world-name': 'My World' })
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.match(body, {
      token: /^[0-9a-f]{64}$/,
      nonce: /^[0-9a-f]{32}$/,
      publicKey: /^-----BEGIN PUBLIC KEY-----/,
      expires: Number,
      expiresAt: String,
      instanceId: 'local',
      foundryUrl: 'http://127.0.0.1:9/',
      username: 'Gamemaster',
      worldName: 'My World'
    })
    t.ok(body.expires - Date.now() > 290_000 && body.expires - Date.now() <= 300_000, 'expires in 5 minutes')
    t.equal(new Date(body.expiresAt).getTime(), body.expires)
    t.match(res.headers['content-type'], /^application\/json; charset=utf-8$/)
    t.ok(Value.Check(HandshakeReply, body), 'the reply is what the OpenAPI document says')

    // The reply is written by hand (the key pre-serialised): names that need
    // escaping come back as sent, a missing world name is no key at all.
    const odd = 'Game"master \\ </script>'
    const oddRes = await post('/session-handshake', { 'x-api-key': API_KEY, ...HEADERS, 'x-username': odd, 'x-world-name': ' "W" ' })
    t.equal(oddRes.statusCode, 200)
    t.match(oddRes.json(), { username: odd, worldName: '"W"' })
    t.ok(Value.Check(HandshakeReply, oddRes.json()))
    const plain = (await post('/session-handshake', { 'x-api-key': API_KEY, ...HEADERS })).json()
    t.notOk('worldName' in plain, 'no worldName without x-world-name')

    expectError(t, await post('/session-handshake', { 'x-api-key': API_KEY, 'x-username': 'GM' }), 400, 'INVALID_REQUEST')
    expectError(t, await post('/session-handshake', { 'x-api-key': API_KEY, 'x-foundry-url': 'http://x/' }), 400, 'INVALID_REQUEST')
    const missing = await post('/session-handshake', { 'x-api-key': API_KEY, 'x-username': 'GM' })
    t.match(missing.json().error, /x-foundry-url is required/)
    for (const url of ['not a url', 'ftp://host/', 'file:///etc/passwd', 'http://user:pw@host/', 'http://169.254.169.254/', 'http://[fe80::1]/', 'javascript:alert(1)']) {
      expectError(t, await post('/session-handshake', { 'x-api-key': API_KEY, 'x-foundry-url': url, 'x-username': 'GM' }), 400, 'INVALID_FOUNDRY_URL')
    }
    t.notOk(logs().includes('user:pw'), 'credentials in a refused URL are not logged')
  })

  t.test('start-session refuses bad input before any browser work', async (t) => {
    const start = (payload: unknown, key = API_KEY) => post('/start-session', { 'x-api-key': key, 'content-type': 'application/json' }, payload)

    expectError(t, await start({}), 400, 'INVALID_REQUEST')
    expectError(t, await start({ handshakeToken: 'x' }), 400, 'INVALID_REQUEST')
    expectError(t, await app.inject({ method: 'POST', url: '/start-session', headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, payload: '{bad json' }), 400, 'INVALID_JSON')
    expectError(t, await app.inject({ method: 'POST', url: '/start-session', headers: { 'x-api-key': API_KEY, 'content-type': 'application/xml' }, payload: '<x/>' }), 415, 'UNSUPPORTED_MEDIA_TYPE')
    expectError(t, await app.inject({ method: 'POST', url: '/start-session', headers: { 'x-api-key': API_KEY, 'content-type': 'text/plain' }, payload: 'x' }), 400, 'INVALID_REQUEST')
    expectError(t, await app.inject({ method: 'POST', url: '/start-session', headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, payload: JSON.stringify({ handshakeToken: 'x'.repeat(100_000) }) }), 413, 'PAYLOAD_TOO_LARGE')
    expectError(t, await start({ handshakeToken: 'f'.repeat(64), encryptedPassword: 'AAAA' }), 401, 'HANDSHAKE_NOT_FOUND')

    const h1 = await handshake(app, HEADERS)
    expectError(t, await start({ handshakeToken: h1.token, encryptedPassword: encryptNode(h1.publicKey, { password: 'pw', nonce: h1.nonce }) }, OTHER_KEY), 401, 'HANDSHAKE_NOT_FOUND')

    const h2 = await handshake(app, HEADERS)
    expectError(t, await start({ handshakeToken: h2.token, encryptedPassword: encryptNode(h2.publicKey, { password: 'pw', nonce: '0'.repeat(32) }) }), 401, 'NONCE_MISMATCH')
    expectError(t, await start({ handshakeToken: h2.token, encryptedPassword: encryptNode(h2.publicKey, { password: 'pw', nonce: h2.nonce }) }), 401, 'HANDSHAKE_NOT_FOUND')

    const h3 = await handshake(app, HEADERS)
    expectError(t, await start({ handshakeToken: h3.token, encryptedPassword: 'bm90IGNpcGhlcnRleHQ=' }), 400, 'INVALID_ENCRYPTED_PASSWORD')

    const sessions = await app.inject({ method: 'GET', url: '/session', headers: { 'x-api-key': API_KEY } })
    t.same(sessions.json(), { activeSessions: [], pendingSessions: [], endedSessions: [] }, 'no session was created by bad requests')
  })

  t.test('end-session', async (t) => {
    expectError(t, await app.inject({ method: 'DELETE', url: '/end-session', headers: { 'x-api-key': API_KEY } }), 400, 'INVALID_REQUEST')
    expectError(t, await app.inject({ method: 'DELETE', url: '/end-session?sessionId=nope', headers: { 'x-api-key': API_KEY } }), 404, 'SESSION_NOT_FOUND')
  })

  t.test('unknown routes get the error shape', async (t) => {
    expectError(t, await app.inject({ method: 'GET', url: '/nope' }), 404, 'ROUTE_NOT_FOUND')
  })

  t.test('health reports a running Chromium', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/health' })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { status: 'ok', browser: { chromium: 'running', version: /Chrome/ }, sessions: { starting: 0, active: 0 } })
  })

  t.test('OpenAPI document and try-it console', async (t) => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
    t.equal(doc.openapi, '3.0.3')
    t.same(doc.components.securitySchemes.apiKey, { type: 'apiKey', name: 'x-api-key', in: 'header', description: 'An API key from API_KEYS' })
    t.ok(doc.components.schemas.ErrorReply, 'the error shape is a named schema')
    // 408, 431 and 500 on every route (Node's parser, an unexpected failure);
    // 413 and 415 where a body is parsed; 429 API_KEY_THROTTLED behind the key;
    // the fleet's 409 OTHER_MACHINE and 503 FLEET_UNAVAILABLE / REPLAY_MISSED.
    const ops: Record<string, string[]> = {
      '/session-handshake': ['post', '200', '400', '401', '408', '409', '413', '415', '429', '431', '500', '503'],
      '/start-session': ['post', '200', '400', '401', '403', '404', '408', '409', '413', '415', '422', '429', '431', '500', '502', '503', '504'],
      '/end-session': ['delete', '200', '400', '401', '404', '408', '409', '413', '415', '429', '431', '500', '503'],
      '/session': ['get', '200', '401', '408', '429', '431', '500', '503'],
      '/health': ['get', '200', '408', '431', '500', '503']
    }
    for (const [path, [method, ...statuses]] of Object.entries(ops)) {
      const op = doc.paths[path]?.[method]
      t.ok(op, `${method} ${path} documented`)
      t.same(Object.keys(op.responses).sort(), statuses.sort(), `${path} documents each status`)
      if (path !== '/health') t.same(op.security, [{ apiKey: [] }], `${path} requires the API key`)
    }
    const handshakeParams = doc.paths['/session-handshake'].post.parameters.map((p: { name: string, in: string }) => `${p.in}:${p.name}`)
    t.same(handshakeParams.sort(), ['header:x-foundry-url', 'header:x-username', 'header:x-world-name'])
    const ui = await app.inject({ method: 'GET', url: '/docs/' })
    t.equal(ui.statusCode, 200)
    t.match(ui.headers['content-type'], /text\/html/)
  })
})

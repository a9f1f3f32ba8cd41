// Property-based fuzzing of every endpoint through inject: malformed methods,
// paths, query strings, headers, bodies and ciphertexts, replayed and
// cross-key tokens. Properties: never a 5xx, always the one error shape,
// never a session created or ended by a bad request, never a crash. Host
// names resolve through a fake resolver (no DNS); one real session of
// API_KEY is kept starting against the stand-in so that another key's
// requests can be shown to leave it alone.
import t from 'tap'
import fc from 'fast-check'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { constants, createHash, publicEncrypt } from 'node:crypto'
import { classifyAddress, kindAllowed, type Resolver } from '../../lib/access/url-policy.ts'
import { API_KEY, OTHER_KEY, build, encryptNode, type TestContext } from '../helper.ts'

/** Codes of a start-session refused before the keystore sees the token. */
const BEFORE_KEYSTORE = new Set(['INVALID_REQUEST', 'INVALID_JSON', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'])
import { GM, eventually, foundry, listSessions, startSession } from '../e2e/fixtures.ts'

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
const runs = (n: number) => ({ numRuns: Math.round(n * Number(process.env.FUZZ_SCALE ?? 1)), seed: SEED, endOnFailure: true })
t.comment(`fast-check seed ${SEED} (FUZZ_SEED=${SEED} replays it)`)

// Every host name resolves, deterministically, to one or two addresses of
// any kind: public, private, loopback, link-local, metadata, IPv6…
const POOL = ['93.184.216.34', '8.8.8.8', '10.0.0.7', '192.168.1.20', '127.0.0.1', '169.254.169.254', '169.254.3.4',
  '::1', 'fe80::1', '2606:4700::1111', 'fd00:ec2::254', '0.0.0.0', '224.0.0.1', '::ffff:169.254.169.254', '100.100.100.200']
const resolveFake: Resolver = async (host) => {
  const h = createHash('sha256').update(host).digest()
  if (h[0] % 11 === 0) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
  return h[1] % 3 === 0 ? [POOL[h[2] % POOL.length], POOL[h[3] % POOL.length]] : [POOL[h[2] % POOL.length]]
}
const hostAllowed = async (host: string): Promise<boolean> => {
  const bare = host.replace(/^\[|\]$/g, '').replace(/\.$/, '')
  const addresses = /^[\d.]+$|:/.test(bare) ? [bare] : await resolveFake(bare.toLowerCase()).catch(() => null)
  return addresses !== null && addresses.every((a) => kindAllowed(classifyAddress(a), 'default'))
}

const printable = fc.string({ unit: fc.constantFrom(...' !"#$%&\'()*+,-./0123456789:;<=>?@ABCZ[\\]^_`abcxyz{|}~\t'.split('')), maxLength: 40 })
const nasty = fc.constantFrom('', ' ', '%', '%00', '%zz', '..', '../', '\\', '%2e%2e%2f', '{}', '[]', 'null', 'undefined', '__proto__',
  'constructor', 'x'.repeat(300), '😀', 'é', '\u0000', '%E2%80%AE', '&&&', '=', '==', '?', '#')
const headerValue = fc.oneof(printable, nasty.filter((s) => /^[\t\x20-\x7e]*$/.test(s)), fc.constant('x'.repeat(5000)))
const urlish = fc.oneof(
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc.tuple(fc.constantFrom('http', 'https', 'ftp', 'file', 'javascript', 'ws', 'data', 'HTTP', 'hTtPs'),
    fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.ipV6().map((h) => `[${h}]`), fc.domain(), fc.constantFrom('localhost', 'metadata', 'metadata.google.internal', '0x7f.1', '2130706433', '[::ffff:a9fe:a9fe]', '169.254.169.254')),
    fc.option(fc.integer({ min: 0, max: 70000 })), fc.option(fc.constantFrom('user:pw@', 'u@', ':p@', 'a%40b:c@')), printable)
    .map(([s, h, port, cred, path]) => `${s}://${cred ?? ''}${h}${port !== null ? ':' + String(port) : ''}/${path}`),
  printable, nasty
)

interface Harness {
  app: FastifyInstance
  logs: () => string
  pendingId: string
}

async function harness (t: TestContext): Promise<Harness> {
  // The real login waits on a game that never gets ready for the whole run.
  const { app, logs } = await build(t, {
    LOG_LEVEL: 'info', HANDSHAKE_RATE_MAX: 0, API_KEY_FAIL_MAX: 0, HANDSHAKE_MAX: 100_000, HANDSHAKE_MAX_PER_KEY: 100_000, GAME_READY_TIMEOUT_MS: 600_000
  }, { resolve: resolveFake })
  return { app, logs, pendingId: '' }
}

/** The properties every answer must have. */
function wellFormed (res: LightMyRequestResponse, method: string): void {
  if (res.statusCode >= 500) throw new Error(`5xx: ${res.statusCode} ${res.body}`)
  if (res.statusCode >= 400 && method !== 'HEAD') {
    let body: unknown
    try { body = res.json() } catch { throw new Error(`error body is not JSON: ${res.statusCode} ${res.body.slice(0, 200)}`) }
    const b = body as { statusCode?: unknown, code?: unknown, error?: unknown }
    if (b.statusCode !== res.statusCode || typeof b.code !== 'string' || !/^[A-Z_]+$/.test(b.code) || typeof b.error !== 'string' || b.error === '') {
      throw new Error(`not the error shape: ${res.statusCode} ${res.body.slice(0, 200)}`)
    }
    if (res.statusCode === 429 && res.headers['retry-after'] === undefined) throw new Error('429 without Retry-After')
  }
}

t.test('fuzz', async (t) => {
  const h = await harness(t)
  const { app } = h
  const { standin } = await foundry(t, { gameReadyDelayMs: 600_000 })

  // One real login of API_KEY, kept starting for the whole run.
  const pending = startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.ok(await eventually(async () => {
    h.pendingId = String((await listSessions(app)).pendingSessions[0]?.id ?? '')
    return h.pendingId !== ''
  }, 20_000), 'a session of API_KEY is starting')

  // From here on, no request may start a session.
  let starts = 0
  const realStart = app.sessions.start.bind(app.sessions)
  app.sessions.start = async (req) => { starts++; return await realStart(req) }
  const snapshot = () => JSON.stringify(app.sessions.counts())
  const before = snapshot()

  const keys = fc.oneof(
    { weight: 3, arbitrary: fc.constant(API_KEY) }, { weight: 2, arbitrary: fc.constant(OTHER_KEY) },
    { weight: 1, arbitrary: fc.constantFrom(API_KEY + ' ', ' ' + API_KEY, API_KEY.toUpperCase(), API_KEY.slice(0, -1), `${API_KEY},${OTHER_KEY}`, 'sha256:' + createHash('sha256').update(API_KEY).digest('hex')) },
    { weight: 1, arbitrary: headerValue }
  )
  const paths = fc.constantFrom('/session-handshake', '/start-session', '/end-session', '/session', '/health', '/docs', '/docs/json', '/docs/static/index.html',
    '/failure-screenshot/', '/', '/nope', '/session/', '//session', '/end-session/', '/docs/../session', '/start-session?x=1')

  t.test('any request to any route', async (t) => {
    await fc.assert(fc.asyncProperty(
      fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD'),
      paths, fc.oneof(fc.constant(''), fc.string({ maxLength: 60 }).map((q) => '?' + encodeURIComponent(q).replace(/%3D/g, '=').replace(/%26/g, '&')), nasty.map((q) => '?sessionId=' + q), fc.constant('?sessionId=a&sessionId=b')),
      fc.option(keys), fc.option(headerValue), fc.option(urlish.filter((s) => /^[\t\x20-\x7e]*$/.test(s))), fc.option(headerValue),
      fc.option(fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/xml', 'multipart/form-data', 'application/x-www-form-urlencoded', '', 'application/json; charset=latin1', 'APPLICATION/JSON')),
      fc.option(fc.oneof(fc.json({ maxDepth: 3 }), fc.string({ maxLength: 200 }), fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify({ handshakeToken: v, encryptedPassword: v, worldName: v })))),
      async (method, path, query, key, username, foundryUrl, world, contentType, payload) => {
        const headers: Record<string, string> = {}
        if (key !== null) headers['x-api-key'] = key
        if (username !== null) headers['x-username'] = username
        if (foundryUrl !== null) headers['x-foundry-url'] = foundryUrl
        if (world !== null) headers['x-world-name'] = world
        if (contentType !== null) headers['content-type'] = contentType
        const res = await app.inject({ method, url: path + query, headers, ...(payload !== null && method !== 'GET' && method !== 'HEAD' ? { payload } : {}) })
        wellFormed(res, method)
        if (res.statusCode === 200 && path === '/session-handshake' && method === 'POST' && foundryUrl !== null) {
          const host = new URL(foundryUrl.trim()).hostname
          if (!(await hostAllowed(host))) throw new Error(`handshake accepted a refused URL: ${foundryUrl}`)
        }
      }
    ), runs(10000))
    t.pass('10000 requests: no 5xx, one error shape')
  })

  t.test('handshake headers', async (t) => {
    await fc.assert(fc.asyncProperty(urlish, headerValue, fc.option(headerValue), fc.constantFrom(API_KEY, OTHER_KEY), async (url, user, world, key) => {
      if (!/^[\t\x20-\x7e]*$/.test(url)) return
      const res = await app.inject({
        method: 'POST',
        url: '/session-handshake',
        headers: { 'x-api-key': key, 'x-foundry-url': url, 'x-username': user, ...(world !== null ? { 'x-world-name': world } : {}) }
      })
      wellFormed(res, 'POST')
      if (res.statusCode === 200) {
        const parsed = new URL(url.trim())
        if (!['http:', 'https:'].includes(parsed.protocol) || parsed.username !== '' || parsed.password !== '') throw new Error(`accepted ${url}`)
        if (!(await hostAllowed(parsed.hostname))) throw new Error(`accepted a refused address: ${url}`)
      } else if (res.statusCode !== 400) {
        throw new Error(`unexpected ${res.statusCode} ${res.body}`)
      }
    }), runs(4000))
    t.pass('handshake headers: only allowed URLs accepted')
  })

  t.test('start-session: ciphertexts, replays and cross-key tokens', async (t) => {
    const hs = async (key: string) => (await app.inject({
      method: 'POST', url: '/session-handshake', headers: { 'x-api-key': key, 'x-foundry-url': standin.url, 'x-username': GM.name }
    })).json() as { token: string, publicKey: string, nonce: string }
    const used: string[] = []
    const other = await hs(OTHER_KEY)

    await fc.assert(fc.asyncProperty(
      fc.constantFrom('own', 'other-key', 'replayed', 'random-hex', 'random'),
      fc.constantFrom('wrong-nonce', 'no-nonce', 'nonce-number', 'password-not-string', 'not-json', 'json-array', 'other-key-ciphertext',
        'bit-flip', 'truncated', 'random-base64', 'random-string', 'padded', 'empty-json', 'whitespace-in-base64', 'sha256-wrong-nonce'),
      // Short enough that any JSON around it fits one RSA-OAEP block.
      fc.string({ maxLength: 20 }), fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat(),
      fc.option(fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 4 })),
      fc.constantFrom(API_KEY, OTHER_KEY),
      async (tokenKind, cipherKind, text, bytes, n, extra, caller) => {
        const mine = await hs(caller)
        const token = tokenKind === 'own'
          ? mine.token
          : tokenKind === 'other-key'
            ? (caller === API_KEY ? other.token : (await hs(API_KEY)).token)
            : tokenKind === 'replayed'
              ? used[n % Math.max(1, used.length)] ?? mine.token
              : tokenKind === 'random-hex' ? createHash('sha256').update(text).digest('hex') : text
        const valid = (payload: unknown, hash: 'sha1' | 'sha256' = 'sha1') => encryptNode(mine.publicKey, payload, hash)
        let encryptedPassword: string
        switch (cipherKind) {
          case 'wrong-nonce': encryptedPassword = valid({ password: text, nonce: '0'.repeat(32) }); break
          case 'sha256-wrong-nonce': encryptedPassword = valid({ password: text, nonce: mine.nonce.replace(/.$/, (c) => c === '0' ? '1' : '0') }, 'sha256'); break
          case 'no-nonce': encryptedPassword = valid({ password: text }); break
          case 'nonce-number': encryptedPassword = valid({ password: text, nonce: n }); break
          case 'password-not-string': encryptedPassword = valid({ password: n, nonce: mine.nonce }); break
          case 'not-json': encryptedPassword = publicEncrypt({ key: mine.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(`${text}{`, 'utf8')).toString('base64'); break
          case 'json-array': encryptedPassword = valid([text, mine.nonce]); break
          // Another handshake's ciphertext (same RSA key while it serves, its own nonce).
          case 'other-key-ciphertext': encryptedPassword = encryptNode(other.publicKey, { password: text, nonce: other.nonce }); break
          case 'bit-flip': {
            const c = Buffer.from(valid({ password: text, nonce: mine.nonce }), 'base64')
            c[n % c.length] ^= 1 << (n % 8)
            encryptedPassword = c.toString('base64')
            break
          }
          case 'truncated': encryptedPassword = valid({ password: text, nonce: mine.nonce }).slice(0, n % 340); break
          case 'random-base64': encryptedPassword = Buffer.from(bytes).toString('base64'); break
          case 'random-string': encryptedPassword = text; break
          case 'padded': encryptedPassword = valid({ password: text, nonce: mine.nonce }) + '===='; break
          case 'empty-json': encryptedPassword = valid({}); break
          default: encryptedPassword = valid({ password: text, nonce: '1'.repeat(32) }).replace(/(.{64})/g, '$1\n')
        }
        if (encryptedPassword.length > 4096) encryptedPassword = encryptedPassword.slice(0, 4096)
        const res = await app.inject({
          method: 'POST',
          url: '/start-session',
          headers: { 'x-api-key': caller, 'content-type': 'application/json' },
          payload: { ...(extra ?? {}), handshakeToken: token, encryptedPassword }
        })
        wellFormed(res, 'POST')
        if (res.statusCode === 200) throw new Error(`a bad request started a session: ${tokenKind} ${cipherKind}`)
        if (tokenKind === 'own') used.push(token)
        if (starts !== 0) throw new Error(`sessions.start was called (${tokenKind} ${cipherKind})`)
        // Single use: once the keystore has looked at an own token (anything
        // past body parsing and validation), it is gone whatever the failure.
        // A body refused before that (bad JSON, a "__proto__" key, a schema
        // error) leaves the token alone. The probe has a wrong nonce, so it
        // cannot start a session either way.
        if (tokenKind === 'own' && !BEFORE_KEYSTORE.has(res.json().code)) {
          const again = await app.inject({ method: 'POST', url: '/start-session', headers: { 'x-api-key': caller, 'content-type': 'application/json' }, payload: { handshakeToken: token, encryptedPassword: valid({ password: GM.password, nonce: 'f'.repeat(32) }) } })
          if (again.statusCode !== 401 || again.json().code !== 'HANDSHAKE_NOT_FOUND') throw new Error(`token reusable after ${cipherKind}: ${again.statusCode} ${again.body}`)
        }
      }
    ), runs(2000))
    t.pass('no bad ciphertext or token started a session')
  })

  t.test('another key never ends, lists or learns of the starting session', async (t) => {
    const id = h.pendingId
    await fc.assert(fc.asyncProperty(
      fc.oneof(fc.constant(id), fc.constant(id.toUpperCase()), fc.constant(` ${id}`), fc.constant(`${id}%00`), fc.uuid(), fc.string({ maxLength: 60 })),
      async (sessionId) => {
        const end = await app.inject({ method: 'DELETE', url: `/end-session?sessionId=${encodeURIComponent(sessionId)}`, headers: { 'x-api-key': OTHER_KEY } })
        wellFormed(end, 'DELETE')
        if (end.statusCode === 200) throw new Error(`OTHER_KEY ended ${sessionId}`)
        const list = await app.inject({ method: 'GET', url: `/session?sessionId=${encodeURIComponent(sessionId)}`, headers: { 'x-api-key': OTHER_KEY } })
        if (list.statusCode !== 200 || list.body.includes(id)) throw new Error('OTHER_KEY saw the session')
      }
    ), runs(500))
    t.pass('the session of API_KEY stayed invisible to OTHER_KEY')
  })

  t.test('afterwards', async (t) => {
    t.equal(starts, 0, 'no request started a session')
    t.equal(snapshot(), before, 'the session counts are unchanged')
    const list = await listSessions(app)
    t.equal(list.pendingSessions[0]?.id, h.pendingId, 'the one real session is still starting')
    const health = await app.inject({ method: 'GET', url: '/health' })
    t.equal(health.statusCode, 200, 'the service is healthy')
    for (const secret of [API_KEY, OTHER_KEY, GM.password]) t.notOk(h.logs().includes(secret), 'no secret in the log')
    app.sessions.start = realStart
    await app.inject({ method: 'DELETE', url: `/end-session?sessionId=${h.pendingId}`, headers: { 'x-api-key': API_KEY } })
    await pending
  })
})

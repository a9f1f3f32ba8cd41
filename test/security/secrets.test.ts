// No secret in any log line or response: a realistic run (handshakes, a
// session started, listed and ended, login failures, refused requests) with
// the whole log and every response kept, then scanned for each secret: the
// Foundry passwords, the admin password, the module connection token, the
// API keys (accepted and rejected), credentials in a URL, each
// encryptedPassword, and the handshake private keys (captured by wrapping
// key generation) in PEM, base64 DER and hex.
import { capturedPrivateKeys as privateKeys } from './capture-keys.ts'
import t from 'tap'
import type { InjectOptions } from 'fastify'
import { API_KEY, OTHER_KEY, build, encryptNode } from '../helper.ts'
import { GM, PLAYER, foundry } from '../e2e/fixtures.ts'

const ADMIN_PASSWORD = 'admin-secret-Qz7x'
const CONNECTION_TOKEN = 'conn-token-secret-Lm3k'
const WRONG_PASSWORD = 'wrong-secret-Vb8n'
const REJECTED_KEY = 'rejected-api-key-Hy5t'
const URL_PASSWORD = 'url-secret-Rk2w'

t.test('no secret reaches a log line or a response', async (t) => {
  const { app, logs } = await build(t, { LOG_LEVEL: 'trace', MODULE_CONNECT_TIMEOUT_MS: 3000 })

  const { standin } = await foundry(t)

  const seen: string[] = [] // every response: status line, headers, body
  const ciphertexts: string[] = []
  const call = async (opts: InjectOptions) => {
    const res = await app.inject(opts)
    seen.push(`${res.statusCode} ${JSON.stringify(res.headers)} ${res.body}`)
    return res
  }
  const hs = async (key = API_KEY, url = standin.url, username = GM.name) => await call({
    method: 'POST', url: '/session-handshake', headers: { 'x-api-key': key, 'x-foundry-url': url, 'x-username': username }
  })
  const start = async (body: Record<string, unknown>, key = API_KEY) => await call({
    method: 'POST', url: '/start-session', headers: { 'x-api-key': key, 'content-type': 'application/json' }, payload: body
  })
  const encrypt = (h: { publicKey: string, nonce: string }, password: string, extra: Record<string, string> = {}) => {
    const c = encryptNode(h.publicKey, { password, nonce: h.nonce, ...extra })
    ciphertexts.push(c)
    return c
  }

  // A session started (with admin password and connection token along), listed, ended.
  const h1 = (await hs()).json()
  const ok = await start({ handshakeToken: h1.token, encryptedPassword: encrypt(h1, GM.password, { adminPassword: ADMIN_PASSWORD, connectionToken: CONNECTION_TOKEN }) })
  t.equal(ok.statusCode, 200, ok.body)
  await call({ method: 'GET', url: '/session', headers: { 'x-api-key': API_KEY } })
  await call({ method: 'GET', url: '/health' })
  if (ok.statusCode === 200) await call({ method: 'DELETE', url: `/end-session?sessionId=${ok.json().sessionId as string}`, headers: { 'x-api-key': API_KEY } })

  // Login failures: a wrong password, a player.
  const h2 = (await hs()).json()
  t.equal((await start({ handshakeToken: h2.token, encryptedPassword: encrypt(h2, WRONG_PASSWORD) })).statusCode, 422)
  const h3 = (await hs(API_KEY, standin.url, PLAYER.name)).json()
  t.equal((await start({ handshakeToken: h3.token, encryptedPassword: encrypt(h3, PLAYER.password) })).statusCode, 409)

  // Refused before any login: another key's token, a replay, a wrong nonce, garbage.
  const h4 = (await hs()).json()
  const c4 = encrypt(h4, GM.password)
  t.equal((await start({ handshakeToken: h4.token, encryptedPassword: c4 }, OTHER_KEY)).statusCode, 401)
  const h5 = (await hs()).json()
  const c5 = encrypt(h5, GM.password)
  t.equal((await start({ handshakeToken: h5.token, encryptedPassword: encryptNode(h5.publicKey, { password: GM.password, nonce: '0'.repeat(32) }) })).statusCode, 401)
  t.equal((await start({ handshakeToken: h5.token, encryptedPassword: c5 })).statusCode, 401, 'replay')
  const h6 = (await hs()).json()
  t.equal((await start({ handshakeToken: h6.token, encryptedPassword: 'AAAA' + c5.slice(4) })).statusCode, 400)
  t.equal((await start({ handshakeToken: h6.token, encryptedPassword: GM.password })).statusCode, 401)

  // Refused keys and URLs.
  t.equal((await call({ method: 'GET', url: '/session', headers: { 'x-api-key': REJECTED_KEY } })).statusCode, 401)
  t.equal((await hs(REJECTED_KEY)).statusCode, 401)
  t.equal((await hs(API_KEY, `http://admin:${URL_PASSWORD}@127.0.0.1:30000/`)).statusCode, 400)
  t.equal((await call({ method: 'POST', url: '/start-session', headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, payload: `{"handshakeToken":"x","encryptedPassword":"${GM.password}"` })).statusCode, 400)

  t.ok(privateKeys.length > 0, `captured ${privateKeys.length} private keys`)
  const log = logs()
  // The scan means something only if the log saw the requests and the logins.
  t.ok(log.length > 5_000, `the log has ${log.length} characters`)
  t.match(log, /"path":"\/start-session","status":200/, 'access lines are in it')
  t.match(log, /"path":"\/session-handshake","status":401/, 'refused requests too')
  const everything = log + '\n' + seen.join('\n')

  const secrets: Record<string, string> = {
    'GM password': GM.password,
    'player password': PLAYER.password,
    'wrong password': WRONG_PASSWORD,
    'admin password': ADMIN_PASSWORD,
    'connection token': CONNECTION_TOKEN,
    'API key': API_KEY,
    'other API key': OTHER_KEY,
    'rejected API key': REJECTED_KEY,
    'URL password': URL_PASSWORD
  }
  ciphertexts.forEach((c, i) => { secrets[`encryptedPassword ${i}`] = c.slice(0, 40) })
  privateKeys.forEach((k, i) => {
    const pem = k.export({ type: 'pkcs8', format: 'pem' }).toString()
    const der = k.export({ type: 'pkcs8', format: 'der' })
    secrets[`private key ${i} (PEM line)`] = pem.split('\n')[5]
    secrets[`private key ${i} (base64 DER)`] = der.toString('base64').slice(200, 260)
    secrets[`private key ${i} (base64url DER)`] = der.toString('base64url').slice(200, 260)
    secrets[`private key ${i} (hex DER)`] = der.toString('hex').slice(400, 480)
    const jwk = k.export({ format: 'jwk' })
    secrets[`private key ${i} (JWK d)`] = String(jwk.d).slice(0, 40)
  })
  for (const [what, secret] of Object.entries(secrets)) {
    t.notOk(everything.includes(secret), `${what} appears nowhere`)
  }
  t.notMatch(everything, /PRIVATE KEY/, 'no private key PEM header')
})

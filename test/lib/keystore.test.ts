import t, { type Test } from 'tap'
import { createKeystore } from '../../lib/handshake/keystore.ts'
import { createKeyPairPool } from '../../lib/handshake/key-pairs.ts'
import { encryptNode, encryptWebCrypto } from '../helper.ts'

const owner = 'a'.repeat(64)
const input = { ownerId: owner, foundryUrl: 'http://127.0.0.1:30000/', username: 'Gamemaster' }

async function store (t: Test, opts: Partial<Parameters<typeof createKeystore>[0]> = {}) {
  const ks = createKeystore({ ttlMs: 300_000, maxHandshakes: 100, rotateMs: 60_000, ...opts })
  t.teardown(() => ks.close())
  await ks.ready()
  return ks
}

t.test('SHA-1 from Node, SHA-1 from WebCrypto and SHA-256 all decrypt', async (t) => {
  const ks = await store(t)
  const cases: Array<[string, (pub: string, p: unknown) => Promise<string> | string, string]> = [
    ['node sha1', (pub, p) => encryptNode(pub, p), 'sha1'],
    ['webcrypto sha1', (pub, p) => encryptWebCrypto(pub, p, 'SHA-1'), 'sha1'],
    ['node sha256', (pub, p) => encryptNode(pub, p, 'sha256'), 'sha256'],
    ['webcrypto sha256', (pub, p) => encryptWebCrypto(pub, p, 'SHA-256'), 'sha256']
  ]
  for (const [name, enc, hash] of cases) {
    const h = ks.create(input)
    const ct = await enc(h.publicKey, { password: `pw ${name} ✓`, nonce: h.nonce })
    const { credentials, handshake } = ks.consume(h.token, owner, { password: ct })
    t.equal(credentials.password, `pw ${name} ✓`, name)
    t.equal(credentials.oaepHash, hash, `${name} hash`)
    t.equal(handshake.username, 'Gamemaster')
  }
})

t.test('empty passwords are legal', async (t) => {
  const ks = await store(t)
  const h = ks.create(input)
  t.equal(ks.consume(h.token, owner, { password: encryptNode(h.publicKey, { password: '', nonce: h.nonce }) }).credentials.password, '')
})

t.test('tokens are single use, even after a failure', async (t) => {
  const ks = await store(t)
  const h = ks.create(input)
  t.throws(() => ks.consume(h.token, owner, { password: encryptNode(h.publicKey, { password: 'x', nonce: 'wrong' }) }), { code: 'NONCE_MISMATCH' })
  t.throws(() => ks.consume(h.token, owner, { password: encryptNode(h.publicKey, { password: 'x', nonce: h.nonce }) }), { code: 'HANDSHAKE_NOT_FOUND' })
  const h2 = ks.create(input)
  ks.consume(h2.token, owner, { password: encryptNode(h2.publicKey, { password: 'x', nonce: h2.nonce }) })
  t.throws(() => ks.consume(h2.token, owner, { password: encryptNode(h2.publicKey, { password: 'x', nonce: h2.nonce }) }), { code: 'HANDSHAKE_NOT_FOUND' })
})

t.test("another owner's token is not found and stays usable by its owner", async (t) => {
  const ks = await store(t)
  const h = ks.create(input)
  const ct = encryptNode(h.publicKey, { password: 'x', nonce: h.nonce })
  t.throws(() => ks.consume(h.token, 'b'.repeat(64), { password: ct }), { code: 'HANDSHAKE_NOT_FOUND' })
  t.equal(ks.consume(h.token, owner, { password: ct }).credentials.password, 'x')
})

t.test('expired handshakes are refused and swept', async (t) => {
  let now = 1_000_000
  const ks = await store(t, { ttlMs: 1000, now: () => now, sweepMs: 10 })
  const h = ks.create(input)
  const h2 = ks.create(input)
  now += 1001
  t.throws(() => ks.consume(h.token, owner, { password: encryptNode(h.publicKey, { password: 'x', nonce: h.nonce }) }), { code: 'HANDSHAKE_EXPIRED' })
  for (let i = 0; i < 200 && ks.size() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(ks.size(), 0, 'the sweeper removed the other expired handshake')
  t.throws(() => ks.consume(h2.token, owner, { password: 'AAAA' }), { code: 'HANDSHAKE_NOT_FOUND' })
})

t.test('malformed ciphertexts are 400s with a reason', async (t) => {
  const ks = await store(t)
  const bad: Array<[string, (h: { publicKey: string, nonce: string }) => string]> = [
    ['not base64', () => '%%%not-base64%%%'],
    ['random bytes', () => Buffer.alloc(256, 7).toString('base64')],
    ['short', () => 'AAAA'],
    ['not JSON', (h) => encryptNode(h.publicKey, 'just a string')],
    ['no password', (h) => encryptNode(h.publicKey, { nonce: h.nonce })],
    ['password not a string', (h) => encryptNode(h.publicKey, { password: 42, nonce: h.nonce })]
  ]
  for (const [name, make] of bad) {
    const h = ks.create(input)
    t.throws(() => ks.consume(h.token, owner, { password: make(h) }), { code: 'INVALID_ENCRYPTED_PASSWORD', statusCode: 400 }, name)
  }
})

t.test('the store is bounded', async (t) => {
  const ks = await store(t, { maxHandshakes: 3 })
  ks.create(input); ks.create(input); ks.create(input)
  t.throws(() => ks.create(input), { code: 'HANDSHAKE_STORE_FULL', statusCode: 429 })
})

t.test('no key pair is generated on the request path; keys rotate to a pre-generated one', async (t) => {
  let now = 0
  const ks = await store(t, { rotateMs: 1000, now: () => now })
  t.equal(ks.keyGenerations(), 1, 'ready with one key pair; no spare before a handshake needs one')
  const first = ks.create(input)
  // The first handshake started the spare; let it finish.
  for (let i = 0; i < 200 && ks.keyGenerations() < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(ks.keyGenerations(), 2, 'the current key and one spare')
  const before = ks.keyGenerations()
  for (let i = 0; i < 50; i++) ks.create(input)
  t.equal(ks.keyGenerations(), before, 'creating handshakes generated no key')
  now += 1000
  const rotated = ks.create(input)
  t.not(rotated.publicKey, first.publicKey, 'the spare key took over')
  // The old key still decrypts for the handshakes it served.
  t.equal(ks.consume(first.token, owner, { password: encryptNode(first.publicKey, { password: 'old', nonce: first.nonce }) }).credentials.password, 'old')
})

t.test('admin password and connection token: inline or in their own ciphertexts', async (t) => {
  const ks = await store(t)
  const h = ks.create(input)
  const inline = ks.consume(h.token, owner, { password: encryptNode(h.publicKey, { password: 'pw', nonce: h.nonce, adminPassword: 'adm', connectionToken: 'tok' }) })
  t.match(inline.credentials, { password: 'pw', adminPassword: 'adm', connectionToken: 'tok' })

  const h2 = ks.create(input)
  const own = ks.consume(h2.token, owner, {
    password: encryptNode(h2.publicKey, { password: 'pw', nonce: h2.nonce }),
    adminPassword: encryptNode(h2.publicKey, { adminPassword: 'a'.repeat(120), nonce: h2.nonce }, 'sha256'),
    connectionToken: encryptNode(h2.publicKey, { connectionToken: 't'.repeat(120), nonce: h2.nonce })
  })
  t.match(own.credentials, { password: 'pw', adminPassword: 'a'.repeat(120), connectionToken: 't'.repeat(120) })

  const h3 = ks.create(input)
  t.throws(() => ks.consume(h3.token, owner, {
    password: encryptNode(h3.publicKey, { password: 'pw', nonce: h3.nonce }),
    adminPassword: encryptNode(h3.publicKey, { adminPassword: 'x', nonce: 'f'.repeat(32) })
  }), { code: 'NONCE_MISMATCH' }, 'each ciphertext must carry the nonce')
  const h4 = ks.create(input)
  t.throws(() => ks.consume(h4.token, owner, {
    password: encryptNode(h4.publicKey, { password: 'pw', nonce: h4.nonce }),
    connectionToken: 'garbage!'
  }), { code: 'INVALID_ENCRYPTED_PASSWORD', message: /encryptedConnectionToken is not base64/ })
})

t.test('key pairs rotate on demand: an idle service generates none', async (t) => {
  // Issue 21: no RSA key pair every KEY_ROTATE_MS while no one asks for a
  // handshake. The clock is injected; the pool has no timer of its own.
  let clock = 1_000_000
  const pool = createKeyPairPool({ rotateMs: 1000, modulusLength: 1024, now: () => clock })
  t.teardown(() => { pool.close() })
  await pool.ready()
  const until = async (n: number): Promise<void> => { while (pool.generations() < n) await new Promise((resolve) => setTimeout(resolve, 10)) }
  // Time enough for a 1024-bit spare, were one started, to be made.
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(pool.generations(), 1, 'ready with one key pair: the spare waits for a first handshake')
  const first = pool.current()
  await until(2)
  t.equal(pool.generations(), 2, 'the current key pair and one spare')
  clock += 60_000
  t.equal(pool.generations(), 2, 'a minute of no handshakes: no key pair made')
  const second = pool.current()
  t.not(second.publicKey, first.publicKey, 'the first handshake after the rotation period takes the spare')
  await until(3)
  t.equal(pool.generations(), 3, 'and only then is the next spare made')
  t.equal(pool.current().publicKey, second.publicKey, 'within the period the key stays')
})

// Sealed credentials: AES-256-GCM, fresh 12-byte IV, full 16-byte tag, the
// session id (and for credentials the owner, Foundry URL and user) as
// additional data; a keyring that rotates.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createSealer, openCredentials, sealCredentials } from '../../lib/fleet/seal.ts'
import { startOptions } from '../../lib/session/types.ts'

const key = randomBytes(32).toString('base64')
const secrets = { password: 'gm-secret-Pa55word!', adminPassword: 'admin-Pw', connectionToken: 'tok-123' }

t.test('round trip, and the sealed text shows no secret', async (t) => {
  const s = createSealer(key)
  const sealed = s.seal('session-1', secrets)
  t.same(s.open('session-1', sealed), secrets)
  for (const v of Object.values(secrets)) {
    t.notOk(sealed.includes(v), 'not in the sealed text')
    t.notOk(sealed.includes(Buffer.from(v).toString('base64')), 'not even as base64')
  }
})

t.test('a fresh IV each time: the same secrets seal differently', async (t) => {
  const s = createSealer(key)
  const a = s.seal('session-1', secrets)
  const b = s.seal('session-1', secrets)
  t.not(a, b)
  t.not(a.split('.')[2], b.split('.')[2], 'different IVs')
})

t.test('opens only for its session, with its key, unchanged', async (t) => {
  const s = createSealer(key)
  const sealed = s.seal('session-1', secrets)
  t.throws(() => s.open('session-2', sealed), 'another session id (additional data) fails')
  t.throws(() => createSealer(randomBytes(32).toString('base64')).open('session-1', sealed), 'another key fails')
  const [v, kid, iv, body, tag] = sealed.split('.')
  const flipped = Buffer.from(body!, 'base64')
  flipped[0] = flipped[0]! ^ 1
  t.throws(() => s.open('session-1', [v, kid, iv, flipped.toString('base64'), tag].join('.')), 'a changed byte fails')
  t.throws(() => s.open('session-1', 'garbage'), 'not a sealed value')
})

t.test('the key must be 32 bytes', async (t) => {
  t.throws(() => createSealer(randomBytes(16).toString('base64')), /32 bytes/)
})

t.test('a session\'s credentials: secrets and login options in one sealed value, back as they went in', async (t) => {
  const s = createSealer(key)
  const options = startOptions({ foundryUrl: 'http://foundry.test/', username: 'Gamemaster', worldName: 'Lost Mine' }, { requireModule: false, noCanvas: true })
  const credentials = { options, secrets: { password: 'pw-Pa55!', adminPassword: 'admin-pw', connectionToken: 'tok-123' } }
  const sealed = sealCredentials(s, 'session-1', credentials)
  for (const secret of ['pw-Pa55!', 'admin-pw', 'tok-123', 'Lost Mine']) t.notOk(sealed.includes(secret), 'nothing readable')
  t.same(openCredentials(s, 'session-1', sealed), credentials)
  t.same(openCredentials(s, 'session-2', sealCredentials(s, 'session-2', { options, secrets: { password: 'x' } })).secrets, { password: 'x' }, 'no admin password or token: none come back')
  t.throws(() => openCredentials(s, 'session-2', sealed), 'another session\'s')
})

t.test('short tags and IVs other than 12 bytes are refused (a truncated tag is a weaker seal)', async (t) => {
  const s = createSealer(key)
  const sealed = s.seal('session-1', secrets)
  const [v, kid, iv, body, tag] = sealed.split('.')
  for (const n of [4, 8, 12, 15]) {
    const short = Buffer.from(tag!, 'base64').subarray(0, n).toString('base64')
    t.throws(() => s.open('session-1', [v, kid, iv, body, short].join('.')), /16-byte tag/, `a ${n}-byte tag`)
  }
  const iv16 = Buffer.concat([Buffer.from(iv!, 'base64'), Buffer.alloc(4)]).toString('base64')
  t.throws(() => s.open('session-1', [v, kid, iv16, body, tag].join('.')), /12-byte IV/, 'a 16-byte IV')
})

t.test('credentials are bound to the owner\'s key hash, the Foundry URL and the user', async (t) => {
  const s = createSealer(key)
  const options = startOptions({ foundryUrl: 'http://foundry.test/game', username: 'Gamemaster' }, {})
  const sealed = sealCredentials(s, 'session-1', { options, secrets: { password: 'pw' } }, 'a'.repeat(64))
  const bind = { ownerId: 'a'.repeat(64), foundryUrl: 'http://foundry.test/game/', username: 'Gamemaster' }
  t.equal(openCredentials(s, 'session-1', sealed, bind).secrets.password, 'pw', 'opens with the record\'s owner, URL and user')
  t.throws(() => openCredentials(s, 'session-1', sealed, { ...bind, ownerId: 'b'.repeat(64) }), 'another key\'s session')
  t.throws(() => openCredentials(s, 'session-1', sealed, { ...bind, foundryUrl: 'http://evil.test/' }), 'another Foundry')
  t.throws(() => openCredentials(s, 'session-1', sealed, { ...bind, username: 'Player' }), 'another user')
  t.throws(() => openCredentials(s, 'session-1', sealed), 'no binding at all')
})

t.test('keyring: the first key seals, every key opens; a machine without the key cannot open', async (t) => {
  const oldKey = randomBytes(32).toString('base64')
  const newKey = randomBytes(32).toString('base64')
  const before = createSealer(`old:${oldKey}`)
  const during = createSealer(`new:${newKey},old:${oldKey}`)
  const after = createSealer(`new:${newKey}`)
  const sealedOld = before.seal('s', secrets)
  t.same(during.open('s', sealedOld), secrets, 'a value sealed with the old key opens while both are in the ring')
  const sealedNew = during.seal('s', secrets)
  t.equal(sealedNew.split('.')[1], 'new', 'the first key seals, and the value names it')
  t.same(after.open('s', sealedNew), secrets, 'and opens once the old key is gone')
  t.throws(() => after.open('s', sealedOld), /not in SESSION_SEAL_KEY/, 'the old key gone: its values do not open')
  t.throws(() => createSealer(`a:${oldKey},a:${newKey}`), /differ/)
  t.throws(() => createSealer(`a:${randomBytes(16).toString('base64')}`), /32 bytes/)
  t.throws(() => createSealer('bad id!:' + oldKey), /key id/)
})

// Sealed credentials: AES-256-GCM, fresh IV, the session id as additional data.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createSealer, openCredentials, sealCredentials } from '../../lib/fleet/seal.js'
import { startOptions } from '../../lib/session/types.js'

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
  t.not(a.split('.')[1], b.split('.')[1], 'different IVs')
})

t.test('opens only for its session, with its key, unchanged', async (t) => {
  const s = createSealer(key)
  const sealed = s.seal('session-1', secrets)
  t.throws(() => s.open('session-2', sealed), 'another session id (additional data) fails')
  t.throws(() => createSealer(randomBytes(32).toString('base64')).open('session-1', sealed), 'another key fails')
  const [v, iv, body, tag] = sealed.split('.')
  const flipped = Buffer.from(body!, 'base64')
  flipped[0] = flipped[0]! ^ 1
  t.throws(() => s.open('session-1', [v, iv, flipped.toString('base64'), tag].join('.')), 'a changed byte fails')
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

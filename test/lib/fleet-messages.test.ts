// Fleet messages: schema, HMAC signature (a key derived from the seal
// keyring), addressee, time and replay; anything else is refused with a
// reason, never thrown.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { isMachineId, messageKeys, signMessage, verifyMessage } from '../../lib/fleet/messages.ts'

const [key, other] = messageKeys([randomBytes(32), randomBytes(32)])
const now = 1_700_000_000_000
const id = '0b7f6c9e-2f55-4a57-9a0e-6c1b0f4d2a11'
const check = (text: unknown, keys = [key!]) => verifyMessage(text, { keys, me: 'm2', now })

t.test('a signed message to this machine passes', async (t) => {
  const text = signMessage(key!, { t: 'offer', id, owner: 'm1', reason: 'why' }, 'm1', 'm2', now)
  t.match(check(text), { ok: true, msg: { t: 'offer', id, owner: 'm1', from: 'm1', to: 'm2', reason: 'why' } })
  t.match(check(text, [other!, key!]), { ok: true }, 'any key of the ring verifies')
})

t.test('garbage is refused, never thrown', async (t) => {
  const garbage: unknown[] = [null, undefined, 42, '', 'null', '42', '"x"', '[]', '{}', '{"t":"offer"}', 'not json {',
    JSON.stringify({ t: 'offer', id, owner: 'm1', from: 'm1' }), JSON.stringify({ t: 'released', id: null }), 'x'.repeat(10_000),
    JSON.stringify({ v: 1, t: 'offer', id, owner: 'm1', from: 'm1', to: 'm2', at: now, mac: 'A'.repeat(43), extra: 1 }),
    JSON.stringify({ v: 1, t: 'claimed', id: '../../x', from: 'm1', to: 'm2', at: now, mac: 'A'.repeat(43) }),
    JSON.stringify({ v: 1, t: 'claimed', id, from: 'm1;instance=evil', to: 'm2', at: now, mac: 'A'.repeat(43) })]
  for (const g of garbage) {
    const v = check(g)
    t.equal(v.ok, false, `${String(g).slice(0, 60)}: ${v.ok ? '' : v.why}`)
  }
})

t.test('valid shapes without a valid signature, or not for this machine, or stale, or replayed', async (t) => {
  const text = signMessage(key!, { t: 'claimed', id }, 'm1', 'm2', now)
  const m = JSON.parse(text) as Record<string, unknown>
  t.match(check(JSON.stringify({ ...m, mac: 'A'.repeat(43) })), { ok: false, why: 'bad signature' })
  t.match(check(JSON.stringify({ ...m, t: 'declined' })), { ok: false, why: 'bad signature' }, 'a changed field')
  t.match(check(JSON.stringify({ ...m, from: 'm3' })), { ok: false, why: 'bad signature' }, 'another sender')
  t.match(check(text, [other!]), { ok: false, why: 'bad signature' }, 'another keyring')
  t.match(check(text, []), { ok: false }, 'no keys: nothing is accepted')
  t.match(check(signMessage(key!, { t: 'claimed', id }, 'm1', 'm3', now)), { ok: false, why: /addressed to machine m3/ })
  t.match(check(signMessage(key!, { t: 'claimed', id }, 'm1', 'm2', now - 60_000)), { ok: false, why: /too old/ })
  const seen = new Map<string, number>()
  t.match(verifyMessage(text, { keys: [key!], me: 'm2', now, seen }), { ok: true })
  t.match(verifyMessage(text, { keys: [key!], me: 'm2', now, seen }), { ok: false, why: /replayed/ })
})

t.test('machine ids', async (t) => {
  for (const ok of ['m1', '3d8d9b5c271e89', 'a.b-c_d']) t.ok(isMachineId(ok), ok)
  for (const bad of ['', 'a;b', 'a b', 'a,elsewhere=true', 'x'.repeat(65), 'é', null, 3]) t.notOk(isMachineId(bad), String(bad))
})

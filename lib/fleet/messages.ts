// Fleet messages (Redis pub/sub, fs:fleet:<machine>) as data: one TypeBox
// schema, HMAC-SHA256 signatures with a key derived from SESSION_SEAL_KEY
// (HKDF, one per key of the keyring: the first signs, any verifies), the
// sender, the addressee and the time inside what is signed. Anything that is
// not JSON, does not match the schema, is not signed by a key of the ring,
// is addressed to another machine, is too old or from the future, or was
// seen before, is refused with a reason — never thrown. Pure: no Redis here.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

/** What `fly-replay: instance=` and the machine registry accept as a machine id (INSTANCE_ID's pattern). */
export const MACHINE_ID = /^[A-Za-z0-9_.-]{1,64}$/
export const isMachineId = (v: unknown): v is string => typeof v === 'string' && MACHINE_ID.test(v)

const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$' })
const Base = {
  v: Type.Literal(1),
  id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9-]+$' }),
  from: Id,
  to: Id,
  at: Type.Integer({ minimum: 0 }),
  mac: Type.String({ minLength: 43, maxLength: 43, pattern: '^[A-Za-z0-9_-]+$' })
}
export const FleetMessage = Type.Union([
  Type.Object({ ...Base, t: Type.Literal('offer'), owner: Id, reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false }),
  Type.Object({ ...Base, t: Type.Union([Type.Literal('claimed'), Type.Literal('declined'), Type.Literal('released')]) }, { additionalProperties: false })
])
export type FleetMessage = Static<typeof FleetMessage>
/** A message as a sender writes it (signed on the way out). */
export type Unsigned = { t: 'offer', id: string, owner: string, reason?: string } | { t: 'claimed' | 'declined' | 'released', id: string }

/** How old (or how far ahead) a message may be. */
export const MAX_SKEW_MS = 30_000

/** One message key per seal key, derived (HKDF-SHA256): a fleet message key opens no seal. */
export function messageKeys (sealKeys: Buffer[]): Buffer[] {
  return sealKeys.map((k) => Buffer.from(hkdfSync('sha256', k, Buffer.alloc(0), 'foundry-sessions fleet messages v1', 32)))
}

/** The signed text: every field but the mac, in a fixed order. */
function signed (m: Omit<FleetMessage, 'mac'>): string {
  return JSON.stringify([m.v, m.t, m.id, m.from, m.to, m.at, 'owner' in m ? m.owner : null, 'reason' in m ? m.reason ?? null : null])
}

const mac = (key: Buffer, text: string): string => createHmac('sha256', key).update(text).digest('base64url')

export function signMessage (key: Buffer, msg: Unsigned, from: string, to: string, at: number): string {
  const m = { v: 1 as const, ...msg, from, to, at }
  return JSON.stringify({ ...m, mac: mac(key, signed(m as Omit<FleetMessage, 'mac'>)) })
}

export type Verdict = { ok: true, msg: FleetMessage } | { ok: false, why: string }

export interface VerifyOptions {
  keys: Buffer[]
  /** This machine: messages to another are refused. */
  me: string
  now: number
  /** MACs seen lately (a replayed message is refused); the verifier adds and prunes. */
  seen?: Map<string, number>
}

/** Parse, check against the schema and verify a message; never throws. */
export function verifyMessage (text: unknown, o: VerifyOptions): Verdict {
  if (typeof text !== 'string') return { ok: false, why: 'not text' }
  if (text.length > 4096) return { ok: false, why: 'too long' }
  let data: unknown
  try { data = JSON.parse(text) } catch { return { ok: false, why: 'not JSON' } }
  if (!Value.Check(FleetMessage, data)) return { ok: false, why: 'not a fleet message (schema)' }
  const m = data
  if (o.keys.length === 0) return { ok: false, why: 'no SESSION_SEAL_KEY here: fleet messages cannot be verified' }
  const given = Buffer.from(m.mac, 'base64url')
  const text2 = signed(m)
  if (!o.keys.some((k) => { const want = Buffer.from(mac(k, text2), 'base64url'); return want.length === given.length && timingSafeEqual(want, given) })) {
    return { ok: false, why: 'bad signature' }
  }
  if (m.to !== o.me) return { ok: false, why: `addressed to machine ${m.to}` }
  if (m.from === o.me) return { ok: false, why: 'from this machine' }
  if (Math.abs(o.now - m.at) > MAX_SKEW_MS) return { ok: false, why: 'too old or from the future' }
  if (o.seen !== undefined) {
    for (const [k, until] of o.seen) if (until < o.now) o.seen.delete(k)
    if (o.seen.has(m.mac)) return { ok: false, why: 'seen before (replayed)' }
    o.seen.set(m.mac, o.now + 2 * MAX_SKEW_MS)
  }
  return { ok: true, msg: m }
}

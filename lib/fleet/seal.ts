// Sealed credentials for the fleet registry (SESSION_SEAL_KEY): AES-256-GCM
// with a fresh 96-bit IV per seal and a full 128-bit tag (anything shorter is
// refused), and as additional data the session id and whatever else the
// caller binds (for credentials: the owner's key hash, the Foundry URL and
// the user), so a sealed value only opens for what it was sealed for, and
// any change to it is detected.
//
// SESSION_SEAL_KEY is one key (base64 of 32 bytes) or a keyring
// `id:key,id:key`: the first key seals, every key opens (the sealed value
// names its key), so keys rotate without losing sessions: add the new key
// last everywhere, then first, then drop the old one. The keys are a secret
// shared by every machine; Redis holds only what seal() returns.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { foundryBase } from '../foundry/names.ts'
import type { Credentials } from '../session/types.ts'

export interface Sealer {
  seal: (sessionId: string, secrets: Record<string, string>, bind?: string[]) => string
  /** The secrets, or throws when the value was not sealed for this session (and binding) with a key of the ring, or was changed. */
  open: (sessionId: string, sealed: string, bind?: string[]) => Record<string, string>
  /** Every key of the ring, the sealing one first (fleet message keys derive from them). */
  keys: () => Buffer[]
}

const VERSION = 'v2'
const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/
const B64_KEY = /^[A-Za-z0-9+/]{43}=$/

/** SESSION_SEAL_KEY as a keyring: `key` (id "0") or `id:key,id:key`; throws with the reason. */
export function parseKeyring (value: string): Array<{ id: string, key: Buffer }> {
  const parts = value.split(',').map((p) => p.trim()).filter((p) => p !== '')
  if (parts.length === 0) throw new Error('SESSION_SEAL_KEY is empty')
  const ring = parts.map((part, i) => {
    const colon = part.indexOf(':')
    const id = colon < 0 ? String(i) : part.slice(0, colon)
    const b64 = colon < 0 ? part : part.slice(colon + 1)
    if (!KEY_ID.test(id)) throw new Error('SESSION_SEAL_KEY: a key id is 1 to 32 letters, digits, _ or -')
    if (!B64_KEY.test(b64)) throw new Error('SESSION_SEAL_KEY must be the base64 of 32 bytes (openssl rand -base64 32), or id:key pairs of them separated by commas')
    return { id, key: Buffer.from(b64, 'base64') }
  })
  if (new Set(ring.map((k) => k.id)).size !== ring.length) throw new Error('SESSION_SEAL_KEY: key ids must differ')
  return ring
}

const aad = (sessionId: string, bind: string[]): Buffer => Buffer.from(JSON.stringify([sessionId, ...bind]), 'utf8')

export function createSealer (keyring: string): Sealer {
  const ring = parseKeyring(keyring)
  const first = ring[0]!
  return {
    seal (sessionId, secrets, bind = []) {
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', first.key, iv, { authTagLength: TAG_BYTES })
      cipher.setAAD(aad(sessionId, bind))
      const plain = Buffer.from(JSON.stringify(secrets), 'utf8')
      const body = Buffer.concat([cipher.update(plain), cipher.final()])
      plain.fill(0)
      return [VERSION, first.id, iv.toString('base64'), body.toString('base64'), cipher.getAuthTag().toString('base64')].join('.')
    },
    open (sessionId, sealed, bind = []) {
      const [version, kid, ivB64, body, tagB64, extra] = sealed.split('.')
      if (version !== VERSION || kid === undefined || ivB64 === undefined || body === undefined || tagB64 === undefined || extra !== undefined) throw new Error('not a sealed value')
      const k = ring.find((r) => r.id === kid)
      if (k === undefined) throw new Error(`sealed with key "${kid}", which is not in SESSION_SEAL_KEY here`)
      const iv = Buffer.from(ivB64, 'base64')
      const tag = Buffer.from(tagB64, 'base64')
      if (iv.length !== IV_BYTES) throw new Error('a sealed value needs a 12-byte IV')
      if (tag.length !== TAG_BYTES) throw new Error('a sealed value needs a 16-byte tag')
      const decipher = createDecipheriv('aes-256-gcm', k.key, iv, { authTagLength: TAG_BYTES })
      decipher.setAAD(aad(sessionId, bind))
      decipher.setAuthTag(tag)
      const plain = Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()])
      try {
        return JSON.parse(plain.toString('utf8')) as Record<string, string>
      } finally {
        plain.fill(0)
      }
    },
    keys: () => ring.map((r) => r.key)
  }
}

/** What a session's credentials are bound to besides its id: the owner's key hash, the Foundry URL and the user. */
export interface SealBinding { ownerId: string, foundryUrl: string, username: string }

const bound = (b: SealBinding | undefined): string[] => b === undefined ? [] : [b.ownerId, foundryBase(b.foundryUrl).href, b.username]

/** A session's credentials as one sealed value (secrets and login options), for the fleet registry; ownerId binds it to its key. */
export function sealCredentials (sealer: Sealer, sessionId: string, c: Credentials, ownerId?: string): string {
  const fields: Record<string, string> = { password: c.secrets.password, options: JSON.stringify(c.options) }
  if (c.secrets.adminPassword !== undefined && c.secrets.adminPassword !== '') fields.adminPassword = c.secrets.adminPassword
  if (c.secrets.connectionToken !== undefined && c.secrets.connectionToken !== '') fields.connectionToken = c.secrets.connectionToken
  if (c.secrets.webhookUrl !== undefined && c.secrets.webhookUrl !== '') fields.webhookUrl = c.secrets.webhookUrl
  if (c.secrets.webhookSecret !== undefined && c.secrets.webhookSecret !== '') fields.webhookSecret = c.secrets.webhookSecret
  const bind = ownerId === undefined ? undefined : { ownerId, foundryUrl: c.options.foundryUrl, username: c.options.username }
  return sealer.seal(sessionId, fields, bound(bind))
}

/** The credentials sealCredentials kept, or throws (another key, another session or binding, changed). bind: the session record's. */
export function openCredentials (sealer: Sealer, sessionId: string, sealed: string, bind?: SealBinding): Credentials {
  const f = sealer.open(sessionId, sealed, bound(bind))
  if (typeof f.password !== 'string' || typeof f.options !== 'string') throw new Error('sealed credentials without a password or options')
  return {
    options: JSON.parse(f.options) as Credentials['options'],
    secrets: {
      password: f.password,
      ...(f.adminPassword !== undefined ? { adminPassword: f.adminPassword } : {}),
      ...(f.connectionToken !== undefined ? { connectionToken: f.connectionToken } : {}),
      ...(f.webhookUrl !== undefined ? { webhookUrl: f.webhookUrl } : {}),
      ...(f.webhookSecret !== undefined ? { webhookSecret: f.webhookSecret } : {})
    }
  }
}

// The handshake store: single-use tokens with their nonce, owner, target and
// expiry, capped in total and per owner, swept when expired; and opening the
// client's ciphertexts (password and optional secrets) with the handshake's
// private key and nonce. The key pairs come from key-pairs.ts.
import { randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto'
import {
  HandshakeExpired, HandshakeNotFound, HandshakeOwnerFull, HandshakeStoreFull, InvalidEncryptedPassword, NonceMismatch,
  withContext
} from '../errors.ts'
import { createKeyPairPool, decryptOaep } from './key-pairs.ts'

export interface HandshakeInput {
  ownerId: string
  foundryUrl: string
  username: string
  worldName?: string
}

export interface Handshake extends HandshakeInput {
  token: string
  nonce: string
  publicKey: string
  /** The public key as a JSON string literal, serialised once per key pair. */
  publicKeyJson: string
  createdAt: number
  expires: number
}

interface StoredHandshake extends Handshake {
  privateKey: KeyObject
}

/** Base64 RSA-OAEP ciphertexts from the client. */
export interface EncryptedSecrets {
  password: string
  adminPassword?: string
  connectionToken?: string
  webhookUrl?: string
  webhookSecret?: string
}

export interface Credentials {
  password: string
  /** Foundry's administrator password, when the client sent one. */
  adminPassword?: string
  /** Module 3.x connection token, when the client sent one. */
  connectionToken?: string
  /** Where the session's webhooks go, when the client sent one. */
  webhookUrl?: string
  /** The webhooks' signing secret, when the client sent one. */
  webhookSecret?: string
  /** Hash the client used for OAEP. */
  oaepHash: 'sha1' | 'sha256'
}

export interface KeystoreOptions {
  ttlMs: number
  maxHandshakes: number
  /** Most unexpired handshakes of one owner (default: maxHandshakes). */
  maxHandshakesPerOwner?: number
  rotateMs: number
  modulusLength?: number
  sweepMs?: number
  now?: () => number
}

export interface Keystore {
  /** Resolves once the first key pair exists. */
  ready: () => Promise<void>
  create: (input: HandshakeInput) => Handshake
  /**
   * Take a handshake (single use) and decrypt its password. A token that
   * belongs to another owner is reported as not found and left untouched.
   */
  consume: (token: string, ownerId: string, encrypted: EncryptedSecrets) => { handshake: Handshake, credentials: Credentials }
  /** Whether this process holds the (unexpired or not) handshake: its private key is here. */
  has: (token: string) => boolean
  /** Open handshakes, for tests and metrics. */
  size: () => number
  keyGenerations: () => number
  close: () => void
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/

export function createKeystore (opts: KeystoreOptions): Keystore {
  const now = opts.now ?? Date.now
  const keys = createKeyPairPool({ rotateMs: opts.rotateMs, modulusLength: opts.modulusLength, now })
  const handshakes = new Map<string, StoredHandshake>()
  const perOwner = new Map<string, number>()
  const maxPerOwner = opts.maxHandshakesPerOwner ?? opts.maxHandshakes
  let closed = false

  function remove (token: string): void {
    const h = handshakes.get(token)
    if (h === undefined) return
    handshakes.delete(token)
    const n = (perOwner.get(h.ownerId) ?? 1) - 1
    if (n <= 0) perOwner.delete(h.ownerId)
    else perOwner.set(h.ownerId, n)
  }

  function sweep (): void {
    const t = now()
    for (const [token, h] of handshakes) if (h.expires <= t) remove(token)
  }

  /** Seconds until the oldest handshake (of this owner, if given) expires. */
  function retryAfter (ownerId?: string): number {
    const t = now()
    for (const h of handshakes.values()) {
      if (ownerId === undefined || h.ownerId === ownerId) return Math.max(1, Math.ceil((h.expires - t) / 1000))
    }
    return 1
  }

  const timer = setTimeout(function tick () {
    sweep()
    if (!closed) timer.refresh()
  }, opts.sweepMs ?? 30_000)
  timer.unref()

  return {
    ready: keys.ready,

    create (input) {
      const t = now()
      if (handshakes.size >= opts.maxHandshakes || (perOwner.get(input.ownerId) ?? 0) >= maxPerOwner) {
        sweep()
        if (handshakes.size >= opts.maxHandshakes) {
          throw withContext(new HandshakeStoreFull(), { retryAfter: retryAfter() })
        }
        if ((perOwner.get(input.ownerId) ?? 0) >= maxPerOwner) {
          throw withContext(new HandshakeOwnerFull(`This API key has ${maxPerOwner} open handshakes, its maximum: use them or let them expire, then retry`), { retryAfter: retryAfter(input.ownerId) })
        }
      }
      const key = keys.current()
      // Fields spelt out: an object spread here cost ~15 µs a handshake (profiled).
      const h: StoredHandshake = {
        ownerId: input.ownerId,
        foundryUrl: input.foundryUrl,
        username: input.username,
        worldName: input.worldName,
        token: random.hex(32),
        nonce: random.hex(16),
        publicKey: key.publicKey,
        publicKeyJson: key.publicKeyJson,
        privateKey: key.privateKey,
        createdAt: t,
        expires: t + opts.ttlMs
      }
      // worldName stays (undefined) on the stored one: a delete would turn it
      // into a slow dictionary object; publicPart leaves it out.
      handshakes.set(h.token, h)
      perOwner.set(h.ownerId, (perOwner.get(h.ownerId) ?? 0) + 1)
      return publicPart(h)
    },

    consume (token, ownerId, encrypted) {
      const h = handshakes.get(token)
      if (h === undefined || h.ownerId !== ownerId) throw new HandshakeNotFound()
      // Single use from here on, whatever happens next.
      remove(token)
      if (h.expires <= now()) throw new HandshakeExpired()

      const main = open(h, 'encryptedPassword', 'password', encrypted.password)
      const credentials: Credentials = { password: main.value, oaepHash: main.oaepHash }
      // Optional secrets: in the same JSON as the password, or each in its
      // own ciphertext {"<name>": "…", "nonce": "…"} (more room than 214 bytes).
      for (const [name, field] of [
        ['adminPassword', 'encryptedAdminPassword'], ['connectionToken', 'encryptedConnectionToken'],
        ['webhookUrl', 'encryptedWebhookUrl'], ['webhookSecret', 'encryptedWebhookSecret']
      ] as const) {
        const inline = main.parsed[name]
        if (typeof inline === 'string' && inline !== '') credentials[name] = inline
        const own = encrypted[name]
        if (own !== undefined && own !== '') credentials[name] = open(h, field, name, own).value
      }
      return { handshake: publicPart(h), credentials }
    },

    has: (token) => handshakes.has(token),
    size: () => handshakes.size,
    keyGenerations: keys.generations,

    close () {
      closed = true
      clearTimeout(timer)
      handshakes.clear()
      perOwner.clear()
      keys.close()
    }
  }
}

/** A stored handshake without its private key. */
function publicPart (h: StoredHandshake): Handshake {
  const pub: Handshake = {
    ownerId: h.ownerId,
    foundryUrl: h.foundryUrl,
    username: h.username,
    token: h.token,
    nonce: h.nonce,
    publicKey: h.publicKey,
    publicKeyJson: h.publicKeyJson,
    createdAt: h.createdAt,
    expires: h.expires
  }
  if (h.worldName !== undefined) pub.worldName = h.worldName
  return pub
}

/** Decrypt one field's ciphertext: JSON {"<name>": string, "nonce": the handshake's}. */
function open (h: StoredHandshake, field: string, name: string, ciphertext: string): { value: string, oaepHash: 'sha1' | 'sha256', parsed: Record<string, unknown> } {
  const b64 = ciphertext.replace(/\s+/g, '')
  if (!B64.test(b64)) {
    throw new InvalidEncryptedPassword(`${field} is not base64: send base64(RSA-OAEP(publicKey, JSON {"${name}", "nonce"}))`)
  }
  const decrypted = decryptOaep(h.privateKey, Buffer.from(b64, 'base64'))
  if (decrypted === undefined) {
    throw new InvalidEncryptedPassword(`${field} could not be decrypted: encrypt with RSA-OAEP (SHA-1 or SHA-256) and the publicKey of this handshake`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(decrypted.plain.toString('utf8'))
  } catch {
    parsed = undefined
  } finally {
    decrypted.plain.fill(0)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) ||
      typeof (parsed as Record<string, unknown>)[name] !== 'string') {
    throw new InvalidEncryptedPassword(`The decrypted ${field} is not the JSON object {"${name}": "…", "nonce": "…"}`)
  }
  const p = parsed as Record<string, unknown>
  if (typeof p.nonce !== 'string' || !sameString(p.nonce, h.nonce)) throw new NonceMismatch()
  return { value: p[name] as string, oaepHash: decrypted.oaepHash, parsed: p }
}

/**
 * CSPRNG bytes drawn from a refilled pool: one randomBytes call serves 128
 * handshakes (a synchronous call per token and nonce showed in profiles).
 */
const random = {
  pool: Buffer.alloc(0),
  offset: 0,
  /** n bytes as hex, read straight from the pool (no Buffer view made). */
  hex (n: number): string {
    if (this.offset + n > this.pool.length) {
      this.pool = randomBytes(48 * 128)
      this.offset = 0
    }
    const out = this.pool.toString('hex', this.offset, this.offset + n)
    this.offset += n
    return out
  }
}

function sameString (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

// Handshakes and the RSA keys behind them. No key pair is generated on the
// request path: one key pair serves new handshakes for `rotateMs`, while the
// next is generated in libuv's thread pool. Private keys are KeyObjects that
// never leave this process's memory.
import {
  constants, generateKeyPair, privateDecrypt, randomBytes, timingSafeEqual,
  type KeyObject
} from 'node:crypto'
import { promisify } from 'node:util'
import {
  HandshakeExpired, HandshakeNotFound, HandshakeStoreFull, InvalidEncryptedPassword, NonceMismatch
} from './errors.js'

const generate = promisify(generateKeyPair)

interface KeyPair {
  publicKey: string // SPKI PEM
  privateKey: KeyObject
  createdAt: number
}

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
  createdAt: number
  expires: number
}

interface StoredHandshake extends Handshake {
  privateKey: KeyObject
}

export interface Credentials {
  password: string
  /** Hash the client used for OAEP. */
  oaepHash: 'sha1' | 'sha256'
}

export interface KeystoreOptions {
  ttlMs: number
  maxHandshakes: number
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
  consume: (token: string, ownerId: string, encryptedPassword: string) => { handshake: Handshake, credentials: Credentials }
  /** Open handshakes, for tests and metrics. */
  size: () => number
  keyGenerations: () => number
  close: () => void
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/

export function createKeystore (opts: KeystoreOptions): Keystore {
  const now = opts.now ?? Date.now
  const modulusLength = opts.modulusLength ?? 2048
  const handshakes = new Map<string, StoredHandshake>()
  let current: KeyPair | undefined
  let next: KeyPair | undefined
  let generating: Promise<void> | undefined
  let generations = 0
  let closed = false

  async function makeKeyPair (): Promise<KeyPair> {
    const { publicKey, privateKey } = await generate('rsa', { modulusLength })
    generations++
    return { publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey, createdAt: now() }
  }

  function refill (): Promise<void> {
    if (generating !== undefined || closed) return generating ?? Promise.resolve()
    generating = makeKeyPair().then((pair) => {
      if (current === undefined) current = pair
      else next = pair
    }).finally(() => {
      generating = undefined
      // Keep one spare ready behind the current key.
      if (!closed && (current === undefined || next === undefined)) void refill()
    })
    return generating
  }

  function currentKey (): KeyPair {
    if (current === undefined) throw new Error('keystore used before ready()')
    if (next !== undefined && now() - current.createdAt >= opts.rotateMs) {
      current = { ...next, createdAt: now() }
      next = undefined
      void refill()
    }
    return current
  }

  function sweep (): void {
    const t = now()
    for (const [token, h] of handshakes) if (h.expires <= t) handshakes.delete(token)
  }

  const timer = setTimeout(function tick () {
    sweep()
    if (!closed) timer.refresh()
  }, opts.sweepMs ?? 30_000)
  timer.unref()

  function decrypt (privateKey: KeyObject, ciphertext: Buffer): { plain: Buffer, oaepHash: 'sha1' | 'sha256' } | undefined {
    // The existing clients use SHA-1 (Node's and WebCrypto's RSA-OAEP with
    // SHA-1); the Go relay's use SHA-256. A wrong hash never decodes.
    for (const oaepHash of ['sha1', 'sha256'] as const) {
      try {
        const plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, ciphertext)
        return { plain, oaepHash }
      } catch {}
    }
    return undefined
  }

  return {
    async ready () {
      while (current === undefined) await refill()
    },

    create (input) {
      const t = now()
      if (handshakes.size >= opts.maxHandshakes) {
        sweep()
        if (handshakes.size >= opts.maxHandshakes) throw new HandshakeStoreFull()
      }
      const key = currentKey()
      const h: StoredHandshake = {
        ...input,
        token: randomBytes(32).toString('hex'),
        nonce: randomBytes(16).toString('hex'),
        publicKey: key.publicKey,
        privateKey: key.privateKey,
        createdAt: t,
        expires: t + opts.ttlMs
      }
      handshakes.set(h.token, h)
      const { privateKey: _, ...pub } = h
      return pub
    },

    consume (token, ownerId, encryptedPassword) {
      const h = handshakes.get(token)
      if (h === undefined || h.ownerId !== ownerId) throw new HandshakeNotFound()
      // Single use from here on, whatever happens next.
      handshakes.delete(token)
      if (h.expires <= now()) throw new HandshakeExpired()

      const b64 = encryptedPassword.replace(/\s+/g, '')
      if (!B64.test(b64)) {
        throw new InvalidEncryptedPassword('encryptedPassword is not base64: send base64(RSA-OAEP(publicKey, JSON {password, nonce}))')
      }
      const decrypted = decrypt(h.privateKey, Buffer.from(b64, 'base64'))
      if (decrypted === undefined) {
        throw new InvalidEncryptedPassword('encryptedPassword could not be decrypted: encrypt with RSA-OAEP (SHA-1 or SHA-256) and the publicKey of this handshake')
      }
      let parsed: unknown
      try {
        parsed = JSON.parse(decrypted.plain.toString('utf8'))
      } catch {
        parsed = undefined
      } finally {
        decrypted.plain.fill(0)
      }
      if (typeof parsed !== 'object' || parsed === null ||
          typeof (parsed as { password?: unknown }).password !== 'string') {
        throw new InvalidEncryptedPassword('The decrypted data is not the JSON object {"password": "…", "nonce": "…"}')
      }
      const { password, nonce } = parsed as { password: string, nonce?: unknown }
      if (typeof nonce !== 'string' || !sameString(nonce, h.nonce)) throw new NonceMismatch()
      const { privateKey: _, ...pub } = h
      return { handshake: pub, credentials: { password, oaepHash: decrypted.oaepHash } }
    },

    size: () => handshakes.size,
    keyGenerations: () => generations,

    close () {
      closed = true
      clearTimeout(timer)
      handshakes.clear()
      current = undefined
      next = undefined
    }
  }
}

function sameString (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

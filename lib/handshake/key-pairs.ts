// The RSA key pairs behind handshakes, generated ahead of need: one serves
// new handshakes for `rotateMs` while the next is generated in libuv's
// thread pool, so no key pair is ever generated on the request path. The
// spare is started by the first handshake a key serves, so a service no one
// asks for a handshake makes one key pair, not two. Also
// RSA-OAEP decryption with one of them. Private keys are KeyObjects that
// never leave this process's memory.
import { constants, generateKeyPair, privateDecrypt, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'

const generate = promisify(generateKeyPair)

export interface KeyPair {
  publicKey: string // SPKI PEM
  /** JSON.stringify(publicKey), made once per key pair for the handshake reply. */
  publicKeyJson: string
  privateKey: KeyObject
  createdAt: number
}

export interface KeyPairPoolOptions {
  rotateMs: number
  modulusLength?: number | undefined
  now: () => number
}

export interface KeyPairPool {
  /** Resolves once the first key pair exists. */
  ready: () => Promise<void>
  /** The key pair for a new handshake, rotated to the spare once rotateMs has passed; starts the next spare when there is none. */
  current: () => KeyPair
  /** Key pairs generated so far. */
  generations: () => number
  close: () => void
}

export function createKeyPairPool (opts: KeyPairPoolOptions): KeyPairPool {
  const { now } = opts
  const modulusLength = opts.modulusLength ?? 2048
  let current: KeyPair | undefined
  let next: KeyPair | undefined
  let generating: Promise<void> | undefined
  let generations = 0
  let closed = false

  async function makeKeyPair (): Promise<KeyPair> {
    const { publicKey, privateKey } = await generate('rsa', { modulusLength })
    generations++
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
    return { publicKey: pem, publicKeyJson: JSON.stringify(pem), privateKey, createdAt: now() }
  }

  function refill (): Promise<void> {
    if (generating !== undefined || closed) return generating ?? Promise.resolve()
    generating = makeKeyPair().then((pair) => {
      if (current === undefined) current = pair
      else next = pair
    }).finally(() => {
      generating = undefined
      if (!closed && current === undefined) void refill()
    })
    return generating
  }

  return {
    async ready () {
      while (current === undefined) await refill()
    },
    current () {
      if (current === undefined) throw new Error('keystore used before ready()')
      if (next !== undefined && now() - current.createdAt >= opts.rotateMs) {
        current = { ...next, createdAt: now() }
        next = undefined
      }
      // Keep one spare ready behind the key in use.
      if (next === undefined) void refill()
      return current
    },
    generations: () => generations,
    close () {
      closed = true
      current = undefined
      next = undefined
    }
  }
}

/** RSA-OAEP decryption with either hash the clients use, or undefined when neither decodes. */
export function decryptOaep (privateKey: KeyObject, ciphertext: Buffer): { plain: Buffer, oaepHash: 'sha1' | 'sha256' } | undefined {
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

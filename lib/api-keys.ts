// API keys are kept only as SHA-256 digests: a presented key is hashed and
// looked up, so no comparison runs over the secret itself, and the digest
// doubles as the owner id that scopes handshakes and sessions.
import { createHash, randomBytes } from 'node:crypto'

export interface ApiKeys {
  /** The owner id of a valid key, or null. */
  verify: (key: string) => string | null
  size: number
}

export function hashKey (key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex')
}

export function parseApiKeys (list: string): string[] {
  return list.split(',').map((k) => k.trim()).filter((k) => k !== '')
}

export function createApiKeys (keys: string[]): ApiKeys {
  const digests = new Set(keys.map(hashKey))
  return {
    verify (key) {
      const digest = hashKey(key)
      return digests.has(digest) ? digest : null
    },
    size: digests.size
  }
}

/** A new random key for a service started without any. */
export function generateApiKey (): string {
  return 'fsk_' + randomBytes(24).toString('base64url')
}

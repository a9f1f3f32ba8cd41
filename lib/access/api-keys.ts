// API keys are kept only as SHA-256 digests: a presented key is hashed and
// compared with every configured digest in constant time (no early exit, no
// hash-table lookup keyed by the secret), and the digest doubles as the owner
// id that scopes handshakes and sessions. Keys can be configured in plain or
// as their digest (`sha256:<hex>`), so a key file need not hold secrets.
import { createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'

export interface ApiKeys {
  /** The owner id of a valid key, or null. */
  verify: (key: string) => string | null
  size: number
}

const DIGEST = /^sha256:([0-9a-f]{64})$/i

export function hashKey (key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex')
}

/** API_KEYS: comma-separated; each a plain key or sha256:<hex>. */
export function parseApiKeys (list: string): string[] {
  return list.split(',').map((k) => k.trim()).filter((k) => k !== '')
}

/** An API_KEYS_FILE's text: one key (plain or sha256:<hex>) per line; blank lines and # comments skipped. */
export function parseApiKeysFile (text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
}

export class ApiKeysFileError extends Error {}

/** Read API_KEYS_FILE; the error names the file, never its contents. */
export function readApiKeysFile (path: string): string[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ApiKeysFileError(`API_KEYS_FILE ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  return parseApiKeysFile(text)
}

/** The digest (hex) of a configured entry: `sha256:<hex>` is taken as given, anything else is a plain key. */
export function entryDigest (entry: string): string {
  const m = DIGEST.exec(entry)
  return m !== null ? m[1].toLowerCase() : hashKey(entry)
}

export function createApiKeys (entries: string[]): ApiKeys {
  const digests = [...new Set(entries.map(entryDigest))].map((hex) => ({ hex, bytes: Buffer.from(hex, 'hex') }))
  return {
    verify (key) {
      // One-shot digest: no Hash object per request (~1–2 µs less a request).
      const presented = hash('sha256', key, 'buffer')
      let owner: string | null = null
      // Every digest is compared, whatever matched: the time does not depend
      // on which key (if any) was presented.
      for (const d of digests) {
        if (timingSafeEqual(presented, d.bytes) && owner === null) owner = d.hex
      }
      return owner
    },
    size: digests.length
  }
}

/** A new random key for a service started without any. */
export function generateApiKey (): string {
  return 'fsk_' + randomBytes(24).toString('base64url')
}

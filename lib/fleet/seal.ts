// Sealed credentials for the fleet registry (SESSION_SEAL_KEY): AES-256-GCM
// with a fresh 96-bit IV per seal and the session id as additional data, so a
// sealed value only opens for the session it was sealed for, and any change
// to it is detected. The key (32 bytes, base64) is a secret shared by every
// machine; Redis holds only what seal() returns.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import type { Credentials } from '../session/types.js'

export interface Sealer {
  seal: (sessionId: string, secrets: Record<string, string>) => string
  /** The secrets, or throws when the value was not sealed for this session with this key, or was changed. */
  open: (sessionId: string, sealed: string) => Record<string, string>
}

const VERSION = 'v1'

export function createSealer (keyBase64: string): Sealer {
  const key = Buffer.from(keyBase64, 'base64')
  if (key.length !== 32) throw new Error('SESSION_SEAL_KEY must be 32 bytes, base64')
  return {
    seal (sessionId, secrets) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      cipher.setAAD(Buffer.from(sessionId, 'utf8'))
      const plain = Buffer.from(JSON.stringify(secrets), 'utf8')
      const body = Buffer.concat([cipher.update(plain), cipher.final()])
      plain.fill(0)
      return [VERSION, iv.toString('base64'), body.toString('base64'), cipher.getAuthTag().toString('base64')].join('.')
    },
    open (sessionId, sealed) {
      const [version, iv, body, tag] = sealed.split('.')
      if (version !== VERSION || iv === undefined || body === undefined || tag === undefined) throw new Error('not a sealed value')
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'))
      decipher.setAAD(Buffer.from(sessionId, 'utf8'))
      decipher.setAuthTag(Buffer.from(tag, 'base64'))
      const plain = Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()])
      try {
        return JSON.parse(plain.toString('utf8')) as Record<string, string>
      } finally {
        plain.fill(0)
      }
    }
  }
}

/** A session's credentials as one sealed value (secrets and login options), for the fleet registry. */
export function sealCredentials (sealer: Sealer, sessionId: string, c: Credentials): string {
  const fields: Record<string, string> = { password: c.secrets.password, options: JSON.stringify(c.options) }
  if (c.secrets.adminPassword !== undefined && c.secrets.adminPassword !== '') fields.adminPassword = c.secrets.adminPassword
  if (c.secrets.connectionToken !== undefined && c.secrets.connectionToken !== '') fields.connectionToken = c.secrets.connectionToken
  if (c.secrets.webhookUrl !== undefined && c.secrets.webhookUrl !== '') fields.webhookUrl = c.secrets.webhookUrl
  if (c.secrets.webhookSecret !== undefined && c.secrets.webhookSecret !== '') fields.webhookSecret = c.secrets.webhookSecret
  return sealer.seal(sessionId, fields)
}

/** The credentials sealCredentials kept, or throws (another key, another session, changed). */
export function openCredentials (sealer: Sealer, sessionId: string, sealed: string): Credentials {
  const f = sealer.open(sessionId, sealed)
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

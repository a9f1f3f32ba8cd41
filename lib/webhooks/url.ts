// A session's webhook URL and signing secret, as start-session takes them:
// the URL under the same URL policy as Foundry URLs (the policy's own check,
// so its modes and lists apply), refused with INVALID_WEBHOOK_URL and a
// reason that never repeats the URL (it carries a token); the secret the
// client's (whsec_<base64 of 24 to 64 bytes>) or one made here.
import { randomBytes } from 'node:crypto'
import { InvalidRequest, InvalidWebhookUrl } from '../errors.ts'

/** What a URL policy offers here: its check (throws when refused). */
export interface PolicyCheck { check: (raw: string) => Promise<URL> }

export async function checkWebhookUrl (raw: string, policy: PolicyCheck): Promise<string> {
  let url: URL
  try {
    url = new URL(raw.trim())
  } catch {
    throw new InvalidWebhookUrl('is not a URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidWebhookUrl('must be an http:// or https:// URL')
  if (url.username !== '' || url.password !== '') throw new InvalidWebhookUrl('must not carry credentials (user:password@)')
  if (url.hostname === '') throw new InvalidWebhookUrl('has no host')
  try {
    await policy.check(url.href)
  } catch (err) {
    // The policy's words name the host, which is fine for a Foundry URL but not here: only the kind of refusal.
    const what = /points at (a cloud metadata service|a (?:host that resolves to a )?[\w-]+ address)/.exec((err as Error).message)?.[1]
    throw new InvalidWebhookUrl(what !== undefined
      ? `points at ${what.replace(/^a host that resolves to /, 'a host resolving to ')}, which this service's URL policy (FOUNDRY_URL_POLICY) refuses`
      : 'names a host this service cannot resolve, or one its URL policy (FOUNDRY_URL_POLICY) refuses')
  }
  return url.href
}

const SECRET = /^(?:whsec_)?([A-Za-z0-9+/]+={0,2})$/

/** The client's signing secret, checked (whsec_ prefix optional), or throws INVALID_REQUEST without repeating it. */
export function parseWebhookSecret (raw: string): string {
  const m = SECRET.exec(raw.trim())
  const bytes = m === null ? 0 : Buffer.from(m[1]!, 'base64').length
  if (m === null || bytes < 24 || bytes > 64) {
    throw new InvalidRequest('Invalid request: the decrypted encryptedWebhookSecret must be whsec_ followed by the base64 of 24 to 64 random bytes')
  }
  return `whsec_${m[1]!}`
}

/** A new signing secret: whsec_ + base64 of 32 random bytes. */
export function newWebhookSecret (): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

// Which Foundry URLs a client may send. The header is checked here; the
// browser itself only ever loads what the login driver navigates to.
import { isIP } from 'node:net'
import { InvalidFoundryUrl } from './errors.js'

const METADATA_HOSTS = new Set(['metadata.google.internal', 'metadata', 'instance-data'])

/** IPv4 169.254.0.0/16 and IPv6 fe80::/10 (link-local, where cloud metadata lives). */
function isLinkLocal (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  const v = isIP(h)
  if (v === 4) return h.startsWith('169.254.')
  if (v === 6) return /^fe[89ab]/.test(h) || h === 'fd00:ec2::254' || /^::ffff:169\.254\./.test(h)
  return false
}

/** Parse and check x-foundry-url; throws INVALID_FOUNDRY_URL with the reason. */
export function checkFoundryUrl (raw: string): URL {
  let url: URL
  try {
    url = new URL(raw.trim())
  } catch {
    throw new InvalidFoundryUrl('is not a URL: send the address you open Foundry at, e.g. https://foundry.example.com/')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidFoundryUrl(`must be an http:// or https:// URL, not ${url.protocol}`)
  }
  if (url.username !== '' || url.password !== '') {
    throw new InvalidFoundryUrl('must not carry credentials (user:password@): send the Foundry password through the handshake')
  }
  if (url.hostname === '') throw new InvalidFoundryUrl('has no host')
  if (isLinkLocal(url.hostname) || METADATA_HOSTS.has(url.hostname.toLowerCase())) {
    throw new InvalidFoundryUrl('points at a link-local or cloud metadata address, which this service refuses')
  }
  return url
}

// The handshake's Foundry URL check, remembered per header value for a
// moment. A client sends the same x-foundry-url handshake after handshake,
// and each check parses it, looks its host up (the policy caches resolutions
// for 10 s) and classifies every address, through two async functions. This
// sits in front of any check (lib/access/url-policy.ts's, whatever it does)
// and keeps only what passed, as the URL's href (a string: no URL object is
// shared between requests), for ttlMs — well under the policy's own
// resolution cache, so a name that starts resolving to a refused address is
// refused at most ttlMs later than without it — and at most `max` values,
// the oldest dropped first. A refusal is never kept: it is checked again.
// No Fastify here.

export interface CheckedUrlsOptions {
  /** How long a passed check is reused, ms (default 1000). */
  ttlMs?: number
  /** Most header values remembered (default 1024). */
  max?: number
  now?: () => number
}

/** `check` with its passes remembered: answers the href at once on a hit. */
export function rememberChecks (
  check: (raw: string) => Promise<URL>,
  opts: CheckedUrlsOptions = {}
): (raw: string) => string | Promise<string> {
  const ttlMs = opts.ttlMs ?? 1000
  const max = opts.max ?? 1024
  const now = opts.now ?? Date.now
  const passed = new Map<string, { href: string, until: number }>()

  async function checkAndRemember (raw: string): Promise<string> {
    const t = now()
    const { href } = await check(raw)
    passed.delete(raw)
    if (passed.size >= max) passed.delete(passed.keys().next().value as string)
    passed.set(raw, { href, until: t + ttlMs })
    return href
  }

  return (raw) => {
    const hit = passed.get(raw)
    if (hit !== undefined) {
      if (hit.until > now()) return hit.href
      passed.delete(raw)
    }
    return checkAndRemember(raw)
  }
}

// Is a browser login worth trying? A plain HTTP GET of Foundry's
// /api/status (under the route prefix; no auth, no cookie, no browser) for a
// session waiting to log back in: while Foundry does not answer, answers 5xx,
// or says the session's world is not running (and the session may not
// relaunch it), the session keeps waiting without opening a browser context,
// so a waiting session costs no Chromium memory and no CPU. Anything else
// (the status, a redirect to /license, a TLS error the browser may judge
// otherwise) goes to the browser, whose login has the last word.
import { foundryBase } from './names.js'

export interface ProbeParams {
  foundryUrl: string
  /** The session may launch its world (relaunchWorld): a world not running is the browser's job then. */
  relaunchWorld: boolean
  /** The world the session was logged into (null: not known yet). */
  worldId: string | null
  timeoutMs: number
  /** The URL policy (FOUNDRY_URL_POLICY) for the probe's address. */
  allowRequest?: ((url: URL) => boolean | Promise<boolean>) | undefined
}

/** try: log in with the browser; wait: not yet, with the error code (causes.ts) and why in words. */
export type ProbeResult = { verdict: 'try' } | { verdict: 'wait', code: string, message: string }

const REFUSED = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET'])

function causeCode (err: unknown): string {
  let e = err as { code?: unknown, cause?: unknown, name?: unknown } | undefined
  for (let i = 0; i < 4 && e !== undefined && e !== null; i++) {
    if (typeof e.code === 'string') return e.code
    e = e.cause as typeof e
  }
  return ''
}

export async function probeFoundry (p: ProbeParams): Promise<ProbeResult> {
  const base = foundryBase(p.foundryUrl)
  const url = new URL('api/status', base)
  // The URL policy is the browser's to report (FOUNDRY_URL_REFUSED, a permanent cause).
  if (p.allowRequest !== undefined && !(await p.allowRequest(url))) return { verdict: 'try' }
  let res: Response
  try {
    res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(p.timeoutMs), headers: { accept: 'application/json' } })
  } catch (err) {
    const name = (err as Error).name
    if (name === 'TimeoutError' || name === 'AbortError') {
      return { verdict: 'wait', code: 'FOUNDRY_TIMEOUT', message: `Foundry at ${base.host} did not answer within ${Math.round(p.timeoutMs / 1000)} s (HTTP probe of ${url.pathname})` }
    }
    const code = causeCode(err)
    if (REFUSED.has(code) || code.startsWith('UND_ERR_CONNECT')) {
      const what = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? `its host name does not resolve (${code})` : `the connection failed (${code})`
      return { verdict: 'wait', code: 'FOUNDRY_UNREACHABLE', message: `Foundry at ${base.host} could not be reached: ${what}` }
    }
    // TLS and anything unknown: let the browser judge.
    return { verdict: 'try' }
  }
  const text = await res.text().catch(() => '')
  if (res.status >= 500) {
    return { verdict: 'wait', code: 'FOUNDRY_ERROR', message: `Foundry at ${base.host} answered HTTP ${res.status} on ${url.pathname} (restarting, or a proxy in front of it without Foundry behind)` }
  }
  if (res.status !== 200) return { verdict: 'try' }
  let status: { active?: unknown, world?: unknown, version?: unknown }
  try { status = JSON.parse(text) as typeof status } catch { return { verdict: 'try' } }
  if (status === null || typeof status !== 'object' || typeof status.version !== 'string') return { verdict: 'try' }
  if (status.active === false && !p.relaunchWorld) {
    return { verdict: 'wait', code: 'WORLD_NOT_RUNNING', message: `No world is running on Foundry ${status.version}: waiting for a Gamemaster to launch it (the session was started without relaunchWorld, so it does not launch it itself)` }
  }
  if (status.active === true && typeof status.world === 'string' && p.worldId !== null && status.world !== p.worldId) {
    return { verdict: 'wait', code: 'WORLD_MISMATCH', message: `Another world (${status.world}) is running on Foundry: waiting for the session's world to run again` }
  }
  return { verdict: 'try' }
}

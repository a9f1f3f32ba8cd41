// Is a browser login worth trying? A plain HTTP GET of Foundry's
// /api/status (under the route prefix; no auth, no cookie, no browser) for a
// session waiting to log back in: while Foundry does not answer, answers 5xx,
// or says the session's world is not running (and the session may not
// relaunch it), the session keeps waiting without opening a browser context,
// so a waiting session costs no Chromium memory and no CPU. Anything else
// (the status, a redirect to /license, a TLS error the browser may judge
// otherwise) goes to the browser, whose login has the last word.
//
// The probe connects to exactly the address the URL policy checked: the
// policy resolves the host once (checkUrl) and the socket's lookup is pinned
// to the addresses that passed (access/pinned-lookup.ts), so a name that
// changes its answer after the check (DNS rebinding) is never connected to
// at its new address. The URL keeps its host name: Host and TLS SNI are the
// name's.
import http from 'node:http'
import https from 'node:https'
import type { LookupFunction } from 'node:net'
import { pinnedLookup } from '../access/pinned-lookup.ts'
import type { Verdict } from '../access/url-policy.ts'
import { foundryBase } from './names.ts'

export interface ProbeParams {
  foundryUrl: string
  /** The session may launch its world (relaunchWorld): a world not running is the browser's job then. */
  relaunchWorld: boolean
  /** The world the session was logged into (null: not known yet). */
  worldId: string | null
  timeoutMs: number
  /**
   * The URL policy (FOUNDRY_URL_POLICY, FOUNDRY_URL_ALLOW, FOUNDRY_URL_DENY):
   * the probe's host resolved once and checked; the probe connects to those
   * addresses only. Without it Node resolves the name, unchecked.
   */
  checkUrl?: ((url: URL) => Promise<Verdict>) | undefined
}

/** try: log in with the browser; wait: not yet, with the error code (causes.ts) and why in words. */
export type ProbeResult = { verdict: 'try' } | { verdict: 'wait', code: string, message: string }

const REFUSED = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'])

/** The most of the answer read: /api/status is a few hundred bytes. */
const MAX_BODY = 64 * 1024

class ProbeTimeout extends Error { override name = 'TimeoutError' }

function causeCode (err: unknown): string {
  let e = err as { code?: unknown, cause?: unknown, name?: unknown } | undefined
  for (let i = 0; i < 4 && e !== undefined && e !== null; i++) {
    if (typeof e.code === 'string') return e.code
    e = e.cause as typeof e
  }
  return ''
}

/**
 * One GET, no redirect followed, bounded by timeoutMs from the connection to
 * the answer's last byte. A body cut short (or cut by the timeout) reads as ''.
 */
async function get (url: URL, lookup: LookupFunction | undefined, timeoutMs: number): Promise<{ status: number, text: string }> {
  return await new Promise((resolve, reject) => {
    const request = url.protocol === 'https:' ? https.request : http.request
    const req = request(url, { method: 'GET', headers: { accept: 'application/json' }, agent: false, ...(lookup !== undefined ? { lookup } : {}) }, (res) => {
      const status = res.statusCode ?? 0
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { if (text.length < MAX_BODY) text += chunk })
      res.on('error', () => {})
      res.on('end', () => { resolve({ status, text }) })
      res.on('close', () => { clearTimeout(timer); resolve({ status, text: res.complete ? text : '' }) })
    })
    const timer = setTimeout(() => { req.destroy(new ProbeTimeout()) }, timeoutMs)
    req.on('error', (err) => { clearTimeout(timer); reject(err) })
    req.end()
  })
}

export async function probeFoundry (p: ProbeParams): Promise<ProbeResult> {
  const base = foundryBase(p.foundryUrl)
  const url = new URL('api/status', base)
  let lookup: LookupFunction | undefined
  if (p.checkUrl !== undefined) {
    const v = await p.checkUrl(url)
    if (!v.ok && v.reason === 'unresolvable') {
      return { verdict: 'wait', code: 'FOUNDRY_UNREACHABLE', message: `Foundry at ${base.host} could not be reached: its host name does not resolve` }
    }
    // Any other refusal is the browser's to report (FOUNDRY_URL_REFUSED, a permanent cause).
    if (!v.ok) return { verdict: 'try' }
    lookup = pinnedLookup(v.addresses)
  }
  let res: { status: number, text: string }
  try {
    res = await get(url, lookup, p.timeoutMs)
  } catch (err) {
    if (err instanceof ProbeTimeout) {
      return { verdict: 'wait', code: 'FOUNDRY_TIMEOUT', message: `Foundry at ${base.host} did not answer within ${Math.round(p.timeoutMs / 1000)} s (HTTP probe of ${url.pathname})` }
    }
    const code = causeCode(err)
    if (REFUSED.has(code)) {
      const what = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? `its host name does not resolve (${code})` : `the connection failed (${code})`
      return { verdict: 'wait', code: 'FOUNDRY_UNREACHABLE', message: `Foundry at ${base.host} could not be reached: ${what}` }
    }
    // TLS and anything unknown: let the browser judge.
    return { verdict: 'try' }
  }
  const { text } = res
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

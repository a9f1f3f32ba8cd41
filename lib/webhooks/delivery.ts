// Delivering webhook messages: one POST per attempt, signed the Standard
// Webhooks way (webhook-id, webhook-timestamp, webhook-signature, with the
// `standardwebhooks` library), retried with exponential backoff on network
// errors, timeouts, 408, 429 and 5xx, up to a bounded number of attempts.
// Messages of one queue (one target and session) go out in order; queues do
// not wait for each other, and nothing here ever blocks the caller: send()
// only enqueues. The URL is a secret (a Discord URL carries its token): it
// is never logged, and no error text that could contain it is either — log
// lines name the target's kind, the session, the event and the HTTP status
// or the error code only.
//
// A session's URL came from a client: before each attempt the URL policy
// resolves its host once and checks every address (checkUrl), and the
// request connects to exactly those addresses (the socket's lookup is pinned
// to them: access/pinned-lookup.ts), so a name that changes its answer after
// the check (DNS rebinding) is never connected to at its new address. No
// Fastify here.
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { LookupFunction } from 'node:net'
import { Webhook } from 'standardwebhooks'
import { pinnedLookup } from '../access/pinned-lookup.ts'
import type { Verdict } from '../access/url-policy.ts'
import type { Logger } from '../logger.ts'

export interface Target {
  /** 'session': the session's own webhook; 'instance': the operator's (WEBHOOK_URL). For log lines. */
  kind: 'session' | 'instance'
  url: string
  /** Standard Webhooks secret (whsec_<base64>), or null: sent unsigned (a Discord operator URL). */
  secret: string | null
}

export interface Message {
  /** webhook-id: the same on every attempt (receivers de-duplicate with it). */
  id: string
  /** The event type, for log lines. */
  type: string
  sessionId: string
  body: string
}

export interface DeliveryOptions {
  log: Logger
  /** Attempts in all, the first included (≥ 1). */
  attempts: number
  /** Delay before the second attempt; doubles per attempt up to maxDelayMs. */
  baseDelayMs: number
  maxDelayMs?: number
  /** One attempt, connection to last byte of the answer. */
  timeoutMs: number
  /**
   * The URL policy, before each attempt: the host resolved once and every
   * address checked; the attempt connects to those addresses only. Without
   * it (the operator's own URL) Node resolves the name, unchecked.
   */
  checkUrl?: ((url: URL) => Promise<Verdict>) | undefined
  /** Most messages waiting in one queue; the oldest waiting one is dropped past it. */
  maxQueued?: number
}

export interface Delivery {
  send: (target: Target, message: Message) => void
  /** Messages waiting or being sent. */
  pending: () => number
  /** Let the queues drain for up to graceMs, then abort what is left. */
  close: (graceMs: number) => Promise<void>
}

/** How one attempt ended. */
type Outcome = { ok: true, status: number } | { ok: false, retry: boolean, status?: number, code?: string, retryAfterMs?: number }

export function createDelivery (opts: DeliveryOptions): Delivery {
  const { log } = opts
  const maxDelayMs = opts.maxDelayMs ?? 60_000
  const maxQueued = opts.maxQueued ?? 100
  const queues = new Map<string, Array<{ target: Target, message: Message }>>()
  const running = new Set<string>()
  const aborts = new Set<AbortController>()
  let closed = false
  let idle: (() => void) | null = null
  const signers = new Map<string, Webhook>()

  function signer (secret: string): Webhook {
    let s = signers.get(secret)
    if (s === undefined) {
      if (signers.size > 1000) signers.clear()
      signers.set(secret, s = new Webhook(secret))
    }
    return s
  }

  function headers (target: Target, m: Message): Record<string, string> {
    const now = new Date()
    const h: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'foundry-sessions-webhooks',
      'webhook-id': m.id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000))
    }
    if (target.secret !== null) h['webhook-signature'] = signer(target.secret).sign(m.id, now, m.body)
    return h
  }

  async function attempt (target: Target, m: Message): Promise<Outcome> {
    const url = new URL(target.url)
    let lookup: LookupFunction | undefined
    if (opts.checkUrl !== undefined) {
      const v = await opts.checkUrl(url)
      // A name that does not resolve now may later; an address the policy refuses stays refused.
      if (!v.ok) return v.reason === 'unresolvable' ? { ok: false, retry: true, code: 'UNRESOLVABLE' } : { ok: false, retry: false, code: 'URL_POLICY_REFUSED' }
      lookup = pinnedLookup(v.addresses)
    }
    const abort = new AbortController()
    aborts.add(abort)
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest
    try {
      return await new Promise<Outcome>((resolve) => {
        const timer = setTimeout(() => { abort.abort() }, opts.timeoutMs)
        const done = (o: Outcome): void => { clearTimeout(timer); resolve(o) }
        const req = request(url, {
          method: 'POST',
          headers: headers(target, m),
          signal: abort.signal,
          ...(lookup !== undefined ? { lookup } : {}),
          agent: false
        }, (res: IncomingMessage) => {
          res.resume() // the answer's body is not read, only drained
          res.on('end', () => {
            const status = res.statusCode ?? 0
            if (status >= 200 && status < 300) { done({ ok: true, status }); return }
            const retry = status === 408 || status === 429 || status >= 500
            const after = Number(res.headers['retry-after'])
            done({ ok: false, retry, status, ...(Number.isFinite(after) && after >= 0 ? { retryAfterMs: after * 1000 } : {}) })
          })
          res.on('error', () => { done({ ok: false, retry: true, status: res.statusCode ?? 0, code: 'ANSWER_CUT' }) })
        })
        req.on('error', (err: NodeJS.ErrnoException) => {
          const code = abort.signal.aborted ? (closed ? 'CLOSED' : 'TIMEOUT') : (err.code ?? 'ERROR')
          done({ ok: false, retry: code !== 'CLOSED', code })
        })
        req.end(m.body)
      })
    } finally {
      aborts.delete(abort)
    }
  }

  function sleep (ms: number): Promise<void> {
    return new Promise((resolve) => {
      const abort = new AbortController()
      aborts.add(abort)
      const timer = setTimeout(finish, ms)
      abort.signal.addEventListener('abort', finish)
      function finish (): void { clearTimeout(timer); aborts.delete(abort); resolve() }
    })
  }

  async function deliver (target: Target, m: Message): Promise<void> {
    const about = { webhook: target.kind, sessionId: m.sessionId, event: m.type, webhookId: m.id }
    if (closed) {
      log.warn(about, 'webhook not delivered: the service is closing')
      return
    }
    for (let n = 1; ; n++) {
      const o = await attempt(target, m)
      if (o.ok) {
        log.info({ ...about, attempt: n, status: o.status }, 'webhook delivered')
        return
      }
      const why = { ...about, attempt: n, ...(o.status !== undefined ? { status: o.status } : {}), ...(o.code !== undefined ? { code: o.code } : {}) }
      if (closed || !o.retry || n >= opts.attempts) {
        log.warn(why, closed ? 'webhook not delivered: the service is closing' : o.retry ? `webhook not delivered after ${n} attempts` : 'webhook not delivered: the receiver refused it (no retry)')
        return
      }
      const backoff = Math.min(maxDelayMs, opts.baseDelayMs * 2 ** (n - 1))
      const delay = Math.min(maxDelayMs, Math.max(backoff, o.retryAfterMs ?? 0))
      log.debug({ ...why, retryInMs: delay }, 'webhook attempt failed: retrying')
      await sleep(delay)
      if (closed) {
        log.warn(why, 'webhook not delivered: the service is closing')
        return
      }
    }
  }

  function pending (): number {
    let n = running.size
    for (const q of queues.values()) n += q.length
    return n
  }

  async function drain (key: string): Promise<void> {
    running.add(key)
    try {
      for (;;) {
        const q = queues.get(key)
        const next = q?.shift()
        if (next === undefined) break
        if (q!.length === 0) queues.delete(key)
        await deliver(next.target, next.message).catch((err: Error) => {
          log.error({ webhook: next.target.kind, sessionId: next.message.sessionId, code: (err as NodeJS.ErrnoException).code }, 'webhook delivery failed unexpectedly')
        })
      }
    } finally {
      running.delete(key)
      queues.delete(key)
      if (pending() === 0) idle?.()
    }
  }

  return {
    send (target, message) {
      if (closed) return
      const key = `${target.kind}:${target.url}:${message.sessionId}`
      let q = queues.get(key)
      if (q === undefined) queues.set(key, q = [])
      q.push({ target, message })
      if (q.length > maxQueued) {
        const dropped = q.shift()!
        log.warn({ webhook: target.kind, sessionId: message.sessionId, event: dropped.message.type }, 'webhook dropped: too many waiting for a receiver that does not answer')
      }
      if (!running.has(key)) void drain(key)
    },
    pending,
    async close (graceMs) {
      if (pending() > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs)
          idle = () => { clearTimeout(timer); resolve() }
        })
      }
      closed = true
      for (const a of [...aborts]) a.abort()
    }
  }
}

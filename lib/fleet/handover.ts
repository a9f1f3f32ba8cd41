// Moving a live session from one machine of the fleet to another, on Redis
// primitives only: each machine listens on its own pub/sub channel
// (fs:fleet:<id>); the claim itself is the registry's atomic CLAIM (the
// record moves only if it is still on the machine it was offered from, and
// the taker has room), so a session is never taken twice.
//
//   giver  → taker   offer    {id, owner, from}   owner: the machine the record is on
//   taker  → giver   claimed | declined {id}
//   giver  → taker   released {id}                the giver's page is closed (relay freed the module id)
//   taker            logs the session in (at `released`, or after RELEASE_WAIT_MS at the latest)
//
// A giver whose offer is not answered in time tries the next machine; one
// that finds none leaves the session to crash recovery. Every message is
// signed and checked (messages.ts); anything else is dropped with a warning
// and never thrown. No Fastify here.
import type { Redis } from 'ioredis'
import { signMessage, verifyMessage, type FleetMessage, type Unsigned } from './messages.ts'
import { channel } from './keys.ts'
import type { Logger } from '../logger.ts'

export interface HandoverOptions {
  /** Publishes (the registry's client). */
  redis: Redis
  /** A connection of its own for the subscription (ioredis: a subscriber connection does nothing else). */
  sub: Redis
  instanceId: string
  log: Logger
  /** Message keys (messages.ts messageKeys): the first signs, any verifies. None: no message is sent or accepted. */
  keys: Buffer[]
  /**
   * Whether an offer of session `id`, on machine `owner`, made by machine
   * `from`, may be taken at all: only from the machine running it, or for a
   * machine that is closing or gone (the registry's claim checks the rest).
   */
  acceptOffer: (id: string, owner: string, from: string) => Promise<boolean>
  /** Offered a session that is on `owner`: take it in the registry (true) or not (no room, closing, already taken). */
  claim: (id: string, owner: string, reason?: string) => Promise<boolean>
  /** A claimed session is free to log in here (its former page is closed, or the wait ran out); reason: the giver's words, if any. */
  adopt: (id: string, owner: string, reason?: string) => Promise<void>
  /** How long an offer waits for claimed/declined (default 5 s). */
  answerMs?: number
  /** How long a taker waits for released before it logs in anyway (default 10 s). */
  releaseWaitMs?: number
}

export interface Handover {
  /** Subscribe to this machine's channel. */
  listen: () => Promise<void>
  /**
   * Offer a session on machine `owner` to machine `to`; once `to` claimed it,
   * run `release` (close the page here) and tell `to` to log in. True when
   * `to` took it.
   */
  offer: (id: string, owner: string, to: string, release: () => Promise<void>, reason?: string) => Promise<boolean>
  close: () => Promise<void>
}

export { channel }

export function createHandover (opts: HandoverOptions): Handover {
  const { redis, sub, instanceId: me, log } = opts
  const answerMs = opts.answerMs ?? 5000
  const releaseWaitMs = opts.releaseWaitMs ?? 10_000
  /** Waiting for a message about a session: `${t}:${id}` → resolve. */
  const waiting = new Map<string, (t: string | null) => void>()

  const key = opts.keys[0]
  const seen = new Map<string, number>()
  const send = async (to: string, msg: Unsigned): Promise<number> =>
    key === undefined ? 0 : await redis.publish(channel(to), signMessage(key, msg, me, to, Date.now()))

  /** Wait for one of `kinds` about session `id` from machine `from` (answers from anyone else do not count). */
  function wait (id: string, from: string, kinds: string[], ms: number): Promise<string | null> {
    return new Promise((resolve) => {
      const done = (t: string | null): void => {
        clearTimeout(timer)
        for (const k of kinds) waiting.delete(`${k}:${id}:${from}`)
        resolve(t)
      }
      const timer = setTimeout(() => { done(null) }, ms)
      for (const k of kinds) waiting.set(`${k}:${id}:${from}`, done)
    })
  }

  async function offered (m: Extract<FleetMessage, { t: 'offer' }>): Promise<void> {
    const released = wait(m.id, m.from, ['released'], releaseWaitMs)
    let ok = false
    try {
      if (!await opts.acceptOffer(m.id, m.owner, m.from)) {
        log.warn({ sessionId: m.id, from: m.from, owner: m.owner }, 'refused an offer: its sender does not run the session and its machine is neither closing nor gone')
      } else ok = await opts.claim(m.id, m.owner, m.reason)
    } catch (err) {
      log.warn({ sessionId: m.id, err: (err as Error).message }, 'claiming a session offered by another machine failed')
    }
    await send(m.from, { t: ok ? 'claimed' : 'declined', id: m.id }).catch(() => {})
    if (!ok) {
      waiting.get(`released:${m.id}:${m.from}`)?.(null)
      return
    }
    if (await released === null) log.warn({ sessionId: m.id, from: m.from }, 'the machine that offered this session did not say its page closed in time: logging it in anyway')
    await opts.adopt(m.id, m.owner, m.reason)
  }

  sub.on('message', (_channel: string, text: unknown) => {
    const v = verifyMessage(text, { keys: opts.keys, me, now: Date.now(), seen })
    if (!v.ok) {
      log.warn({ why: v.why }, 'dropped a fleet message')
      return
    }
    const m = v.msg
    if (m.t === 'offer') {
      void offered(m).catch((err: Error) => { log.warn({ sessionId: m.id, err: err.message }, 'taking over a session failed') })
      return
    }
    waiting.get(`${m.t}:${m.id}:${m.from}`)?.(m.t)
  })

  return {
    async listen () {
      if (sub.status === 'wait') await sub.connect()
      await sub.subscribe(channel(me))
    },
    async offer (id, owner, to, release, reason) {
      const answer = wait(id, to, ['claimed', 'declined'], answerMs)
      const heard = await send(to, { t: 'offer', id, owner, ...(reason !== undefined ? { reason } : {}) }).catch(() => 0)
      if (heard === 0) {
        waiting.get(`claimed:${id}:${to}`)?.(null)
        return false
      }
      if (await answer !== 'claimed') return false
      await release()
      await send(to, { t: 'released', id }).catch(() => {})
      return true
    },
    async close () {
      for (const done of [...waiting.values()]) done('closed')
      sub.disconnect()
    }
  }
}

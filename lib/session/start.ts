// Starting a session: find the key's same live session (here or on another
// machine) or claim the start lock with the registry insert, check the caps
// and the login slots, keep the credentials for the fleet when asked, and run
// the first login. Two starts of the same login, here or anywhere in the
// fleet, log in once: the later one answers with the first one's session.
import { randomUUID } from 'node:crypto'
import type { BrowserPool } from '../browser/pool.ts'
import type { Logger } from '../logger.ts'
import { AtCapacity, FLEET_RETRY_AFTER_S, FleetCutOff, ServiceClosing, SessionCancelled, withContext, type ServiceError } from '../errors.ts'
import { foundryBase, matchWorld } from '../foundry/index.ts'
import { snapshot } from './entry.ts'
import type { Executor } from './executor.ts'
import { initialState } from './machine.ts'
import { sameKey, type SessionRegistry } from './registry.ts'
import { isFinal, type Credentials, type Session, type SessionOptions, type StartRequest } from './types.ts'

export interface StartResult {
  session: Session
  /** The key already had this session: no second login happened. */
  existing: boolean
}

export interface StartDeps {
  registry: SessionRegistry
  executor: Executor
  pool: BrowserPool
  log: Logger
  caps: { maxSessions: number, maxPerOwner: number }
  now: () => number
  /** See SessionManagerOptions.keepCredentials. */
  keepCredentials?: ((id: string, credentials: Credentials, ownerId: string) => Promise<void>) | undefined
}

const LOGIN_SLOTS_RETRY_AFTER_S = 5

/** Another start of the same login holds the start lock (registry insert). */
class StartLockHeld extends Error {
  readonly holder: string
  constructor (holder: string) {
    super('the same login is starting')
    this.holder = holder
  }
}

export function createStart (deps: StartDeps): (req: StartRequest) => Promise<StartResult> {
  const { registry, executor, pool, log, caps, now } = deps
  const { entries, dispatch } = executor

  /** A live session of this key for the same Foundry, user and world. */
  async function sameSession (ownerId: string, o: SessionOptions): Promise<Session | undefined> {
    const world = o.worldName
    const sameWorld = (s: Session): boolean => {
      if (world === '' || s.worldName.toLowerCase() === world.toLowerCase()) return true
      return s.info !== null && matchWorld([{ id: s.info.worldId, title: s.info.worldTitle }], world) !== undefined
    }
    const candidates = await registry.findSame({ ownerId, foundryUrl: foundryBase(o.foundryUrl).href, username: o.username })
    for (const s of candidates) {
      if (sameWorld(s)) return s
      // A login that named no world: its world is known once it is in.
      const entry = entries.get(s.id)
      if (s.status === 'starting' && s.worldName === '' && entry !== undefined) {
        const after = await entry.ready.catch(() => undefined)
        if (after !== undefined && !isFinal(entry.session.status) && sameWorld(entry.session)) return snapshot(entry.session)
      }
    }
    return undefined
  }

  /** A new session's record, before its first login. */
  function newRecord (ownerId: string, options: SessionOptions, t: number): Session {
    return {
      id: randomUUID(),
      ownerId,
      ...initialState(t),
      stage: null,
      foundryUrl: foundryBase(options.foundryUrl).href,
      username: options.username,
      worldName: options.worldName,
      clientId: null,
      info: null
    }
  }

  async function startOnce (req: StartRequest): Promise<StartResult> {
    if (executor.closing()) throw new ServiceClosing()
    const { ownerId, options, secrets } = req
    const found = await sameSession(ownerId, options)
    if (executor.closing()) throw new ServiceClosing()
    if (found !== undefined) {
      const entry = entries.get(found.id)
      // Still logging in on another machine: its answer is ours (start()).
      if (entry === undefined && found.status === 'starting') throw new StartLockHeld(found.id)
      if (entry === undefined) {
        await registry.touch([found.id], now())
        return { session: found, existing: true }
      }
      await entry.ready
      await dispatch(entry, { type: 'activity' })
      return { session: snapshot(entry.session), existing: true }
    }
    const t = now()
    // Known here before the registry answers, so a second start finds its ready promise.
    const entry = executor.track(newRecord(ownerId, options, t), { options, secrets })
    const { session, settle } = entry
    const release = await (async () => {
      const holder = await registry.insert(snapshot(session), caps, sameKey(ownerId, session.foundryUrl, options.username, options.worldName))
      if (holder !== null) throw new StartLockHeld(holder)
      const release = pool.tryAcquireLogin()
      if (release !== null) {
        if (deps.keepCredentials === undefined) return release
        try {
          await deps.keepCredentials(session.id, { options, secrets }, ownerId)
          return release
        } catch (err) {
          release()
          await registry.remove(session.id).catch(() => {})
          throw err
        }
      }
      await registry.remove(session.id)
      throw withContext(new AtCapacity('Too many logins are running at once: retry in a few seconds'), { retryAfter: LOGIN_SLOTS_RETRY_AFTER_S })
    })().catch((err: unknown) => {
      executor.untrack(entry)
      settle.reject(err as Error)
      throw err
    })
    log.debug({ sessionId: session.id, foundryHost: new URL(options.foundryUrl).host }, 'session starting')
    try {
      await executor.logIn(entry, false)
      log.debug({ sessionId: session.id, clientId: session.clientId, ms: now() - t }, 'session active')
      const done = snapshot(session)
      settle.resolve(done)
      return { session: done, existing: false }
    } catch (err) {
      const cancelled = isFinal(session.status) || entry.abort.signal.aborted
      const cutShort = (): Error => {
        if (executor.closing()) return new ServiceClosing()
        // Fenced: this machine lost its fleet lease while logging in (machine.ts 'fenced').
        if (session.status === 'failed' && session.cause === 'FLEET_UNAVAILABLE') {
          return withContext(new FleetCutOff(session.statusReason), { retryAfter: FLEET_RETRY_AFTER_S })
        }
        return new SessionCancelled()
      }
      // A login cut short by the service closing was not the client's doing:
      // tell it to retry (elsewhere), not that it cancelled.
      const e = (cancelled ? cutShort() : err) as ServiceError
      if (!cancelled && options.screenshotOnFailure) {
        const url = await executor.screenshot(entry)
        if (url !== undefined) withContext(e, { screenshot: url })
      }
      await dispatch(entry, { type: 'login-failed', code: e.code ?? 'error', message: e.message })
      settle.reject(e)
      throw e
    } finally {
      release()
    }
  }

  /**
   * The session holding the start lock, once its login is over (or undefined
   * when it is gone). Here: its ready promise; on another machine: its record.
   */
  async function settled (id: string): Promise<Session | undefined> {
    const entry = entries.get(id)
    if (entry !== undefined) {
      await entry.ready.catch(() => {})
      return snapshot(entry.session)
    }
    for (;;) {
      const s = await registry.get(id)
      if (s === undefined || s.status !== 'starting') return s
      if (executor.closing()) throw new ServiceClosing()
      await new Promise((resolve) => { setTimeout(resolve, 250) })
    }
  }

  return async function start (req: StartRequest): Promise<StartResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await startOnce(req)
      } catch (err) {
        if (!(err instanceof StartLockHeld)) throw err
        // The same login started at the same moment, here or on another
        // machine of the fleet: its answer is ours.
        const other = await settled(err.holder)
        if (other !== undefined && !isFinal(other.status)) {
          const entry = entries.get(other.id)
          if (entry !== undefined) await dispatch(entry, { type: 'activity' })
          else await registry.touch([other.id], now()).catch(() => {})
          return { session: entry !== undefined ? snapshot(entry.session) : other, existing: true }
        }
        // It failed or ended meanwhile: this start logs in after all (once).
        if (attempt >= 2) throw new SessionCancelled()
      }
    }
  }
}

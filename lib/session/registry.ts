// Where session records live: by id and by owner, with the caps counted
// atomically with the insert, the "same key, Foundry, user" lookup, and
// ended sessions kept for a while. An interface with async methods so a
// shared store (Redis) can implement it; here the in-memory one. Records
// hold no secrets and no browser handles: those stay with the executor.
import { createHash } from 'node:crypto'
import { AtCapacity, withContext } from '../errors.js'
import { isFinal, type Session } from './types.js'

export interface Caps {
  /** Live (not ended or failed) sessions in total. */
  maxSessions: number
  /** Live sessions per owner. */
  maxPerOwner: number
}

export interface SameSessionQuery {
  ownerId: string
  /** Foundry base URL, as stored. */
  foundryUrl: string
  /** Matched without regard to case, or against the logged-in user's id. */
  username: string
}

export interface SessionRegistry {
  /**
   * Add a new live session if the caps allow, counting and inserting as one
   * step; throws AtCapacity (with retryAfter) otherwise. With `same` (the
   * start lock: key, Foundry, user and world as one string), a live session
   * already holding it wins: nothing is inserted and its id comes back (two
   * starts of the same login at once, wherever they land, log in once).
   * Null when inserted.
   */
  insert: (session: Session, caps: Caps, same?: string) => Promise<string | null>
  /** Replace a live session's record (no-op when it is not live). */
  update: (session: Session) => Promise<void>
  /** Any session by id, live or retained, or undefined. */
  get: (id: string) => Promise<Session | undefined>
  /** The owner's sessions, live first, then the retained ended ones. */
  listByOwner: (ownerId: string) => Promise<Session[]>
  /** Live sessions of this owner for this Foundry and user (any world). */
  findSame: (query: SameSessionQuery) => Promise<Session[]>
  /** Move a session from live to retained (status ended or failed); it no longer counts against the caps. */
  finish: (session: Session) => Promise<void>
  /** Forget a session, live or retained; true when there was one. */
  remove: (id: string) => Promise<boolean>
  /** Forget retained sessions that ended more than retainEndedMs before now. */
  prune: (now: number) => Promise<void>
  /** Live sessions in total. */
  liveCount: () => Promise<number>
  /** An API call named or listed these live sessions elsewhere (another machine of the fleet) at `at`. */
  touch: (ids: string[], at: number) => Promise<void>
  /** The latest touch of each of these sessions, for the machine running them (absent: none). */
  touched: (ids: string[]) => Promise<Map<string, number>>
}

/** The start lock's value for `insert`: one live session per key, Foundry, user and world. */
export function sameKey (ownerId: string, foundryUrl: string, username: string, worldName: string): string {
  return createHash('sha256').update([ownerId, foundryUrl, username.toLowerCase(), worldName.trim().toLowerCase()].join('\n')).digest('hex')
}

export interface MemoryRegistryOptions {
  /** How long ended and failed sessions stay listed. */
  retainEndedMs: number
  /** Most ended sessions kept (the oldest go first; default 1000). */
  maxRetained?: number
}

/** Seconds a client is told to wait when a cap is reached. */
export const CAP_RETRY_AFTER_S = 30

export function capacityError (which: 'total' | 'owner', caps: Caps): Error {
  const message = which === 'total'
    ? `This service runs its maximum of ${caps.maxSessions} sessions: end one, or retry later`
    : `This API key has its maximum of ${caps.maxPerOwner} sessions: end one with DELETE /end-session first`
  return withContext(new AtCapacity(message), { retryAfter: CAP_RETRY_AFTER_S })
}

const copy = (s: Session): Session => structuredClone(s)

export function createMemoryRegistry (opts: MemoryRegistryOptions): SessionRegistry {
  const live = new Map<string, Session>()
  const ended = new Map<string, Session>()
  const maxRetained = opts.maxRetained ?? 1000
  /** Start lock → live session id, and back. */
  const locks = new Map<string, string>()
  const lockOf = new Map<string, string>()
  const touches = new Map<string, number>()
  const unlock = (id: string): void => {
    const k = lockOf.get(id)
    if (k !== undefined && locks.get(k) === id) locks.delete(k)
    lockOf.delete(id)
    touches.delete(id)
  }

  const liveOf = (ownerId: string): Session[] => [...live.values()].filter((s) => s.ownerId === ownerId)

  return {
    async insert (session, caps, same) {
      // No await before the check and the set: one step on Node's one thread.
      const held = same !== undefined ? locks.get(same) : undefined
      if (held !== undefined && live.has(held)) return held
      if (live.size >= caps.maxSessions) throw capacityError('total', caps)
      if (liveOf(session.ownerId).length >= caps.maxPerOwner) throw capacityError('owner', caps)
      live.set(session.id, copy(session))
      if (same !== undefined) { locks.set(same, session.id); lockOf.set(session.id, same) }
      return null
    },
    async update (session) {
      if (live.has(session.id)) live.set(session.id, copy(session))
    },
    async get (id) {
      const s = live.get(id) ?? ended.get(id)
      return s === undefined ? undefined : copy(s)
    },
    async listByOwner (ownerId) {
      return [...liveOf(ownerId), ...[...ended.values()].filter((s) => s.ownerId === ownerId)].map(copy)
    },
    async findSame (q) {
      const user = q.username.toLowerCase()
      return liveOf(q.ownerId)
        .filter((s) => s.foundryUrl === q.foundryUrl && (s.username.toLowerCase() === user || s.info?.userId === q.username))
        .map(copy)
    },
    async finish (session) {
      if (!isFinal(session.status)) throw new Error(`finish: session ${session.id} is ${session.status}`)
      live.delete(session.id)
      unlock(session.id)
      ended.delete(session.id)
      ended.set(session.id, copy(session))
      while (ended.size > maxRetained) ended.delete(ended.keys().next().value as string)
    },
    async remove (id) {
      unlock(id)
      return live.delete(id) || ended.delete(id)
    },
    async prune (now) {
      for (const [id, s] of ended) if (now - (s.endedAt ?? now) >= opts.retainEndedMs) ended.delete(id)
    },
    async liveCount () {
      return live.size
    },
    async touch (ids, at) {
      for (const id of ids) if (live.has(id) && at > (touches.get(id) ?? 0)) touches.set(id, at)
    },
    async touched (ids) {
      const out = new Map<string, number>()
      for (const id of ids) { const at = touches.get(id); if (at !== undefined) out.set(id, at) }
      return out
    }
  }
}

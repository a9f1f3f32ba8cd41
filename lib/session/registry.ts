// Where session records live: by id and by owner, with the caps counted
// atomically with the insert, the "same key, Foundry, user" lookup, and
// ended sessions kept for a while. An interface with async methods so a
// shared store (Redis) can implement it; here the in-memory one. Records
// hold no secrets and no browser handles: those stay with the executor.
//
// A fleet's registry (FleetRegistry) also says which machine runs each
// session, lets a machine claim one from another, and fences: each session
// has a token, 1 at insert and one more per claim; a machine keeps the token
// it was granted and every write (update, finish, sealed credentials)
// carries it; a write whose machine no longer runs the session, or whose
// token is stale, is refused and reported (onRefused). The in-memory one
// keeps the same contract (test/lib/registry-contract.ts): several
// registries on one MemoryStore are the machines of one fleet.
import { createHash } from 'node:crypto'
import { AtCapacity, withContext } from '../errors.ts'
import { next } from './machine.ts'
import { isFinal, type Session } from './types.ts'

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

export interface FleetRegistry extends SessionRegistry {
  /** The machine running each of these sessions (absent when unknown). */
  machinesOf: (ids: string[]) => Promise<Map<string, string>>
  /** Live ids on a machine. */
  liveOn: (machine: string) => Promise<string[]>
  /** Write the ends this machine could not write, then its live records again (after the store came back, possibly empty); how many it wrote. */
  resync: () => Promise<number>
  /**
   * Move a live session from machine `from` to this machine, if it is still
   * on `from` (one claimer wins) and this machine has room (`from` itself
   * always has room for its own). True when claimed. With a reason, the
   * record says `reconnecting` with it from the same step on. lapsed: only
   * while `from`'s heartbeat (its lease) is gone.
   */
  claim: (id: string, from: string, maxSessions: number, reason?: string, lapsed?: boolean) => Promise<boolean>
  /** This machine no longer runs the session (another claimed it, or a write was refused): forget its token, never re-register it. */
  disown: (id: string) => void
  /** Of these sessions run here, the ones the registry still shows here with this machine's token. */
  holds: (ids: string[]) => Promise<Set<string>>
  /**
   * End the record of a live session that machine `machine` runs (a lapsed
   * machine, whose lease ran out: it no longer acts; or this machine's
   * previous life), only if it still runs it — and, lapsed, only while its
   * heartbeat is gone (a machine back from a stall keeps its sessions). False
   * when refused.
   */
  finishOn: (session: Session, machine: string, lapsed?: boolean) => Promise<boolean>
  /** Keep a session's sealed credentials (deleted with the record); only while this machine runs it with its token. */
  putSealed: (id: string, sealed: string) => Promise<void>
  sealed: (id: string) => Promise<string | null>
  /** A write of this machine was refused (stale token, or the session runs elsewhere now). */
  onRefused: (fn: (id: string, what: string) => void) => void
}

/** The record a claim with a reason writes: the session leaving its machine, reconnecting with the reason. */
export function claimedRecord (s: Session, reason: string, now: number): Session {
  return next(s, { type: 'leave', reason, moduleReason: 'not connected: the session is moving to another machine' }, now)
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
  /** This machine (default 'local'). */
  instanceId?: string
  /** What the machines of one fleet share (default: a store of this registry's own). */
  store?: MemoryStore
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

/**
 * What the machines of one in-memory fleet share, as Redis is shared: the
 * records, which machine runs each, fencing tokens, start locks, touches,
 * sealed credentials, and which machines' heartbeats (leases) are alive.
 */
export interface MemoryStore {
  live: Map<string, Session>
  ended: Map<string, Session>
  /** Session id → the machine that runs it (kept for ended ones until they are forgotten). */
  machineOf: Map<string, string>
  /** Session id → fencing token. */
  tokens: Map<string, number>
  /** Start lock → live session id, and back. */
  locks: Map<string, string>
  lockOf: Map<string, string>
  touches: Map<string, number>
  sealed: Map<string, string>
  /** Machines whose heartbeat is alive (a lapsed claim waits for its machine to be missing here). */
  heartbeats: Set<string>
}

export function createMemoryStore (): MemoryStore {
  return { live: new Map(), ended: new Map(), machineOf: new Map(), tokens: new Map(), locks: new Map(), lockOf: new Map(), touches: new Map(), sealed: new Map(), heartbeats: new Set() }
}

export function createMemoryRegistry (opts: MemoryRegistryOptions): FleetRegistry {
  const st = opts.store ?? createMemoryStore()
  const { live, ended, locks, lockOf, touches } = st
  const me = opts.instanceId ?? 'local'
  const maxRetained = opts.maxRetained ?? 1000
  /** The fencing token this machine holds for each session it runs. */
  const held = new Map<string, number>()
  const refusedListeners: Array<(id: string, what: string) => void> = []
  // No await in any step below before its checks and writes are done: one step on Node's one thread, as a Lua script is in Redis.
  const refused = (id: string, what: string): void => {
    held.delete(id)
    for (const fn of refusedListeners) fn(id, what)
  }
  /** A session no longer live: its start lock, touches and sealed credentials go. */
  const release = (id: string): void => {
    const k = lockOf.get(id)
    if (k !== undefined && locks.get(k) === id) locks.delete(k)
    lockOf.delete(id)
    touches.delete(id)
    st.sealed.delete(id)
  }
  const forget = (id: string): boolean => {
    const was = live.delete(id) || ended.delete(id)
    release(id)
    st.machineOf.delete(id)
    st.tokens.delete(id)
    return was
  }
  /** The machine running a live session, or undefined. */
  const runner = (id: string): string | undefined => live.has(id) ? st.machineOf.get(id) : undefined
  const holds = (id: string, m: string, tok: number | undefined): boolean => tok !== undefined && runner(id) === m && st.tokens.get(id) === tok
  const liveOn = (m: string): string[] => [...live.keys()].filter((id) => st.machineOf.get(id) === m)
  const liveOf = (ownerId: string): Session[] => [...live.values()].filter((s) => s.ownerId === ownerId)
  const end = (session: Session): void => {
    live.delete(session.id)
    release(session.id)
    ended.delete(session.id)
    ended.set(session.id, copy(session))
    while (ended.size > maxRetained) forget(ended.keys().next().value as string)
  }
  const final = (session: Session): void => {
    if (!isFinal(session.status)) throw new Error(`finish: session ${session.id} is ${session.status}`)
  }

  return {
    async insert (session, caps, same) {
      const holder = same !== undefined ? locks.get(same) : undefined
      if (holder !== undefined && live.has(holder)) return holder
      if (liveOn(me).length >= caps.maxSessions) throw capacityError('total', caps)
      if (liveOf(session.ownerId).length >= caps.maxPerOwner) throw capacityError('owner', caps)
      live.set(session.id, copy(session))
      st.machineOf.set(session.id, me)
      st.tokens.set(session.id, 1)
      held.set(session.id, 1)
      if (same !== undefined) { locks.set(same, session.id); lockOf.set(session.id, same) }
      return null
    },
    async update (session) {
      const tok = held.get(session.id)
      if (tok === undefined) return // not run here (any more): nothing to write
      if (holds(session.id, me, tok)) live.set(session.id, copy(session))
      else refused(session.id, 'update')
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
      final(session)
      const tok = held.get(session.id)
      if (tok === undefined) return // not run here (any more): another machine answers for it
      if (!holds(session.id, me, tok)) { refused(session.id, 'finish'); return }
      held.delete(session.id)
      end(session)
    },
    async finishOn (session, machine, lapsed = false) {
      final(session)
      if (runner(session.id) !== machine) return false
      if (lapsed && st.heartbeats.has(machine)) return false
      end(session)
      return true
    },
    async remove (id) {
      held.delete(id)
      return forget(id)
    },
    async prune (now) {
      for (const [id, s] of [...ended]) if (now - (s.endedAt ?? now) >= opts.retainEndedMs) forget(id)
    },
    async liveCount () {
      return liveOn(me).length
    },
    async touch (ids, at) {
      for (const id of ids) if (live.has(id) && at > (touches.get(id) ?? 0)) touches.set(id, at)
    },
    async touched (ids) {
      const out = new Map<string, number>()
      for (const id of ids) { const at = touches.get(id); if (at !== undefined) out.set(id, at) }
      return out
    },
    async machinesOf (ids) {
      const out = new Map<string, string>()
      for (const id of ids) { const m = st.machineOf.get(id); if (m !== undefined) out.set(id, m) }
      return out
    },
    async liveOn (machine) {
      return liveOn(machine)
    },
    async claim (id, from, maxSessions, reason, lapsed = false) {
      const s = live.get(id)
      if (s === undefined || runner(id) !== from) return false
      if (lapsed && st.heartbeats.has(from)) return false
      if (from !== me && liveOn(me).length >= maxSessions) return false
      if (reason !== undefined) live.set(id, claimedRecord(s, reason, Date.now()))
      st.machineOf.set(id, me)
      const tok = (st.tokens.get(id) ?? 0) + 1
      st.tokens.set(id, tok)
      held.set(id, tok)
      return true
    },
    disown (id) { held.delete(id) },
    async holds (ids) {
      return new Set(ids.filter((id) => holds(id, me, held.get(id))))
    },
    async putSealed (id, sealed) {
      const tok = held.get(id)
      if (tok === undefined) return // not run here (any more)
      if (holds(id, me, tok)) st.sealed.set(id, sealed)
      else refused(id, 'sealed credentials')
    },
    async sealed (id) {
      return st.sealed.get(id) ?? null
    },
    onRefused (fn) { refusedListeners.push(fn) },
    async resync () {
      // Nothing is ever lost here: the sessions this machine still holds are all written.
      return [...held.keys()].filter((id) => holds(id, me, held.get(id))).length
    }
  }
}

// The session registry in Redis (REDIS_URL): the same interface (FleetRegistry)
// and contract as the in-memory one (lib/session/registry.ts), shared by every machine of
// the fleet. Records hold no secrets (the Session type has none). Every step
// that counts and writes is one Lua script (lua.ts; key names in keys.ts).
//
// Fencing: each session has a token, 1 at insert and one more per claim by
// another machine. This machine keeps the token it was granted for each
// session it runs and every write (update, finish, sealed credentials)
// carries it; the registry refuses a write whose machine no longer runs the
// session or whose token is stale, and `onRefused` hears of it (the machine
// drops that session at once).
import type { Redis } from 'ioredis'
import { capacityError, claimedRecord, sameKey, type FleetRegistry } from '../session/registry.ts'
import { isFinal, type Session } from '../session/types.ts'
import { registry as call } from './machines.ts'
import { PREFIX, fleetKeys } from './keys.ts'
import { CLAIM, FINISH, HOLDS, INSERT, PRUNE, PUT_SEALED, REMOVE, RESTORE, TOUCH, UPDATE } from './lua.ts'

export interface RedisRegistryOptions {
  redis: Redis
  /** This machine: the owner of the sessions it inserts. */
  instanceId: string
  retainEndedMs: number
  maxRetained?: number
  prefix?: string
}

const parse = (json: string | null): Session | undefined => json === null ? undefined : JSON.parse(json) as Session

export function createRedisRegistry (opts: RedisRegistryOptions): FleetRegistry {
  const { redis, instanceId: me } = opts
  const p = opts.prefix ?? PREFIX
  const K = fleetKeys(p)
  const maxRetained = opts.maxRetained ?? 1000
  /** This machine's live records as last written, for resync. */
  const mine = new Map<string, Session>()
  /** The fencing token this machine holds for each session it runs. */
  const tokens = new Map<string, string>()
  const refusedListeners: Array<(id: string, what: string) => void> = []
  const refused = (id: string, what: string): void => {
    mine.delete(id)
    tokens.delete(id)
    for (const fn of refusedListeners) fn(id, what)
  }

  /** Ends this machine could not write (Redis unreachable): written at the next resync, with their token. */
  const unwritten = new Map<string, { session: Session, tok: string }>()
  async function writeEnd (session: Session, tok: string): Promise<void> {
    let r: unknown
    try {
      r = await call(async () => await redis.eval(FINISH, 0, p, session.id, session.ownerId, JSON.stringify(session), session.endedAt ?? Date.now(), maxRetained, me, tok, '0'))
    } catch (err) {
      unwritten.set(session.id, { session, tok })
      throw err
    }
    unwritten.delete(session.id)
    if (r !== 1) refused(session.id, 'finish')
  }

  const records = async (ids: string[]): Promise<Session[]> =>
    ids.length === 0 ? [] : (await redis.mget(ids.map(K.record))).map(parse).filter((s): s is Session => s !== undefined)

  return {
    async insert (session, caps, same) {
      const json = JSON.stringify(session)
      const r = await call(async () => await redis.eval(INSERT, 0, p, session.id, session.ownerId, me, json, caps.maxSessions, caps.maxPerOwner, same ?? ''))
      if (typeof r === 'string') return r
      if (r === 1) throw capacityError('total', caps)
      if (r === 2) throw capacityError('owner', caps)
      mine.set(session.id, structuredClone(session))
      tokens.set(session.id, '1')
      return null
    },
    async update (session) {
      const tok = tokens.get(session.id)
      if (tok === undefined) return // not run here (any more): nothing to write
      mine.set(session.id, structuredClone(session))
      if (await call(async () => await redis.eval(UPDATE, 0, p, session.id, me, JSON.stringify(session), tok)) !== 1) refused(session.id, 'update')
    },
    async get (id) {
      return parse(await call(async () => await redis.get(K.record(id))))
    },
    async listByOwner (ownerId) {
      return await call(async () => {
        const [live, ended] = await Promise.all([redis.smembers(K.owned(ownerId)), redis.zrange(K.endedOf(ownerId), '0', '-1')])
        const l = (await records(live)).sort((a, b) => a.startedAt - b.startedAt)
        return [...l, ...await records(ended)]
      })
    },
    async findSame (q) {
      const user = q.username.toLowerCase()
      const live = await call(async () => await records(await redis.smembers(K.owned(q.ownerId))))
      return live.filter((s) => s.foundryUrl === q.foundryUrl && (s.username.toLowerCase() === user || s.info?.userId === q.username))
    },
    async finish (session) {
      if (!isFinal(session.status)) throw new Error(`finish: session ${session.id} is ${session.status}`)
      const tok = tokens.get(session.id)
      if (tok === undefined) return // not run here (any more): another machine answers for it
      mine.delete(session.id)
      tokens.delete(session.id)
      await writeEnd(session, tok)
    },
    async finishOn (session, machine, lapsed = false) {
      if (!isFinal(session.status)) throw new Error(`finish: session ${session.id} is ${session.status}`)
      return await call(async () => await redis.eval(FINISH, 0, p, session.id, session.ownerId, JSON.stringify(session), session.endedAt ?? Date.now(), maxRetained, machine, '', lapsed ? '1' : '0')) === 1
    },
    async remove (id) {
      mine.delete(id)
      tokens.delete(id)
      return await call(async () => await redis.eval(REMOVE, 0, p, id)) === 1
    },
    async prune (now) {
      await call(async () => await redis.eval(PRUNE, 0, p, now - opts.retainEndedMs))
    },
    async liveCount () {
      return await call(async () => await redis.scard(K.liveOn(me)))
    },
    async machinesOf (ids) {
      const out = new Map<string, string>()
      if (ids.length === 0) return out
      const ms = await call(async () => await redis.hmget(K.machineOf, ...ids))
      ids.forEach((id, i) => { const m = ms[i]; if (m !== null && m !== undefined) out.set(id, m) })
      return out
    },
    async liveOn (machine) {
      return await call(async () => await redis.smembers(K.liveOn(machine)))
    },
    async touch (ids, at) {
      if (ids.length > 0) await call(async () => await redis.eval(TOUCH, 0, p, at, ...ids))
    },
    async touched (ids) {
      const out = new Map<string, number>()
      if (ids.length === 0) return out
      const at = await call(async () => await redis.hmget(K.touches, ...ids))
      ids.forEach((id, i) => { const v = at[i]; if (v !== null && v !== undefined) out.set(id, Number(v)) })
      return out
    },
    async claim (id, from, maxSessions, reason, lapsed = false) {
      let json = ''
      if (reason !== undefined) {
        const s = parse(await call(async () => await redis.get(K.record(id))))
        if (s === undefined || isFinal(s.status)) return false
        json = JSON.stringify(claimedRecord(s, reason, Date.now()))
      }
      const tok = Number(await call(async () => await redis.eval(CLAIM, 0, p, id, from, me, maxSessions, json, lapsed ? '1' : '0')))
      if (tok > 0) {
        tokens.set(id, String(tok))
        const s = parse(await call(async () => await redis.get(K.record(id))))
        if (s !== undefined) mine.set(id, s)
      }
      return tok > 0
    },
    disown (id) { mine.delete(id); tokens.delete(id) },
    async holds (ids) {
      const asked = ids.filter((id) => tokens.has(id))
      if (asked.length === 0) return new Set()
      const r = await call(async () => await redis.eval(HOLDS, 0, p, me, ...asked.flatMap((id) => [id, tokens.get(id)!]))) as number[]
      return new Set(asked.filter((_, i) => r[i] === 1))
    },
    async putSealed (id, sealed) {
      const tok = tokens.get(id)
      if (tok === undefined) return // not run here (any more)
      if (await call(async () => await redis.eval(PUT_SEALED, 0, p, id, me, tok, sealed)) !== 1) refused(id, 'sealed credentials')
    },
    async sealed (id) {
      return await call(async () => await redis.get(K.sealed(id)))
    },
    onRefused (fn) { refusedListeners.push(fn) },
    async resync () {
      // Ends first: a session that ended while Redis was away must not stay live there.
      for (const { session, tok } of [...unwritten.values()]) await writeEnd(session, tok)
      let n = 0
      for (const s of [...mine.values()]) {
        const tok = tokens.get(s.id)
        if (tok === undefined) continue
        const lock = sameKey(s.ownerId, s.foundryUrl, s.username, s.worldName)
        n += Number(await call(async () => await redis.eval(RESTORE, 0, p, s.id, s.ownerId, me, JSON.stringify(s), lock, tok)))
      }
      return n
    }
  }
}

// The session registry in Redis (REDIS_URL): the same interface and contract
// as the in-memory one (lib/session/registry.ts), shared by every machine of
// the fleet. Records hold no secrets (the Session type has none). Every step
// that counts and writes is one Lua script, so two machines never both take
// the last slot.
//
// Keys, under a prefix (default `fs:`):
//   s:<id>          JSON record (live or retained)
//   sm              hash: session id → machine that runs it
//   live:<machine>  set: live ids on that machine (its MAX_SESSIONS, liveCount)
//   own:<ownerId>   set: live ids of an API key, fleet-wide (MAX_SESSIONS_PER_KEY, findSame)
//   end:<ownerId>   zset: retained ids by endedAt
//   ended           zset: every retained id by endedAt (prune, the retention bound)
//   same:<lock>     the live session holding a start lock (key, Foundry, user, world)
//   lock            hash: session id → its start lock
//   act             hash: session id → last API call for it made on another machine (ms)
//   seal:<id>       the session's credentials sealed with SESSION_SEAL_KEY (only with one)
import type { Redis } from 'ioredis'
import { capacityError, sameKey, type SessionRegistry } from '../session/registry.js'
import { isFinal, type Session } from '../session/types.js'
import { registry as call } from './machines.js'

export interface RedisRegistryOptions {
  redis: Redis
  /** This machine: the owner of the sessions it inserts. */
  instanceId: string
  retainEndedMs: number
  maxRetained?: number
  prefix?: string
}

export interface RedisSessionRegistry extends SessionRegistry {
  /** The machine running each of these sessions (absent when unknown). */
  machinesOf: (ids: string[]) => Promise<Map<string, string>>
  /** Live ids on a machine. */
  liveOn: (machine: string) => Promise<string[]>
  /** Write this machine's live records again (after Redis came back, possibly empty). */
  resync: () => Promise<number>
  /**
   * Move a live session from machine `from` to this machine, if it is still
   * on `from` (one claimer wins) and this machine has room (`from` itself
   * always has room for its own). True when claimed. With a reason, the
   * record says `reconnecting` with it from the same step on.
   */
  claim: (id: string, from: string, maxSessions: number, reason?: string) => Promise<boolean>
  /** This machine no longer runs the session (it was claimed by another): stop re-registering it. */
  disown: (id: string) => void
  /** Keep a session's sealed credentials (deleted with the record); only while it is live. */
  putSealed: (id: string, sealed: string) => Promise<void>
  sealed: (id: string) => Promise<string | null>
}

// Shared Lua: the machine running a live session, or false (sm keeps the machine of ended ones too).
const RUNNER = `
local function runner(p, id)
  local m = redis.call('HGET', p .. 'sm', id)
  if m and redis.call('SISMEMBER', p .. 'live:' .. m, id) == 1 then return m end
  return false
end
-- The record, its machine, and the machine's and the owner's live sets.
local function place(p, id, owner, m, json)
  redis.call('SET', p .. 's:' .. id, json)
  redis.call('HSET', p .. 'sm', id, m)
  redis.call('SADD', p .. 'live:' .. m, id)
  redis.call('SADD', p .. 'own:' .. owner, id)
end
`

// Shared Lua: a session is no longer live: its start lock, touches and sealed credentials go.
const RELEASE = `
local function release(p, id)
  local k = redis.call('HGET', p .. 'lock', id)
  if k then
    if redis.call('GET', p .. 'same:' .. k) == id then redis.call('DEL', p .. 'same:' .. k) end
    redis.call('HDEL', p .. 'lock', id)
  end
  redis.call('HDEL', p .. 'act', id)
  redis.call('DEL', p .. 'seal:' .. id)
end
`

// Shared Lua: forget one session everywhere. ARGV-free: p is the prefix, id the session.
const FORGET = RELEASE + `
local function forget(p, id)
  local json = redis.call('GET', p .. 's:' .. id)
  if not json then return 0 end
  local s = cjson.decode(json)
  local m = redis.call('HGET', p .. 'sm', id)
  if m then redis.call('SREM', p .. 'live:' .. m, id) end
  release(p, id)
  redis.call('SREM', p .. 'own:' .. s.ownerId, id)
  redis.call('ZREM', p .. 'end:' .. s.ownerId, id)
  redis.call('ZREM', p .. 'ended', id)
  redis.call('HDEL', p .. 'sm', id)
  redis.call('DEL', p .. 's:' .. id)
  return 1
end
`

// ARGV: prefix, id, owner, machine, json, maxSessions, maxPerOwner, start lock ('' for none)
// → 0 inserted, 1 machine full, 2 key at its cap, or the id of the live session holding the lock.
const INSERT = RUNNER + `
local p, id, owner, m, json, lock = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[8]
if lock ~= '' then
  local held = redis.call('GET', p .. 'same:' .. lock)
  if held and runner(p, held) then return held end
end
if redis.call('SCARD', p .. 'live:' .. m) >= tonumber(ARGV[6]) then return 1 end
if redis.call('SCARD', p .. 'own:' .. owner) >= tonumber(ARGV[7]) then return 2 end
if lock ~= '' then
  redis.call('SET', p .. 'same:' .. lock, id)
  redis.call('HSET', p .. 'lock', id, lock)
end
place(p, id, owner, m, json)
return 0
`

// ARGV: prefix, id, machine, json — only while live, and only by the machine running it
// (a late write of a machine that handed the session over changes nothing).
const UPDATE = RUNNER + `
local p, id, m, json = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if runner(p, id) == m then redis.call('SET', p .. 's:' .. id, json) return 1 end
return 0
`

// ARGV: prefix, id, from, to, maxSessions, json ('' to keep the record) — move a live session to another machine (one claimer).
const CLAIM = RUNNER + `
local p, id, from, to = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if runner(p, id) ~= from then return 0 end
if from ~= to and redis.call('SCARD', p .. 'live:' .. to) >= tonumber(ARGV[5]) then return 0 end
if ARGV[6] ~= '' then redis.call('SET', p .. 's:' .. id, ARGV[6]) end
redis.call('SREM', p .. 'live:' .. from, id)
redis.call('SADD', p .. 'live:' .. to, id)
redis.call('HSET', p .. 'sm', id, to)
return 1
`

// ARGV: prefix, id, sealed — only while live.
const PUT_SEALED = RUNNER + `
if runner(ARGV[1], ARGV[2]) then redis.call('SET', ARGV[1] .. 'seal:' .. ARGV[2], ARGV[3]) return 1 end
return 0
`

// ARGV: prefix, at, ids… — the latest API call made elsewhere, live sessions only.
const TOUCH = RUNNER + `
local p, at = ARGV[1], tonumber(ARGV[2])
for i = 3, #ARGV do
  local id = ARGV[i]
  if runner(p, id) and at > tonumber(redis.call('HGET', p .. 'act', id) or '0') then redis.call('HSET', p .. 'act', id, at) end
end
return 1
`

// ARGV: prefix, id, owner, json, endedAt, maxRetained
const FINISH = FORGET + `
local p, id, owner, json, at, max = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local m = redis.call('HGET', p .. 'sm', id)
if m then redis.call('SREM', p .. 'live:' .. m, id) end
release(p, id)
redis.call('SREM', p .. 'own:' .. owner, id)
redis.call('SET', p .. 's:' .. id, json)
redis.call('ZADD', p .. 'end:' .. owner, at, id)
redis.call('ZADD', p .. 'ended', at, id)
while redis.call('ZCARD', p .. 'ended') > max do
  local oldest = redis.call('ZRANGE', p .. 'ended', 0, 0)[1]
  forget(p, oldest)
end
return 1
`

// ARGV: prefix, id
const REMOVE = FORGET + 'return forget(ARGV[1], ARGV[2])'

// ARGV: prefix, upTo (endedAt ≤ upTo goes)
const PRUNE = FORGET + `
local ids = redis.call('ZRANGEBYSCORE', ARGV[1] .. 'ended', '-inf', ARGV[2])
for _, id in ipairs(ids) do forget(ARGV[1], id) end
return #ids
`

// ARGV: prefix, id, owner, machine, json, start lock — put a live record back (resync), no caps.
const RESTORE = RUNNER + `
local p, id, owner, m, json, lock = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('ZSCORE', p .. 'ended', id) then return 0 end
local cur = runner(p, id)
if cur and cur ~= m then return 0 end
if not redis.call('GET', p .. 'same:' .. lock) then
  redis.call('SET', p .. 'same:' .. lock, id)
  redis.call('HSET', p .. 'lock', id, lock)
end
place(p, id, owner, m, json)
return 1
`

const parse = (json: string | null): Session | undefined => json === null ? undefined : JSON.parse(json) as Session

export function createRedisRegistry (opts: RedisRegistryOptions): RedisSessionRegistry {
  const { redis, instanceId: me } = opts
  const p = opts.prefix ?? 'fs:'
  const maxRetained = opts.maxRetained ?? 1000
  /** This machine's live records as last written, for resync. */
  const mine = new Map<string, Session>()

  const records = async (ids: string[]): Promise<Session[]> =>
    ids.length === 0 ? [] : (await redis.mget(ids.map((id) => `${p}s:${id}`))).map(parse).filter((s): s is Session => s !== undefined)

  return {
    async insert (session, caps, same) {
      const json = JSON.stringify(session)
      const r = await call(async () => await redis.eval(INSERT, 0, p, session.id, session.ownerId, me, json, caps.maxSessions, caps.maxPerOwner, same ?? ''))
      if (typeof r === 'string') return r
      if (r === 1) throw capacityError('total', caps)
      if (r === 2) throw capacityError('owner', caps)
      mine.set(session.id, structuredClone(session))
      return null
    },
    async update (session) {
      if (mine.has(session.id)) mine.set(session.id, structuredClone(session))
      await call(async () => await redis.eval(UPDATE, 0, p, session.id, me, JSON.stringify(session)))
    },
    async get (id) {
      return parse(await call(async () => await redis.get(`${p}s:${id}`)))
    },
    async listByOwner (ownerId) {
      return await call(async () => {
        const [live, ended] = await Promise.all([redis.smembers(`${p}own:${ownerId}`), redis.zrange(`${p}end:${ownerId}`, '0', '-1')])
        const l = (await records(live)).sort((a, b) => a.startedAt - b.startedAt)
        return [...l, ...await records(ended)]
      })
    },
    async findSame (q) {
      const user = q.username.toLowerCase()
      const live = await call(async () => await records(await redis.smembers(`${p}own:${q.ownerId}`)))
      return live.filter((s) => s.foundryUrl === q.foundryUrl && (s.username.toLowerCase() === user || s.info?.userId === q.username))
    },
    async finish (session) {
      if (!isFinal(session.status)) throw new Error(`finish: session ${session.id} is ${session.status}`)
      mine.delete(session.id)
      await call(async () => await redis.eval(FINISH, 0, p, session.id, session.ownerId, JSON.stringify(session), session.endedAt ?? Date.now(), maxRetained))
    },
    async remove (id) {
      mine.delete(id)
      return await call(async () => await redis.eval(REMOVE, 0, p, id)) === 1
    },
    async prune (now) {
      await call(async () => await redis.eval(PRUNE, 0, p, now - opts.retainEndedMs))
    },
    async liveCount () {
      return await call(async () => await redis.scard(`${p}live:${me}`))
    },
    async machinesOf (ids) {
      const out = new Map<string, string>()
      if (ids.length === 0) return out
      const ms = await call(async () => await redis.hmget(`${p}sm`, ...ids))
      ids.forEach((id, i) => { const m = ms[i]; if (m !== null && m !== undefined) out.set(id, m) })
      return out
    },
    async liveOn (machine) {
      return await call(async () => await redis.smembers(`${p}live:${machine}`))
    },
    async touch (ids, at) {
      if (ids.length > 0) await call(async () => await redis.eval(TOUCH, 0, p, at, ...ids))
    },
    async touched (ids) {
      const out = new Map<string, number>()
      if (ids.length === 0) return out
      const at = await call(async () => await redis.hmget(`${p}act`, ...ids))
      ids.forEach((id, i) => { const v = at[i]; if (v !== null && v !== undefined) out.set(id, Number(v)) })
      return out
    },
    async claim (id, from, maxSessions, reason) {
      let json = ''
      if (reason !== undefined) {
        const s = parse(await call(async () => await redis.get(`${p}s:${id}`)))
        if (s === undefined || isFinal(s.status)) return false
        const t = Date.now()
        json = JSON.stringify({
          ...s,
          status: 'reconnecting',
          statusReason: reason,
          statusChangedAt: t,
          stage: null,
          module: s.module === null ? null : { ...s.module, connected: false, since: t, reason: 'not connected: the session is moving to another machine', revivable: false, lastSeenAt: t, revivedAt: null }
        } satisfies Session)
      }
      const ok = await call(async () => await redis.eval(CLAIM, 0, p, id, from, me, maxSessions, json)) === 1
      if (ok) { const s = parse(await call(async () => await redis.get(`${p}s:${id}`))); if (s !== undefined) mine.set(id, s) }
      return ok
    },
    disown (id) { mine.delete(id) },
    async putSealed (id, sealed) {
      await call(async () => await redis.eval(PUT_SEALED, 0, p, id, sealed))
    },
    async sealed (id) {
      return await call(async () => await redis.get(`${p}seal:${id}`))
    },
    async resync () {
      let n = 0
      for (const s of mine.values()) {
        const lock = sameKey(s.ownerId, s.foundryUrl, s.username, s.worldName)
        n += Number(await call(async () => await redis.eval(RESTORE, 0, p, s.id, s.ownerId, me, JSON.stringify(s), lock)))
      }
      return n
    }
  }
}

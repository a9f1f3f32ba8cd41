// The fleet in Redis: which machines are alive (heartbeats with a TTL), which
// machine holds each handshake (its private key never leaves that machine),
// and where there is room. No Fastify here; plugins/fleet.ts wires it in.
//
// Keys (all under `fs:`):
//   fs:machine:<id>   JSON {id, sessions, maxSessions, closing, at}, expires after 3 heartbeats
//   fs:machines       set of machine ids ever seen (pruned when their heartbeat is gone)
//   fs:hs:<sha256(token)>  id of the machine that made the handshake, expires with it
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { FleetUnavailable, withContext } from './errors.js'

export interface MachineState {
  id: string
  /** Sessions starting, active or reconnecting on it. */
  sessions: number
  maxSessions: number
  /** Shutting down: takes no new sessions. */
  closing: boolean
  /** When the heartbeat was written (ms). */
  at: number
}

export interface FleetLogger {
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
}

export interface FleetOptions {
  redis: Redis
  instanceId: string
  heartbeatMs: number
  /** This machine's state now, for its heartbeat. */
  state: () => Omit<MachineState, 'id' | 'at'>
  log: FleetLogger
  now?: () => number
}

export interface Fleet {
  readonly instanceId: string
  /** Redis answers now. */
  connected: () => boolean
  /** First heartbeat, then one every heartbeatMs. */
  start: () => Promise<void>
  /** Write the heartbeat now (after a change of room or of closing). */
  beat: () => Promise<void>
  /** Stop beating and remove this machine's heartbeat. */
  stop: () => Promise<void>
  recordHandshake: (token: string, expires: number) => Promise<void>
  /** The machine that made a handshake, or null when none is known. */
  handshakeMachine: (token: string) => Promise<string | null>
  /** Machines whose heartbeat is alive. */
  machines: () => Promise<MachineState[]>
  /** Another live machine with room for a session, if any. */
  otherWithRoom: () => Promise<MachineState | null>
}

export const KEY = {
  machine: (id: string) => `fs:machine:${id}`,
  machines: 'fs:machines',
  handshake: (token: string) => `fs:hs:${digest(token)}`
}

/** Tokens are keyed by their SHA-256: a Redis dump holds no usable token. */
export function digest (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export const RETRY_AFTER_S = 5

/** Run a Redis call; any failure is the one 503 FLEET_UNAVAILABLE. */
export async function registry<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw withContext(Object.assign(new FleetUnavailable(), { cause: err }), { retryAfter: RETRY_AFTER_S })
  }
}

export function createFleet (opts: FleetOptions): Fleet {
  const { redis, instanceId, heartbeatMs, log } = opts
  const now = opts.now ?? Date.now
  const ttlMs = heartbeatMs * 3
  let timer: NodeJS.Timeout | null = null
  let stopped = false

  async function beat (): Promise<void> {
    const s: MachineState = { ...opts.state(), id: instanceId, at: now() }
    await redis.multi()
      .set(KEY.machine(instanceId), JSON.stringify(s), 'PX', ttlMs)
      .sadd(KEY.machines, instanceId)
      .exec()
  }

  function schedule (): void {
    if (stopped) return
    timer = setTimeout(() => {
      beat().catch((err: Error) => { log.warn({ err: err.message }, 'fleet heartbeat failed (Redis unreachable?)') })
        .finally(schedule)
    }, heartbeatMs)
    timer.unref()
  }

  async function machines (): Promise<MachineState[]> {
    const ids = await redis.smembers(KEY.machines)
    if (ids.length === 0) return []
    const values = await redis.mget(ids.map(KEY.machine))
    const live: MachineState[] = []
    const gone: string[] = []
    ids.forEach((id, i) => {
      const v = values[i]
      if (v === null || v === undefined) gone.push(id)
      else live.push(JSON.parse(v) as MachineState)
    })
    if (gone.length > 0) await redis.srem(KEY.machines, ...gone)
    return live
  }

  return {
    instanceId,
    connected: () => redis.status === 'ready',
    async start () {
      stopped = false
      await beat()
      schedule()
    },
    async beat () { await registry(beat) },
    async stop () {
      stopped = true
      if (timer !== null) clearTimeout(timer)
      await redis.del(KEY.machine(instanceId)).catch(() => {})
    },
    async recordHandshake (token, expires) {
      const ms = Math.max(1, expires - now())
      await registry(async () => await redis.set(KEY.handshake(token), instanceId, 'PX', ms))
    },
    async handshakeMachine (token) {
      return await registry(async () => await redis.get(KEY.handshake(token)))
    },
    machines: async () => await registry(machines),
    async otherWithRoom () {
      const all = await registry(machines)
      const room = all.filter((m) => m.id !== instanceId && !m.closing && m.sessions < m.maxSessions)
      room.sort((a, b) => (a.sessions / a.maxSessions) - (b.sessions / b.maxSessions))
      return room[0] ?? null
    }
  }
}

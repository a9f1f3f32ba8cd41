// The fleet in Redis: which machines are alive (heartbeats with a TTL), which
// machine holds each handshake (its private key never leaves that machine),
// and where there is room. No Fastify here; plugins/fleet.ts wires it in.
//
// Keys (all under `fs:`):
//   fs:machine:<id>   JSON {id, sessions, maxSessions, closing, at}, expires after 3 heartbeats
//   fs:machines       set of machine ids ever seen (pruned when their heartbeat is gone)
//   fs:hs:<sha256(token)>  id of the machine that made the handshake, expires with it
//   fs:gone:<id>      claim on a lapsed machine's sessions (one claimer), short-lived
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { FleetUnavailable, withContext } from '../errors.js'

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
  /**
   * A machine's heartbeat lapsed (SIGKILL, OOM, lost host) and this machine
   * won the claim to deal with its sessions (exactly one claimer). Also
   * called once at start for this machine's own id: sessions left from its
   * previous life.
   */
  onMachineGone?: (machine: string) => Promise<void>
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
  /** Stop beating and remove this machine's heartbeat (keepListed: it left sessions behind, for the survivors to claim). */
  stop: (keepListed?: boolean) => Promise<void>
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
  handshake: (token: string) => `fs:hs:${digest(token)}`,
  gone: (id: string) => `fs:gone:${id}`
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

  async function scan (): Promise<{ live: MachineState[], gone: string[] }> {
    const ids = await redis.smembers(KEY.machines)
    if (ids.length === 0) return { live: [], gone: [] }
    const values = await redis.mget(ids.map(KEY.machine))
    const live: MachineState[] = []
    const gone: string[] = []
    ids.forEach((id, i) => {
      const v = values[i]
      if (v === null || v === undefined) gone.push(id)
      else live.push(JSON.parse(v) as MachineState)
    })
    return { live, gone }
  }

  /** Lapsed at the previous sweep too: a machine is taken as gone only after two sweeps in a row. */
  let suspects = new Set<string>()

  /** Claim each lapsed machine (SET NX: one claimer), deal with its sessions, then forget it. */
  async function sweep (): Promise<void> {
    // A machine shutting down takes nothing over: the others will.
    if (opts.state().closing) return
    const { gone } = await scan()
    const before = suspects
    suspects = new Set(gone)
    for (const id of gone) {
      if (id === instanceId || !before.has(id)) continue
      if (await redis.set(KEY.gone(id), instanceId, 'PX', ttlMs * 5, 'NX') !== 'OK') continue
      log.warn({ machine: id }, 'a machine of the fleet stopped without a word (heartbeat lapsed): taking care of its sessions')
      await opts.onMachineGone?.(id)
      await redis.srem(KEY.machines, id)
    }
  }

  function schedule (): void {
    if (stopped) return
    timer = setTimeout(() => {
      beat().then(sweep).catch((err: Error) => { log.warn({ err: err.message }, 'fleet heartbeat failed (Redis unreachable?)') })
        .finally(schedule)
    }, heartbeatMs)
    timer.unref()
  }

  async function machines (): Promise<MachineState[]> {
    return (await scan()).live
  }

  return {
    instanceId,
    connected: () => redis.status === 'ready',
    async start () {
      stopped = false
      // Sessions this machine id held in a previous life (a restart after a
      // crash or a deploy, or every machine down at once) are dealt with
      // first — unless a survivor has claimed them already (one claimer).
      if (await redis.set(KEY.gone(instanceId), instanceId, 'PX', ttlMs * 5, 'NX') === 'OK') {
        try {
          await opts.onMachineGone?.(instanceId)
        } finally {
          await redis.del(KEY.gone(instanceId))
        }
      }
      await beat()
      schedule()
    },
    async beat () { await registry(beat) },
    async stop (keepListed = false) {
      stopped = true
      if (timer !== null) clearTimeout(timer)
      // Still listed (sessions left behind for another machine to take over):
      // the survivors see its heartbeat lapse and claim them.
      const m = redis.multi().del(KEY.machine(instanceId))
      await (keepListed ? m : m.srem(KEY.machines, instanceId)).exec().catch(() => {})
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

// The fleet in Redis: which machines are alive (heartbeats with a TTL), which
// machine holds each handshake (its private key never leaves that machine),
// and where there is room. No Fastify here; plugins/fleet.ts wires it in.
// Key names: keys.ts.
//
// A heartbeat is its machine's lease (3 heartbeats long). A machine that
// could not renew it for half its life is fenced: it stops acting for the
// fleet (onFenced: its pages close, requests that need Redis get 503, it
// reports unhealthy) before any other machine may take its sessions (only
// once the lease expired, and two sweeps saw it gone). When a renewal works
// again after a fence (Redis reachable again, or the event loop back after a
// stall), onRenewed runs before the machine acts again (acting()).
import type { Redis } from 'ioredis'
import { FLEET_RETRY_AFTER_S, FleetUnavailable, withContext } from '../errors.ts'
import { KEY, digest } from './keys.ts'
import { isMachineId } from './messages.ts'
import type { Logger } from '../logger.ts'

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

export interface FleetOptions {
  redis: Redis
  instanceId: string
  heartbeatMs: number
  /** This machine's state now, for its heartbeat. */
  state: () => Omit<MachineState, 'id' | 'at'>
  log: Logger
  /**
   * A machine's heartbeat lapsed (SIGKILL, OOM, lost host) and this machine
   * won the claim to deal with its sessions (exactly one claimer). Also
   * called once at start for this machine's own id: sessions left from its
   * previous life.
   */
  onMachineGone?: (machine: string) => Promise<void>
  /** The lease is half gone: stop acting for the fleet now (synchronous first step: close the pages). */
  onFenced?: () => void
  /** A renewal worked after a fence: find out what is still this machine's, then act again. */
  onRenewed?: () => Promise<void>
  /** The lease was renewed (until: the local time the lease-holder may act until). */
  onLease?: (until: number) => void
  now?: () => number
}

export interface Fleet {
  readonly instanceId: string
  /** Redis answers now. */
  connected: () => boolean
  /** The lease holds and no fence is being recovered from: this machine may act for the fleet. */
  acting: () => boolean
  /** How long a lease lasts (3 heartbeats). */
  readonly leaseMs: number
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

export { KEY, digest }

/** Run a Redis call; any failure is the one 503 FLEET_UNAVAILABLE. */
export async function registry<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw withContext(Object.assign(new FleetUnavailable(), { cause: err }), { retryAfter: FLEET_RETRY_AFTER_S })
  }
}

export function createFleet (opts: FleetOptions): Fleet {
  const { redis, instanceId, heartbeatMs, log } = opts
  const now = opts.now ?? Date.now
  const ttlMs = heartbeatMs * 3
  const halfLease = ttlMs / 2
  let timer: NodeJS.Timeout | null = null
  let stopped = false
  /** Local time the last renewal that worked was sent (its lease runs from no earlier). */
  let renewedAt = -Infinity
  /** Fenced, and not yet recovered (onRenewed not finished). */
  let fenced = false
  let recovering: Promise<void> | null = null

  function fence (): void {
    if (fenced) return
    fenced = true
    log.warn({ leaseMs: ttlMs, sinceRenewalMs: now() - renewedAt }, 'cut off from the fleet: the lease could not be renewed for half its life; closing this machine\'s pages, refusing fleet requests until Redis answers again')
    try { opts.onFenced?.() } catch (err) { log.warn({ err: (err as Error).message }, 'fencing this machine failed') }
  }

  async function beat (): Promise<void> {
    const sentAt = now()
    const s: MachineState = { ...opts.state(), id: instanceId, at: sentAt }
    const res = await redis.multi()
      .set(KEY.machine(instanceId), JSON.stringify(s), 'PX', ttlMs)
      .sadd(KEY.machines, instanceId)
      .exec()
    if (res === null || res.some(([err]) => err !== null)) throw new Error('heartbeat refused')
    // Lapsed between the last renewal and this one (a stalled process): fenced all along.
    if (sentAt - renewedAt > halfLease && renewedAt !== -Infinity) fence()
    if (sentAt > renewedAt) renewedAt = sentAt
    opts.onLease?.(renewedAt + halfLease)
    if (fenced && recovering === null) {
      recovering = (async () => {
        try {
          await opts.onRenewed?.()
          fenced = false
          log.info({}, 'back in the fleet: the lease is renewed')
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'coming back to the fleet failed: trying again at the next heartbeat')
        } finally { recovering = null }
      })()
    }
  }

  const leaseOk = (): boolean => now() - renewedAt <= halfLease
  // The watchdog: fences as soon as the lease is half gone, whatever else runs.
  const watchdog = setInterval(() => { if (!stopped && renewedAt !== -Infinity && !leaseOk()) fence() }, Math.max(20, Math.floor(heartbeatMs / 4)))
  watchdog.unref()

  async function scan (): Promise<{ live: MachineState[], gone: string[] }> {
    const ids = await redis.smembers(KEY.machines)
    if (ids.length === 0) return { live: [], gone: [] }
    const values = await redis.mget(ids.map(KEY.machine))
    const live: MachineState[] = []
    const gone: string[] = []
    ids.forEach((id, i) => {
      const v = values[i]
      if (!isMachineId(id)) return // not a machine id: never routed to, never claimed from
      if (v === null || v === undefined) { gone.push(id); return }
      try {
        const m = JSON.parse(v) as MachineState
        if (m !== null && typeof m === 'object' && m.id === id) live.push(m)
      } catch {}
    })
    return { live, gone }
  }

  /** Lapsed at the previous sweep too: a machine is taken as gone only after two sweeps in a row. */
  let suspects = new Set<string>()

  /** Claim each lapsed machine (SET NX: one claimer), deal with its sessions, then forget it. */
  async function sweep (): Promise<void> {
    // A machine shutting down, or not acting for the fleet, takes nothing over: the others will.
    if (opts.state().closing || !acting()) return
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

  /**
   * The lease is renewed three times a heartbeat (a stall or a slow Redis
   * has a whole heartbeat of margin before half the lease is gone); the
   * other machines are swept once a heartbeat.
   */
  let beats = 0
  function schedule (): void {
    if (stopped) return
    timer = setTimeout(() => {
      const sweepToo = ++beats % 3 === 0
      beat().then(async () => { if (sweepToo) await sweep() }).catch((err: Error) => { log.warn({ err: err.message }, 'fleet heartbeat failed (Redis unreachable?)') })
        .finally(schedule)
    }, Math.ceil(heartbeatMs / 3))
    timer.unref()
  }

  function acting (): boolean { return !fenced && leaseOk() }

  async function machines (): Promise<MachineState[]> {
    return (await scan()).live
  }

  return {
    instanceId,
    connected: () => redis.status === 'ready',
    acting,
    leaseMs: ttlMs,
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
      clearInterval(watchdog)
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

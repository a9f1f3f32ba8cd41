// The fleet's decisions, in one place, taking its collaborators as arguments:
// the registry (records, claims, fencing tokens), the heartbeat (machines,
// lease), the handover (offers), the sessions of this machine, and the
// sealer. plugins/fleet.ts only wires them. What to do with a session of a
// lapsed machine (adopt it here, pass it on, fail it), whether an offer may be
// taken, handing sessions over on shutdown, coming back after a fence, and
// where a request about a session is served (route(): a pure function of
// facts). Every status change goes through lib/session/machine.ts.
import type { Credentials, Session } from '../session/types.ts'
import { isFinal } from '../session/types.ts'
import { next } from '../session/machine.ts'
import type { FleetRegistry } from '../session/registry.ts'
import type { Fleet, MachineState } from './machines.ts'
import type { Logger } from '../logger.ts'
import type { Handover } from './handover.ts'
import { isMachineId } from './messages.ts'
import { openCredentials, type Sealer } from './seal.ts'

/** What the coordinator needs of this machine's sessions (lib/session/manager.ts). */
export interface CoordinatedSessions {
  takeOver: (record: Session, credentials: Credentials, reason: string) => void
  release: (id: string, reason?: string) => Promise<boolean>
  running: () => Session[]
  ids: () => string[]
  keepAgain: () => Promise<number>
}

export interface CoordinatorMetrics {
  recovery: (result: 'ok' | 'failed' | 'no_seal_key') => void
  handover: (direction: 'in' | 'out', result: 'ok' | 'failed') => void
}

export interface CoordinatorDeps {
  me: string
  maxSessions: number
  registry: FleetRegistry
  heartbeat: Pick<Fleet, 'machines' | 'acting'>
  handover: Pick<Handover, 'offer'>
  sessions: CoordinatedSessions
  sealer: Sealer | null
  /** This machine is shutting down. */
  closing: () => boolean
  log: Logger
  metrics?: CoordinatorMetrics
  /**
   * A session this machine failed or ended away from its page (its record
   * written here, so by this machine only), with its own webhook when its
   * sealed credentials open here (nothing else of them): session.failed or
   * session.ended goes out once (lib/webhooks/notifier.ts decided).
   */
  onDecided?: (session: Session, webhook: { webhookUrl?: string, webhookSecret?: string } | null) => void
}

export interface Coordinator {
  /** A lapsed machine's sessions (or this machine's previous life's): adopt, pass on, or fail each. */
  machineGone: (machine: string) => Promise<void>
  /** Whether an offer of `id` on `owner`, sent by `from`, may be taken at all. */
  acceptOffer: (id: string, owner: string, from: string) => Promise<boolean>
  /** Take an offered session in the registry (true), or decline. */
  claimOffered: (id: string, owner: string, reason?: string) => Promise<boolean>
  /** A claimed offered session is free to log in here. */
  adoptOffered: (id: string, owner: string, recovery?: string) => Promise<void>
  /** Shutdown: hand every running session to a machine with room; the number left behind. */
  handOverAll: () => Promise<number>
  /** Back after a fence: put back what Redis lost, drop what runs elsewhere now. */
  comeBack: () => Promise<void>
  /** A write of this machine was refused: drop the session here at once. */
  refused: (id: string, what: string) => void
  /**
   * End-session of a session whose machine is gone (its lease ran out, nobody
   * took it over yet): ended here, only while that machine's heartbeat is
   * still gone; false when the write was refused (someone took it: retry).
   */
  endGone: (id: string, machine: string, reason: string) => Promise<boolean>
}

/** Other live machines that take sessions, the emptiest first. */
export function withRoom (machines: MachineState[], me: string): string[] {
  return machines.filter((m) => m.id !== me && isMachineId(m.id) && !m.closing && m.sessions < m.maxSessions)
    .sort((a, b) => (a.sessions / a.maxSessions) - (b.sessions / b.maxSessions))
    .map((m) => m.id)
}

export function createCoordinator (d: CoordinatorDeps): Coordinator {
  const { me, registry, sessions, sealer, log } = d
  const handedOver = (owner: string): string => `handed over by machine ${owner} (shutting down) to machine ${me}`

  /**
   * End a live record, saying why: one this machine runs now (claimed, with
   * its token), or one of machine `on` (a lapsed machine: its lease ran out,
   * it no longer acts, and only while its heartbeat is still gone; or this
   * machine's previous life, whose tokens this process never held).
   */
  async function fail (id: string, reason: string, on = me): Promise<boolean> {
    return await close(id, 'failed', reason, on)
  }

  async function close (id: string, status: 'failed' | 'ended', reason: string, on: string): Promise<boolean> {
    const s = await registry.get(id)
    if (s === undefined || isFinal(s.status)) return false
    // Opened before the write, which deletes them: the session's own webhook is in them.
    const opened = d.onDecided !== undefined ? await credentialsOf(id, true) : null
    const over = next(s, { type: 'over', status, reason }, Date.now())
    const written = (await registry.holds([id])).has(id)
      ? await registry.finish(over).then(() => true)
      : await registry.finishOn(over, on, on !== me)
    // Written here and nowhere else (a refused write tells nothing): told once, by this machine.
    if (written) {
      const secrets = opened?.credentials.secrets
      d.onDecided?.(over, secrets === undefined ? null : { webhookUrl: secrets.webhookUrl, webhookSecret: secrets.webhookSecret })
    }
    return written
  }

  /** A session's record and its sealed credentials, opened here; null when there are none or they do not open with this machine's keys. */
  async function credentialsOf (id: string, quiet = false): Promise<{ session: Session, credentials: Credentials } | null> {
    const [s, sealed] = await Promise.all([registry.get(id), registry.sealed(id)])
    if (s === undefined || isFinal(s.status) || sealer === null || sealed === null) return null
    try {
      return { session: s, credentials: openCredentials(sealer, id, sealed, { ownerId: s.ownerId, foundryUrl: s.foundryUrl, username: s.username }) }
    } catch (err) {
      if (!quiet) log.warn({ sessionId: id, err: (err as Error).message }, 'sealed credentials do not open here (is every SESSION_SEAL_KEY of the fleet in this machine\'s keyring?)')
      return null
    }
  }

  /**
   * A session the registry now says this machine runs: log it in here from
   * its sealed credentials (same id and clientId), or fail it saying why.
   * False when it could not be run.
   */
  async function adopt (id: string, reason: string): Promise<boolean> {
    const opened = await credentialsOf(id)
    if (opened === null) {
      await fail(id, `${reason}, but its sealed credentials were not kept or do not open on machine ${me}: start it again`)
      return false
    }
    sessions.takeOver(opened.session, opened.credentials, reason)
    log.info({ sessionId: id }, `taking the session over: ${reason}`)
    return true
  }

  async function roomElsewhere (): Promise<string[]> {
    return withRoom(await d.heartbeat.machines().catch(() => []), me)
  }

  return {
    async machineGone (machine) {
      const previousLife = machine === me
      const why = previousLife ? `its machine ${machine} restarted` : `its machine ${machine} stopped (deploy, crash or lost host)`
      for (const id of await registry.liveOn(machine)) {
        const s = await registry.get(id)
        if (s === undefined || isFinal(s.status)) continue
        // A failure refused: the machine is back (its heartbeat renewed), or another machine took the session.
        if (sealer === null) {
          if (await fail(id, `${why}; without SESSION_SEAL_KEY no machine can log it back in: start it again`, machine)) {
            d.metrics?.recovery('no_seal_key')
            log.warn({ sessionId: id, machine }, 'session of a stopped machine marked failed')
          }
          continue
        }
        if (s.status === 'starting') {
          if (await fail(id, `${why} while it was logging in: start it again`, machine)) d.metrics?.recovery('failed')
          continue
        }
        const reason = `${why}: taken over by machine ${me}`
        // Claimed only while its machine's heartbeat is still gone (it may be back from a stall), and only if its credentials open here.
        if (await credentialsOf(id) !== null && await registry.claim(id, machine, d.maxSessions, reason, !previousLife)) {
          const ok = await adopt(id, reason) // (not inside ?.(): it must run without metrics too)
          d.metrics?.recovery(ok ? 'ok' : 'failed')
          continue
        }
        // No room here (or the credentials do not open here): a machine with room takes it.
        let taken = false
        for (const other of await roomElsewhere()) {
          if (await d.handover.offer(id, machine, other, async () => {}, `${why}: taken over by machine ${other}`)) { taken = true; break }
        }
        // Taken: the taker counts it.
        if (!taken && await fail(id, `${why}, and no machine of the fleet could take it over: start it again`, machine)) {
          d.metrics?.recovery('failed')
        }
      }
    },

    async acceptOffer (_id, owner, from) {
      if (from === owner) return true // the registry's claim checks that `owner` runs it
      const m = (await d.heartbeat.machines()).find((x) => x.id === owner)
      return m === undefined || m.closing
    },

    // A machine that is closing or cut off takes nothing, nor one whose keys do not open the
    // session's credentials (it declines: the giver tries another); the registry checks room and
    // that the session is still where it was offered from.
    async claimOffered (id, owner, reason) {
      return !d.closing() && d.heartbeat.acting() && await credentialsOf(id) !== null &&
        await registry.claim(id, owner, d.maxSessions, reason ?? handedOver(owner))
    },

    async adoptOffered (id, owner, recovery) {
      // recovery: a survivor without room passed on a lapsed machine's session.
      const ok = await adopt(id, recovery ?? handedOver(owner))
      if (recovery !== undefined) d.metrics?.recovery(ok ? 'ok' : 'failed')
      else d.metrics?.handover('in', ok ? 'ok' : 'failed')
    },

    async handOverAll () {
      if (sealer === null) return 0
      const running = sessions.running()
      if (running.length === 0) return 0
      const machines = await d.heartbeat.machines().catch(() => [])
      const room = new Map(machines.filter((m) => m.id !== me && isMachineId(m.id) && !m.closing).map((m) => [m.id, m.maxSessions - m.sessions]))
      log.info({ sessions: running.length, machines: [...room.keys()] }, 'shutting down: handing sessions over to other machines of the fleet')
      let leftBehind = 0
      await Promise.all(running.map(async (s) => {
        for (;;) {
          const target = [...room].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1])[0]?.[0]
          if (target === undefined) break
          room.set(target, room.get(target)! - 1)
          if (await d.handover.offer(s.id, me, target, async () => { await sessions.release(s.id) })) {
            d.metrics?.handover('out', 'ok')
            log.info({ sessionId: s.id, to: target }, 'session handed over')
            return
          }
          room.set(target, 0) // declined or not listening: full, closing, or its keys do not open it
        }
        leftBehind++
        d.metrics?.handover('out', 'failed')
        await sessions.release(s.id, `its machine ${me} shut down and no machine of the fleet had room for it: the next machine to start (or to see this one gone) logs it back in`)
        log.warn({ sessionId: s.id }, 'no machine took the session: left for the next machine to start')
      }))
      return leftBehind
    },

    async comeBack () {
      const n = await registry.resync()
      if (n > 0 && sealer !== null) await sessions.keepAgain()
      const ids = sessions.ids()
      const held = await registry.holds(ids)
      for (const id of ids) {
        if (held.has(id)) continue
        registry.disown(id)
        await sessions.release(id)
        log.warn({ sessionId: id }, 'back in the fleet: this session runs on another machine now (or ended): dropped here')
      }
    },

    refused (id, what) {
      log.warn({ sessionId: id, write: what }, 'the fleet registry refused a write of this machine (another machine runs the session now): dropping it here')
      void sessions.release(id)
    },

    async endGone (id, machine, reason) {
      return await close(id, 'ended', reason, machine)
    }
  }
}

/** What a route about a session knows (registry and heartbeats), for route(). */
export interface RouteFacts {
  me: string
  /** The request was replayed here by Fly's proxy already (fly-replay-src). */
  replayed: boolean
  /** The session's record, as this API key sees it: undefined when unknown or another key's. */
  session: Session | undefined
  /** The machine the registry names for it (undefined: none). */
  machine: string | undefined
  /** Machines whose heartbeat is alive. */
  live: string[]
}

export type Route =
  /** Served here: the session runs here, is over, or is unknown (SESSION_NOT_FOUND from the route). */
  | { to: 'here' }
  /** Replay to the machine running it (fly-replay: instance=…). */
  | { to: 'replay', machine: string }
  /** Replayed already, and it still runs elsewhere: REPLAY_MISSED (never replayed twice). */
  | { to: 'missed', machine: string }
  /** Its machine's lease ran out and nobody took it over yet (or its id is malformed): answered here from the registry. */
  | { to: 'gone', machine: string }

/** Where a request about a session is served: a pure function of the facts. */
export function route (f: RouteFacts): Route {
  const s = f.session
  if (s === undefined || isFinal(s.status)) return { to: 'here' }
  const m = f.machine
  if (m === undefined || m === f.me) return { to: 'here' }
  // Never a malformed id in a fly-replay header: such a record is treated as its machine gone.
  if (!isMachineId(m) || !f.live.includes(m)) return { to: 'gone', machine: m }
  return f.replayed ? { to: 'missed', machine: m } : { to: 'replay', machine: m }
}

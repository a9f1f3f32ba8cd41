// The fleet (REDIS_URL set): a Redis client, this machine's heartbeat, the
// handshake index, and the route hooks that answer a request belonging to
// another machine with `fly-replay` (Fly's proxy replays it there). Without
// REDIS_URL `fleet` is null and the hooks do nothing: one machine, as before.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import { createFleet, RETRY_AFTER_S, type Fleet } from '../lib/fleet/machines.js'
import { createHandover } from '../lib/fleet/handover.js'
import { isMachineId, messageKeys } from '../lib/fleet/messages.js'
import { openCredentials } from '../lib/fleet/seal.js'
import { FleetUnavailable, HandshakeMachineGone, OtherMachine, ReplayMissed, withContext } from '../lib/errors.js'
import { ended } from '../lib/session/machine.js'
import { isFinal, type Credentials, type Session } from '../lib/session/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The fleet registry, or null on a single machine (no REDIS_URL). */
    fleet: Fleet | null
    /** preHandler of POST /session-handshake: a full machine sends the handshake elsewhere. */
    fleetPlaceHandshake: preHandlerAsyncHookHandler
    /** preHandler of POST /start-session: replayed to the machine holding the handshake. */
    fleetRouteStart: preHandlerAsyncHookHandler
    /** preHandler of DELETE /end-session: replayed to the machine running the session. */
    fleetRouteEnd: preHandlerAsyncHookHandler
    /** preHandler of GET /session/{id}/events: replayed to the machine running the session (its events happen there). */
    fleetRouteEvents: preHandlerAsyncHookHandler
  }
}

const noop: preHandlerAsyncHookHandler = async () => {}

const fleetPlugin: FastifyPluginAsync = async (fastify) => {
  const { config, sessions, keystore } = fastify
  if (config.REDIS_URL === '') {
    fastify.decorate('fleet', null)
    fastify.decorate('fleetPlaceHandshake', noop)
    fastify.decorate('fleetRouteStart', noop)
    fastify.decorate('fleetRouteEnd', noop)
    fastify.decorate('fleetRouteEvents', noop)
    return
  }
  const log = fastify.log.child({ plugin: 'fleet' })
  const redis = fastify.redis!
  const registry = fastify.fleetRegistry!

  const { sealer, metrics } = fastify
  const me = config.instanceId
  /** Shutting down: takes no sessions (its heartbeat says so). */
  let closing = false

  /**
   * End a live record, saying why: one this machine runs now (claimed), or
   * one of machine `on` (a lapsed machine: its lease ran out, it no longer acts).
   */
  async function fail (id: string, reason: string, on = me): Promise<void> {
    const s = await registry.get(id)
    if (s === undefined || isFinal(s.status)) return
    const over = ended(s, 'failed', reason, Date.now())
    if (on === me) await registry.finish(over)
    else await registry.finishOn(over, on)
  }

  /** A session's record and its sealed credentials, opened here; null when there are none or they do not open with this machine's keys. */
  async function credentialsOf (id: string): Promise<{ session: Session, credentials: Credentials } | null> {
    const [s, sealed] = await Promise.all([registry.get(id), registry.sealed(id)])
    if (s === undefined || isFinal(s.status) || sealer === null || sealed === null) return null
    try {
      return { session: s, credentials: openCredentials(sealer, id, sealed, { ownerId: s.ownerId, foundryUrl: s.foundryUrl, username: s.username }) }
    } catch (err) {
      log.warn({ sessionId: id, err: (err as Error).message }, 'sealed credentials do not open here (is every SESSION_SEAL_KEY of the fleet in this machine\'s keyring?)')
      return null
    }
  }

  /**
   * A session the registry now says this machine runs: log it in here from
   * its sealed credentials (same id and clientId), or fail it saying why.
   * False when it could not be run.
   */
  async function adopt (id: string, reason: string): Promise<boolean> {
    const s = await registry.get(id)
    if (s === undefined || isFinal(s.status)) return false
    const opened = await credentialsOf(id)
    if (opened === null) {
      await fail(id, `${reason}, but its sealed credentials were not kept or do not open on machine ${me}: start it again`)
      return false
    }
    sessions.takeOver(opened.session, opened.credentials, reason)
    log.info({ sessionId: id }, `taking the session over: ${reason}`)
    return true
  }

  /**
   * The sessions of a machine that stopped without handing them over (or of
   * this machine's previous life). With a seal key they are logged back in
   * here, or on a machine with room; without one nothing secret was stored,
   * so no machine can: they fail, with the reason, listed fleet-wide.
   */
  async function machineGone (machine: string): Promise<void> {
    const previousLife = machine === me
    const why = previousLife ? `its machine ${machine} restarted` : `its machine ${machine} stopped (deploy, crash or lost host)`
    for (const id of await registry.liveOn(machine)) {
      const s = await registry.get(id)
      if (s === undefined || isFinal(s.status)) continue
      if (sealer === null) {
        await fail(id, `${why}; without SESSION_SEAL_KEY no machine can log it back in: start it again`, machine)
        metrics.recoveries.inc({ result: 'no_seal_key' })
        log.warn({ sessionId: id, machine }, 'session of a stopped machine marked failed')
        continue
      }
      if (s.status === 'starting') {
        await fail(id, `${why} while it was logging in: start it again`, machine)
        metrics.recoveries.inc({ result: 'failed' })
        continue
      }
      const reason = `${why}: taken over by machine ${me}`
      // Claimed only while its machine's heartbeat is still gone (it may be back from a stall), and only if its credentials open here.
      if (await credentialsOf(id) !== null && await registry.claim(id, machine, config.MAX_SESSIONS, reason, !previousLife)) {
        metrics.recoveries.inc({ result: await adopt(id, reason) ? 'ok' : 'failed' })
        continue
      }
      // No room here: a machine with room takes it.
      let taken = false
      for (const other of await roomElsewhere()) {
        if (await handover.offer(id, machine, other, async () => {}, `${why}: taken over by machine ${other}`)) { taken = true; break }
      }
      // Taken: the taker counts it.
      if (!taken) {
        await fail(id, `${why}, and no machine of the fleet had room to take it over: start it again`, machine)
        metrics.recoveries.inc({ result: 'failed' })
      }
    }
  }

  /** Other live machines that take sessions, the emptiest first. */
  async function roomElsewhere (): Promise<string[]> {
    const all = await fleet.machines().catch(() => [])
    return all.filter((m) => m.id !== me && !m.closing && m.sessions < m.maxSessions)
      .sort((a, b) => (a.sessions / a.maxSessions) - (b.sessions / b.maxSessions))
      .map((m) => m.id)
  }

  const handedOver = (owner: string): string => `handed over by machine ${owner} (shutting down) to machine ${me}`
  const sub = redis.duplicate()
  sub.on('error', () => {})
  const handover = createHandover({
    redis,
    sub,
    instanceId: me,
    log,
    keys: sealer !== null ? messageKeys(sealer.keys()) : [],
    // From the machine running it (a handover), or for a machine that is closing or gone (passed on by a survivor).
    acceptOffer: async (id, owner, from) => {
      if (from === owner) return true // the registry's claim checks that `owner` runs it
      const m = (await fleet.machines()).find((x) => x.id === owner)
      return m === undefined || m.closing
    },
    // A machine that is closing or cut off takes nothing, nor one whose keys do not open the
    // session's credentials (it declines: the giver tries another); the registry checks room and that
    // the session is still where it was offered from.
    claim: async (id, owner, reason) => !closing && fleet.acting() && await credentialsOf(id) !== null &&
      await registry.claim(id, owner, config.MAX_SESSIONS, reason ?? handedOver(owner)),
    adopt: async (id, owner, recovery) => {
      // recovery: a survivor without room passed on a lapsed machine's session.
      const ok = await adopt(id, recovery ?? handedOver(owner))
      if (recovery !== undefined) metrics.recoveries.inc({ result: ok ? 'ok' : 'failed' })
      else metrics.handovers.inc({ direction: 'in', result: ok ? 'ok' : 'failed' })
    }
  })
  await handover.listen()

  /**
   * SIGTERM (before the sessions end): stop taking sessions, then hand each
   * running one to a machine with room. With no seal key nothing is handed
   * over: the sessions end, as on one machine. A session no machine takes is
   * left in the registry (reconnecting, with the reason) for the next machine
   * to start, or a survivor once this machine's heartbeat lapsed.
   */
  let leftBehind = 0
  async function handOverAll (): Promise<void> {
    closing = true
    await fleet.beat().catch(() => {})
    if (sealer === null) return
    const running = sessions.running()
    if (running.length === 0) return
    const machines = await fleet.machines().catch(() => [])
    const room = new Map(machines.filter((m) => m.id !== me && !m.closing).map((m) => [m.id, m.maxSessions - m.sessions]))
    log.info({ sessions: running.length, machines: [...room.keys()] }, 'shutting down: handing sessions over to other machines of the fleet')
    await Promise.all(running.map(async (s) => {
      for (;;) {
        const target = [...room].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1])[0]?.[0]
        if (target === undefined) break
        room.set(target, room.get(target)! - 1)
        if (await handover.offer(s.id, me, target, async () => { await sessions.release(s.id) })) {
          metrics.handovers.inc({ direction: 'out', result: 'ok' })
          log.info({ sessionId: s.id, to: target }, 'session handed over')
          return
        }
        room.set(target, 0) // declined or not listening: full, or closing too
      }
      leftBehind++
      metrics.handovers.inc({ direction: 'out', result: 'failed' })
      await sessions.release(s.id, `its machine ${me} shut down and no machine of the fleet had room for it: the next machine to start (or to see this one gone) logs it back in`)
      log.warn({ sessionId: s.id }, 'no machine took the session: left for the next machine to start')
    }))
  }
  sessions.beforeShutdown(handOverAll)

  const load = (): number => { const c = sessions.counts(); return c.starting + c.active + c.reconnecting }
  const fleet = createFleet({
    redis,
    instanceId: config.instanceId,
    heartbeatMs: config.FLEET_HEARTBEAT_MS,
    log,
    state: () => ({ sessions: load(), maxSessions: config.MAX_SESSIONS, closing }),
    onMachineGone: machineGone,
    // Half the lease gone: every page closes now, before any other machine may take a session.
    onFenced: () => { void sessions.fence(`cut off from the fleet: machine ${me} could not reach the fleet registry (Redis) for half its lease; the session waits until it does`) },
    onRenewed: comeBack,
    // Each page stops by itself when the lease is half gone (this process may stall while Chromium runs on).
    onLease: (until) => { sessions.extendPageLeases(until) }
  })
  fastify.sessionGate.acting = () => fleet.acting()

  /**
   * Back after a fence: records Redis lost are put back (only where no other
   * machine took them), then every session the registry shows elsewhere, or
   * with another fencing token, is dropped here, its page closed, and never
   * registered again. The rest log back in.
   */
  async function comeBack (): Promise<void> {
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
  }

  // A write refused (stale fencing token, or the session runs elsewhere now): drop the session here at once.
  registry.onRefused((id, what) => {
    log.warn({ sessionId: id, write: what }, 'the fleet registry refused a write of this machine (another machine runs the session now): dropping it here')
    void sessions.release(id)
  })

  // Cut off: requests that need the registry fail at once (503 with Retry-After) instead of waiting on Redis.
  fastify.addHook('onRequest', async (request) => {
    if (fleet.acting()) return
    const path = request.url.split('?')[0] ?? ''
    if (path === '/session-handshake' || path === '/start-session' || path === '/end-session' || path === '/session' || path.startsWith('/session/')) {
      throw withContext(new FleetUnavailable(`Machine ${me} is cut off from the fleet registry (Redis): its sessions wait; retry in a few seconds`), { retryAfter: RETRY_AFTER_S })
    }
  })
  // Redis back (possibly empty): heartbeat and this machine's records again.
  redis.on('ready', () => {
    void fleet.beat().then(async () => await registry.resync()).then(async (n) => {
      if (n > 0) log.info({ sessions: n }, 're-registered this machine\'s sessions in the fleet registry')
      // Their sealed credentials too (a Redis that came back empty lost them).
      if (sealer !== null && n > 0) await sessions.keepAgain()
    }).catch(() => {})
  })
  // The heartbeat carries the load: renew it when a session starts or ends.
  sessions.onEvent((event) => { if (event.type === 'status') void fleet.beat().catch(() => {}) })
  await fleet.start()
  log.info({ instanceId: config.instanceId }, 'joined the fleet')
  fastify.decorate('fleet', fleet)

  fastify.decorate('fleetPlaceHandshake', async function (request: FastifyRequest) {
    if (load() < config.MAX_SESSIONS && !closing) return
    // A replayed request is never replayed again: it is served here (and a
    // start-session then says the fleet is full).
    if (request.headers['fly-replay-src'] !== undefined) return
    const other = await fleet.otherWithRoom()
    if (other === null) return
    throw withContext(new OtherMachine(`Machine ${config.instanceId} is full; another machine of the fleet has room. Fly's proxy replays this request there (fly-replay: elsewhere=true): send requests to the service's Fly.io address`), { replay: 'elsewhere=true' })
  } satisfies preHandlerAsyncHookHandler)

  fastify.decorate('fleetRouteStart', async function (request: FastifyRequest) {
    const token = (request.body as { handshakeToken?: unknown } | undefined)?.handshakeToken
    if (typeof token !== 'string' || keystore.has(token)) return
    const owner = await fleet.handshakeMachine(token)
    if (owner === null || owner === config.instanceId) return // unknown: HANDSHAKE_NOT_FOUND from the keystore
    if (!isMachineId(owner) || !(await fleet.machines()).some((m) => m.id === owner)) throw new HandshakeMachineGone()
    if (request.headers['fly-replay-src'] !== undefined) {
      throw withContext(new ReplayMissed(`This request was replayed to machine ${config.instanceId}, but its handshake is on machine ${owner}: retry in a moment`), { retryAfter: 1 })
    }
    throw withContext(new OtherMachine(`This handshake was made on machine ${owner}, which holds its key. Fly's proxy replays this request there (fly-replay: instance=${owner}): send requests to the service's Fly.io address`), { replay: `instance=${owner}` })
  } satisfies preHandlerAsyncHookHandler)

  /**
   * The machine running this key's live session `id`, when that is another
   * machine: the request is replayed there (with `gone`, its machine has
   * stopped and nobody took it over yet). Null: it is served here.
   */
  async function runsElsewhere (request: FastifyRequest, id: string): Promise<{ session: Session, machine: string, gone: boolean } | null> {
    const [s, where] = await Promise.all([registry.get(id), registry.machinesOf([id])])
    if (s === undefined || s.ownerId !== request.ownerId || isFinal(s.status)) return null // SESSION_NOT_FOUND, or its final state, here
    const machine = where.get(id)
    if (machine === undefined || machine === config.instanceId) return null
    // Never a malformed id in a fly-replay header: such a record is treated as its machine gone.
    return { session: s, machine, gone: !isMachineId(machine) || !(await fleet.machines()).some((m) => m.id === machine) }
  }

  /** Answer with fly-replay to `machine`; a request already replayed once is never replayed again. */
  function replayTo (request: FastifyRequest, machine: string, why: string): never {
    if (request.headers['fly-replay-src'] !== undefined) {
      throw withContext(new ReplayMissed(`This request was replayed to machine ${config.instanceId}, but the session runs on machine ${machine}: retry in a moment`), { retryAfter: 1 })
    }
    throw withContext(new OtherMachine(`This session runs on machine ${machine}${why}. Fly's proxy replays this request there (fly-replay: instance=${machine}): send requests to the service's Fly.io address`), { replay: `instance=${machine}` })
  }

  fastify.decorate('fleetRouteEnd', async function (request: FastifyRequest, reply: FastifyReply) {
    const id = (request.query as { sessionId?: unknown }).sessionId
    if (typeof id !== 'string') return
    const at = await runsElsewhere(request, id)
    if (at === null) return
    if (at.gone) {
      // Its machine's lease ran out (it no longer acts, its page is closed) and nobody took it over
      // yet: end the record here — only if it is still that machine's (else someone took it: retry).
      if (await registry.finishOn(ended(at.session, 'ended', `ended by the client (its machine ${at.machine} had stopped)`, Date.now()), at.machine)) {
        return await reply.send({ success: true, status: 'ok', message: 'Foundry session terminated', sessionId: id })
      }
      throw withContext(new ReplayMissed('This session is moving to another machine of the fleet: retry in a moment'), { retryAfter: 1 })
    }
    replayTo(request, at.machine, '')
  } satisfies preHandlerAsyncHookHandler)

  fastify.decorate('fleetRouteEvents', async function (request: FastifyRequest) {
    const id = (request.params as { id?: unknown }).id
    if (typeof id !== 'string') return
    const at = await runsElsewhere(request, id)
    // Unowned for now (its machine stopped, nobody took it over yet): its status from here.
    if (at === null || at.gone) return
    replayTo(request, at.machine, ', where its events happen')
  } satisfies preHandlerAsyncHookHandler)

  fastify.addHook('preClose', async () => {
    closing = true
    await fleet.beat().catch(() => {})
  })
  fastify.addHook('onClose', async () => {
    await handover.close()
    await fleet.stop(leftBehind > 0)
  })
}

export default fp(fleetPlugin, { name: 'fleet', fastify: '5.x', dependencies: ['config', 'redis', 'keystore', 'sessions', 'metrics'] })

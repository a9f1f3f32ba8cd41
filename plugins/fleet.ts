// The fleet (REDIS_URL set): a Redis client, this machine's heartbeat, the
// handshake index, and the route hooks that answer a request belonging to
// another machine with `fly-replay` (Fly's proxy replays it there). Without
// REDIS_URL `fleet` is null and the hooks do nothing: one machine, as before.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import { createFleet, type Fleet } from '../lib/fleet/machines.js'
import { createHandover } from '../lib/fleet/handover.js'
import { openCredentials } from '../lib/fleet/seal.js'
import { HandshakeMachineGone, OtherMachine, ReplayMissed, withContext } from '../lib/errors.js'
import { isFinal, type Session } from '../lib/session/types.js'

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

  /** End a live record this machine answers for now, saying why. */
  async function fail (id: string, reason: string): Promise<void> {
    const s = await registry.get(id)
    if (s === undefined || isFinal(s.status)) return
    const t = Date.now()
    await registry.finish({ ...s, status: 'failed', statusReason: reason, statusChangedAt: t, endedAt: t })
  }

  /**
   * A session the registry now says this machine runs: log it in here from
   * its sealed credentials (same id and clientId), or fail it saying why.
   * False when it could not be run.
   */
  async function adopt (id: string, reason: string): Promise<boolean> {
    const [s, sealed] = await Promise.all([registry.get(id), registry.sealed(id)])
    if (s === undefined || isFinal(s.status)) return false
    if (sealer === null || sealed === null) {
      await fail(id, `${reason}, but no sealed credentials were kept for it (SESSION_SEAL_KEY unset where it started): start it again`)
      return false
    }
    let credentials
    try {
      credentials = openCredentials(sealer, id, sealed)
    } catch {
      await fail(id, `${reason}, but its sealed credentials do not open on machine ${me} (SESSION_SEAL_KEY differs between machines?): start it again`)
      log.error({ sessionId: id }, 'sealed credentials did not open: is SESSION_SEAL_KEY the same on every machine?')
      return false
    }
    sessions.takeOver(s, credentials, reason)
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
        await fail(id, `${why}; without SESSION_SEAL_KEY no machine can log it back in: start it again`)
        metrics.recoveries.inc({ result: 'no_seal_key' })
        log.warn({ sessionId: id, machine }, 'session of a stopped machine marked failed')
        continue
      }
      if (s.status === 'starting') {
        await fail(id, `${why} while it was logging in: start it again`)
        metrics.recoveries.inc({ result: 'failed' })
        continue
      }
      const reason = `${why}: taken over by machine ${me}`
      if (await registry.claim(id, machine, config.MAX_SESSIONS, reason)) {
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
        await fail(id, `${why}, and no machine of the fleet had room to take it over: start it again`)
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
  const handover = createHandover({
    redis,
    sub: redis.duplicate(),
    instanceId: me,
    log,
    // A machine that is closing takes nothing; the registry checks room and that the session is still where it was offered from.
    claim: async (id, owner, reason) => !closing && await registry.claim(id, owner, config.MAX_SESSIONS, reason ?? handedOver(owner)),
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
    onMachineGone: machineGone
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
    if (!(await fleet.machines()).some((m) => m.id === owner)) throw new HandshakeMachineGone()
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
    return { session: s, machine, gone: !(await fleet.machines()).some((m) => m.id === machine) }
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
      // Its machine stopped and nobody took it over yet: end the record here.
      const t = Date.now()
      await registry.finish({ ...at.session, status: 'ended', statusReason: `ended by the client (its machine ${at.machine} had stopped)`, statusChangedAt: t, endedAt: t })
      return await reply.send({ success: true, status: 'ok', message: 'Foundry session terminated', sessionId: id })
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

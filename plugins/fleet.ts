// The fleet (REDIS_URL set): a Redis client, this machine's heartbeat, the
// handshake index, and the route hooks that answer a request belonging to
// another machine with `fly-replay` (Fly's proxy replays it there). Without
// REDIS_URL `fleet` is null and the hooks do nothing: one machine, as before.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import { createFleet, type Fleet } from '../lib/fleet/machines.ts'
import { createHandover } from '../lib/fleet/handover.ts'
import { isMachineId, messageKeys } from '../lib/fleet/messages.ts'
import { createCoordinator, route, type Route } from '../lib/fleet/coordinator.ts'
import { FLEET_RETRY_AFTER_S, FleetCutOff, HandshakeMachineGone, OtherMachine, REPLAY_RETRY_AFTER_S, ReplayMissed, withContext } from '../lib/errors.ts'
import { isFinal, type Session } from '../lib/session/types.ts'

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

  const sub = redis.duplicate()
  sub.on('error', () => {})
  // Wired in both directions: the handover asks the coordinator about offers, the coordinator makes offers.
  const handover = createHandover({
    redis,
    sub,
    instanceId: me,
    log,
    keys: sealer !== null ? messageKeys(sealer.keys()) : [],
    acceptOffer: async (id, owner, from) => await coordinator.acceptOffer(id, owner, from),
    claim: async (id, owner, reason) => await coordinator.claimOffered(id, owner, reason),
    adopt: async (id, owner, recovery) => { await coordinator.adoptOffered(id, owner, recovery) }
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
  sessions.beforeShutdown(async () => {
    closing = true
    await fleet.beat().catch(() => {})
    leftBehind = await coordinator.handOverAll()
  })

  const load = (): number => { const c = sessions.counts(); return c.starting + c.active + c.reconnecting }
  const fleet = createFleet({
    redis,
    instanceId: config.instanceId,
    heartbeatMs: config.FLEET_HEARTBEAT_MS,
    log,
    state: () => ({ sessions: load(), maxSessions: config.MAX_SESSIONS, closing }),
    onMachineGone: async (machine) => { await coordinator.machineGone(machine) },
    // Half the lease gone: every page closes now, before any other machine may take a session.
    onFenced: () => { void sessions.fence(`cut off from the fleet: machine ${me} could not reach the fleet registry (Redis) for half its lease`) },
    onRenewed: async () => { await coordinator.comeBack() },
    // Each page stops by itself when the lease is half gone (this process may stall while Chromium runs on).
    onLease: (until) => { sessions.extendPageLeases(until) }
  })
  fastify.sessionGate.acting = () => fleet.acting()

  const coordinator = createCoordinator({
    me,
    maxSessions: config.MAX_SESSIONS,
    registry,
    heartbeat: fleet,
    handover,
    sessions,
    sealer,
    closing: () => closing,
    log,
    metrics: {
      recovery: (result) => { metrics.recoveries.inc({ result }) },
      handover: (direction, result) => { metrics.handovers.inc({ direction, result }) }
    },
    // A failure or end this machine decided and wrote: session.failed or session.ended once, from here.
    onDecided: (session, webhook) => { fastify.webhooks.notifier.decided(session, webhook) }
  })
  // A write refused (stale fencing token, or the session runs elsewhere now): drop the session here at once.
  registry.onRefused(coordinator.refused)

  // Cut off: requests that need the registry fail at once (503 with Retry-After) instead of waiting on Redis.
  fastify.addHook('onRequest', async (request) => {
    if (fleet.acting()) return
    const path = request.url.split('?')[0] ?? ''
    if (path === '/session-handshake' || path === '/start-session' || path === '/end-session' || path === '/session' || path.startsWith('/session/')) {
      throw withContext(new FleetCutOff(`Machine ${me} is cut off from the fleet registry (Redis): its sessions wait; retry in a few seconds`), { retryAfter: FLEET_RETRY_AFTER_S })
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
      throw withContext(new ReplayMissed(`This request was replayed to machine ${config.instanceId}, but its handshake is on machine ${owner}: retry in a moment`), { retryAfter: REPLAY_RETRY_AFTER_S })
    }
    throw withContext(new OtherMachine(`This handshake was made on machine ${owner}, which holds its key. Fly's proxy replays this request there (fly-replay: instance=${owner}): send requests to the service's Fly.io address`), { replay: `instance=${owner}` })
  } satisfies preHandlerAsyncHookHandler)

  /** Where a request about this key's session `id` is served (coordinator.route), with the record. */
  async function routeOf (request: FastifyRequest, id: string): Promise<{ route: Route, session: Session | undefined }> {
    const [s, where] = await Promise.all([registry.get(id), registry.machinesOf([id])])
    const session = s !== undefined && s.ownerId === request.ownerId ? s : undefined
    const machine = where.get(id)
    const needLive = session !== undefined && !isFinal(session.status) && machine !== undefined && machine !== me
    const live = needLive ? (await fleet.machines()).map((m) => m.id) : []
    return { route: route({ me, replayed: request.headers['fly-replay-src'] !== undefined, session, machine, live }), session }
  }

  /** Answer a replay or a missed replay; nothing for here or gone. */
  function follow (r: Route, why: string): void {
    if (r.to === 'missed') {
      throw withContext(new ReplayMissed(`This request was replayed to machine ${me}, but the session runs on machine ${r.machine}: retry in a moment`), { retryAfter: REPLAY_RETRY_AFTER_S })
    }
    if (r.to === 'replay') {
      throw withContext(new OtherMachine(`This session runs on machine ${r.machine}${why}. Fly's proxy replays this request there (fly-replay: instance=${r.machine}): send requests to the service's Fly.io address`), { replay: `instance=${r.machine}` })
    }
  }

  fastify.decorate('fleetRouteEnd', async function (request: FastifyRequest, reply: FastifyReply) {
    const id = (request.query as { sessionId?: unknown }).sessionId
    if (typeof id !== 'string') return
    const { route: r, session } = await routeOf(request, id)
    if (r.to === 'gone' && session !== undefined) {
      // Its machine's lease ran out (it no longer acts, its page is closed) and nobody took it over
      // yet: end the record here — only if it is still that machine's (else someone took it: retry).
      if (await coordinator.endGone(session.id, r.machine, `ended by the client (its machine ${r.machine} had stopped)`)) {
        return await reply.send({ success: true, status: 'ok', message: 'Foundry session terminated', sessionId: id })
      }
      throw withContext(new ReplayMissed('This session is moving to another machine of the fleet: retry in a moment'), { retryAfter: REPLAY_RETRY_AFTER_S })
    }
    follow(r, '')
  } satisfies preHandlerAsyncHookHandler)

  fastify.decorate('fleetRouteEvents', async function (request: FastifyRequest) {
    const id = (request.params as { id?: unknown }).id
    if (typeof id !== 'string') return
    // Gone (its machine stopped, nobody took it over yet): its status from here.
    follow((await routeOf(request, id)).route, ', where its events happen')
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

export default fp(fleetPlugin, { name: 'fleet', fastify: '5.x', dependencies: ['config', 'redis', 'keystore', 'sessions', 'metrics', 'webhooks'] })

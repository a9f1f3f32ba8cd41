// The fleet (REDIS_URL set): a Redis client, this machine's heartbeat, the
// handshake index, and the route hooks that answer a request belonging to
// another machine with `fly-replay` (Fly's proxy replays it there). Without
// REDIS_URL `fleet` is null and the hooks do nothing: one machine, as before.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import { createFleet, type Fleet } from '../lib/fleet.js'
import { HandshakeMachineGone, OtherMachine, ReplayMissed, withContext } from '../lib/errors.js'
import { isFinal } from '../lib/session/types.js'

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
    return
  }
  const log = fastify.log.child({ plugin: 'fleet' })
  const redis = fastify.redis!
  const registry = fastify.fleetRegistry!

  /**
   * The sessions of a machine that stopped without handing them over. With
   * no seal key nothing secret was stored, so no machine can log them back
   * in: they fail, with the reason, listed fleet-wide.
   */
  async function machineGone (machine: string): Promise<void> {
    const t = Date.now()
    const previousLife = machine === config.instanceId
    for (const id of await registry.liveOn(machine)) {
      const s = await registry.get(id)
      if (s === undefined || isFinal(s.status)) continue
      await registry.finish({
        ...s,
        status: 'failed',
        statusReason: `${previousLife ? `its machine ${machine} restarted` : `its machine ${machine} stopped (deploy, crash or lost host)`}; without SESSION_SEAL_KEY no machine can log it back in: start it again`,
        statusChangedAt: t,
        endedAt: t
      })
      log.warn({ sessionId: id, machine }, 'session of a stopped machine marked failed')
    }
  }
  let closing = false
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
    void fleet.beat().then(async () => await registry.resync()).then((n) => {
      if (n > 0) log.info({ sessions: n }, 're-registered this machine\'s sessions in the fleet registry')
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

  fastify.decorate('fleetRouteEnd', async function (request: FastifyRequest, reply: FastifyReply) {
    const id = (request.query as { sessionId?: unknown }).sessionId
    if (typeof id !== 'string') return
    const [s, where] = await Promise.all([registry.get(id), registry.machinesOf([id])])
    if (s === undefined || s.ownerId !== request.ownerId || isFinal(s.status)) return // SESSION_NOT_FOUND, or a failed one removed, here
    const machine = where.get(id)
    if (machine === undefined || machine === config.instanceId) return
    if (!(await fleet.machines()).some((m) => m.id === machine)) {
      // Its machine stopped and nobody took it over yet: end the record here.
      const t = Date.now()
      await registry.finish({ ...s, status: 'ended', statusReason: `ended by the client (its machine ${machine} had stopped)`, statusChangedAt: t, endedAt: t })
      return await reply.send({ success: true, status: 'ok', message: 'Foundry session terminated', sessionId: id })
    }
    if (request.headers['fly-replay-src'] !== undefined) {
      throw withContext(new ReplayMissed(`This request was replayed to machine ${config.instanceId}, but the session runs on machine ${machine}: retry in a moment`), { retryAfter: 1 })
    }
    throw withContext(new OtherMachine(`This session runs on machine ${machine}. Fly's proxy replays this request there (fly-replay: instance=${machine}): send requests to the service's Fly.io address`), { replay: `instance=${machine}` })
  } satisfies preHandlerAsyncHookHandler)

  fastify.addHook('preClose', async () => {
    closing = true
    await fleet.beat().catch(() => {})
  })
  fastify.addHook('onClose', async () => { await fleet.stop() })
}

export default fp(fleetPlugin, { name: 'fleet', fastify: '5.x', dependencies: ['config', 'redis', 'keystore', 'sessions'] })

import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { auditListener, createMemoryRegistry, createSessionManager, type SessionManager } from '../lib/session/index.js'
import { parseBlockResources } from '../lib/browser/page-setup.js'
import { createScreenshotStore, type ScreenshotStore } from '../lib/browser/screenshots.js'
import { createRedisRegistry, type RedisSessionRegistry } from '../lib/fleet/registry.js'
import { createSealer, sealCredentials, type Sealer } from '../lib/fleet/seal.js'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionManager
    screenshots: ScreenshotStore
    /** The session registry in Redis (REDIS_URL), shared by the fleet; null on a single machine. */
    fleetRegistry: RedisSessionRegistry | null
    /** SESSION_SEAL_KEY's sealer (with REDIS_URL), or null: nothing secret is kept outside this process. */
    sealer: Sealer | null
    /** Whether this machine acts for the fleet now (the fleet plugin sets it; true on one machine): logins back in wait otherwise. */
    sessionGate: { acting: () => boolean }
  }
}

const sessions: FastifyPluginAsync = async (fastify) => {
  const { config } = fastify
  const screenshots = createScreenshotStore({ ttlMs: config.SCREENSHOT_TTL_MS, max: 200 })
  const log = fastify.log.child({ plugin: 'sessions' })
  // With REDIS_URL the registry is the fleet's: GET /session, the per-key cap
  // and existingSession see every machine; MAX_SESSIONS stays per machine.
  const fleetRegistry = fastify.redis !== null
    ? createRedisRegistry({ redis: fastify.redis, instanceId: config.instanceId, retainEndedMs: config.SESSION_RETAIN_ENDED_MS })
    : null
  // With a seal key, each session's credentials are kept in the registry,
  // sealed, so another machine can log it in (handover, crash recovery).
  const sealer = fleetRegistry !== null && config.SESSION_SEAL_KEY !== '' ? createSealer(config.SESSION_SEAL_KEY) : null
  const sessionGate = { acting: () => true }
  const manager = createSessionManager({
    mayLogIn: () => sessionGate.acting(),
    ...(sealer !== null && fleetRegistry !== null
      ? { keepCredentials: async (id, credentials, ownerId) => { await fleetRegistry.putSealed(id, sealCredentials(sealer, id, credentials, ownerId)) } }
      : {}),
    registry: fleetRegistry ?? createMemoryRegistry({ retainEndedMs: config.SESSION_RETAIN_ENDED_MS }),
    screenshots,
    screenshotUrl: (id) => `/failure-screenshot/${id}`,
    idleTimeoutMs: config.SESSION_IDLE_TIMEOUT_MS,
    maxLifetimeMs: config.SESSION_MAX_LIFETIME_MS,
    reloginAttempts: config.RELOGIN_ATTEMPTS,
    reloginBaseMs: config.RELOGIN_BASE_MS,
    moduleReviveAfterMs: config.MODULE_REVIVE_AFTER_MS,
    pool: fastify.browserPool,
    log,
    maxSessions: config.MAX_SESSIONS,
    maxSessionsPerOwner: config.MAX_SESSIONS_PER_KEY,
    timeouts: {
      navigation: config.NAVIGATION_TIMEOUT_MS,
      joinForm: config.JOIN_FORM_TIMEOUT_MS,
      worldLaunch: config.WORLD_LAUNCH_TIMEOUT_MS,
      gameReady: config.GAME_READY_TIMEOUT_MS,
      moduleConnect: config.MODULE_CONNECT_TIMEOUT_MS,
      moduleStable: config.MODULE_STABLE_MS
    },
    page: {
      blockResources: parseBlockResources(config.PAGE_BLOCK_RESOURCES),
      noCanvas: config.PAGE_NO_CANVAS,
      // The URL policy on every request of the session's browser, and on
      // the address each response actually came from (DNS rebinding).
      ...(fastify.urlPolicy.mode !== 'any'
        ? { allowRequest: fastify.urlPolicy.allowRequest, allowAddress: fastify.urlPolicy.allowAddress }
        : {})
    }
  })
  // One info line per session started, ended or failed, for the operator.
  manager.onEvent(auditListener(log))
  fastify.decorate('sessions', manager)
  fastify.decorate('screenshots', screenshots)
  fastify.decorate('fleetRegistry', fleetRegistry)
  fastify.decorate('sealer', sealer)
  fastify.decorate('sessionGate', sessionGate)
  // Logins can take minutes: cancel them (and end every session) before the
  // server waits for in-flight requests, so close() is not held up.
  fastify.addHook('preClose', async () => { await manager.endAll() })
  fastify.addHook('onClose', async () => {
    await manager.endAll()
    screenshots.close()
  })
}

export default fp(sessions, { name: 'sessions', fastify: '5.x', dependencies: ['config', 'redis', 'browser-pool', 'url-policy'] })

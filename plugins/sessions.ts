import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { auditListener, createMemoryRegistry, createSessionManager, isFinal, type SessionManager } from '../lib/session/index.ts'
import { sameKey, type FleetRegistry } from '../lib/session/registry.ts'
import { next } from '../lib/session/machine.ts'
import { createStateFile, type StateFile } from '../lib/session/state-file.ts'
import { parseBlockResources } from '../lib/browser/page-setup.ts'
import { createScreenshotStore, type ScreenshotStore } from '../lib/browser/screenshots.ts'
import { createRedisRegistry } from '../lib/fleet/registry.ts'
import { createSealer, sealCredentials, type Sealer } from '../lib/fleet/seal.ts'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionManager
    screenshots: ScreenshotStore
    /** The session registry in Redis (REDIS_URL), shared by the fleet; null on a single machine. */
    fleetRegistry: FleetRegistry | null
    /** SESSION_SEAL_KEY's sealer, or null: nothing secret is kept outside this process. */
    sealer: Sealer | null
    /** One machine with SESSION_SEAL_KEY (no REDIS_URL): the state file its sessions outlive a restart in; else null. */
    stateFile: StateFile | null
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
  // With a seal key, each session's credentials are kept sealed: in the
  // registry (a fleet), so another machine can log it in (handover, crash
  // recovery); on one machine in the state file under STATE_DIR, so the
  // sessions survive the service's own restart.
  const sealer = config.SESSION_SEAL_KEY !== '' ? createSealer(config.SESSION_SEAL_KEY) : null
  const stateFile = sealer !== null && fleetRegistry === null
    ? await createStateFile({ dir: config.STATE_DIR, sealer, log: log.child({ stateFile: true }) })
    : null
  const registry = fleetRegistry ?? createMemoryRegistry({ retainEndedMs: config.SESSION_RETAIN_ENDED_MS })
  const sessionGate = { acting: () => true }
  const manager = createSessionManager({
    mayLogIn: () => sessionGate.acting(),
    ...(sealer !== null && fleetRegistry !== null
      ? { keepCredentials: async (id, credentials, ownerId) => { await fleetRegistry.putSealed(id, sealCredentials(sealer, id, credentials, ownerId)) } }
      : {}),
    ...(stateFile !== null ? { keepCredentials: async (id, credentials) => { stateFile.keep(id, credentials) } } : {}),
    registry,
    screenshots,
    screenshotUrl: (id) => `/failure-screenshot/${id}`,
    idleTimeoutMs: config.SESSION_IDLE_TIMEOUT_MS,
    maxLifetimeMs: config.SESSION_MAX_LIFETIME_MS,
    reloginAttempts: config.RELOGIN_ATTEMPTS,
    reloginBaseMs: config.RELOGIN_BASE_MS,
    maxBackoffMs: config.RELOGIN_MAX_DELAY_MS,
    probeMaxMs: config.FOUNDRY_PROBE_MAX_MS,
    reconnectMaxMs: config.SESSION_RECONNECT_MAX_MS,
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
    checkUrl: fastify.urlPolicy.checkUrl,
    page: {
      blockResources: parseBlockResources(config.PAGE_BLOCK_RESOURCES),
      noCanvas: config.PAGE_NO_CANVAS
    }
  })
  // One info line per session started, ended or failed, for the operator.
  manager.onEvent(auditListener(log))
  fastify.decorate('sessions', manager)
  fastify.decorate('screenshots', screenshots)
  fastify.decorate('fleetRegistry', fleetRegistry)
  fastify.decorate('sealer', sealer)
  fastify.decorate('stateFile', stateFile)
  if (stateFile !== null) {
    // Every change of a running session reaches the file; an ended one leaves it.
    manager.onEvent((event, session) => { if (event.type === 'status' || event.type === 'module') stateFile.update(session) })
    // SIGTERM: the sessions are left in the file (reconnecting, saying why), not ended.
    manager.beforeShutdown(async () => {
      const running = manager.running()
      if (running.length > 0) log.info({ sessions: running.length, stateFile: stateFile.path }, 'shutting down: sessions kept in the state file, to be logged back in at the next start')
      await Promise.all(running.map(async (s) => { await manager.release(s.id, 'the service is restarting: kept in its state file, logged back in when it starts again') }))
      await stateFile.flush()
    })
    // At start: the sessions of the previous run, logged back in (same sessionId and clientId).
    fastify.addHook('onReady', async () => {
      const { sessions: back, failed } = await stateFile.load()
      const unlimited = { maxSessions: Number.MAX_SAFE_INTEGER, maxPerOwner: Number.MAX_SAFE_INTEGER }
      for (const { record, reason } of failed) {
        const t = Date.now()
        await registry.insert(record, unlimited)
        await registry.finish(next(record, { type: 'over', status: 'failed', reason }, t))
      }
      const caps = { maxSessions: config.MAX_SESSIONS, maxPerOwner: config.MAX_SESSIONS_PER_KEY }
      for (const { record, credentials } of back) {
        if (isFinal(record.status)) continue
        try {
          await registry.insert(record, caps, sameKey(record.ownerId, record.foundryUrl, record.username, record.worldName))
        } catch (err) {
          // The caps were lowered since: what does not fit is listed as failed, saying so.
          const t = Date.now()
          await registry.insert(record, unlimited)
          await registry.finish(next(record, { type: 'over', status: 'failed', reason: `the service restarted, but ${(err as Error).message}: start it again` }, t))
          continue
        }
        stateFile.keep(record.id, credentials)
        manager.takeOver(record, credentials, 'the service restarted: logging back in from its state file')
        // In the file again at once: a second crash before the login keeps it too.
        const now = manager.running().find((s) => s.id === record.id)
        if (now !== undefined) stateFile.update(now)
      }
      if (back.length > 0 || failed.length > 0) log.info({ restored: back.length, failed: failed.length }, 'sessions of the previous run read from the state file')
      await stateFile.save()
    })
  }
  fastify.decorate('sessionGate', sessionGate)
  // Logins can take minutes: cancel them (and end every session) before the
  // server waits for in-flight requests, so close() is not held up.
  fastify.addHook('preClose', async () => { await manager.endAll() })
  fastify.addHook('onClose', async () => {
    await manager.endAll()
    await stateFile?.flush()
    screenshots.close()
  })
}

export default fp(sessions, { name: 'sessions', fastify: '5.x', dependencies: ['config', 'redis', 'browser-pool', 'url-policy'] })

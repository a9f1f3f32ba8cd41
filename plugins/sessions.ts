import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { createSessionManager, type SessionManager } from '../lib/sessions.js'

declare module 'fastify' {
  interface FastifyInstance { sessions: SessionManager }
}

const sessions: FastifyPluginAsync = async (fastify) => {
  const { config } = fastify
  const manager = createSessionManager({
    pool: fastify.browserPool,
    log: fastify.log.child({ plugin: 'sessions' }),
    maxSessions: config.MAX_SESSIONS,
    maxSessionsPerOwner: config.MAX_SESSIONS_PER_KEY,
    timeouts: {
      navigation: config.NAVIGATION_TIMEOUT_MS,
      joinForm: config.JOIN_FORM_TIMEOUT_MS,
      worldLaunch: config.WORLD_LAUNCH_TIMEOUT_MS,
      gameReady: config.GAME_READY_TIMEOUT_MS,
      moduleConnect: config.MODULE_CONNECT_TIMEOUT_MS
    }
  })
  fastify.decorate('sessions', manager)
  // Logins can take minutes: cancel them (and end every session) before the
  // server waits for in-flight requests, so close() is not held up.
  fastify.addHook('preClose', async () => { await manager.endAll() })
  fastify.addHook('onClose', async () => { await manager.endAll() })
}

export default fp(sessions, { name: 'sessions', fastify: '5.x', dependencies: ['config', 'browser-pool'] })

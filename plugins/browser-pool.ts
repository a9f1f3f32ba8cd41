import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { createBrowserPool, type BrowserPool } from '../lib/browser/pool.js'

declare module 'fastify' {
  interface FastifyInstance { browserPool: BrowserPool }
}

const browserPool: FastifyPluginAsync = async (fastify) => {
  const { config } = fastify
  const pool = createBrowserPool({
    executablePath: config.CHROMIUM_PATH,
    args: config.CHROMIUM_ARGS.split(/\s+/).filter((a) => a !== ''),
    maxConcurrentLogins: config.MAX_CONCURRENT_LOGINS,
    log: fastify.log.child({ plugin: 'browser-pool' })
  })
  fastify.decorate('browserPool', pool)
  // Start Chromium with the service, so the first session does not pay for
  // it; a failure is reported by /health and retried by the next session.
  fastify.addHook('onReady', async () => {
    await pool.start().catch(() => {})
  })
  fastify.addHook('onClose', async () => { await pool.close() })
}

export default fp(browserPool, { name: 'browser-pool', fastify: '5.x', dependencies: ['config'] })

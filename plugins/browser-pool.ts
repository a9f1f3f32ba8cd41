import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { createBrowserPool, type BrowserPool } from '../lib/browser/pool.ts'
import { createEgressGate, type EgressGate } from '../lib/browser/egress.ts'

declare module 'fastify' {
  interface FastifyInstance {
    browserPool: BrowserPool
    /** The egress gate every connection of the session browser leaves through. */
    egress: EgressGate
  }
}

const browserPool: FastifyPluginAsync = async (fastify) => {
  const { config, urlPolicy } = fastify
  const log = fastify.log.child({ plugin: 'browser-pool' })
  // FOUNDRY_URL_POLICY, FOUNDRY_URL_ALLOW and FOUNDRY_URL_DENY on every
  // connection the browser makes, at the address it connects to.
  const egress = await createEgressGate({ decide: urlPolicy.resolveChecked, log: fastify.log.child({ plugin: 'egress' }) })
  const pool = createBrowserPool({
    executablePath: config.CHROMIUM_PATH,
    args: config.CHROMIUM_ARGS.split(/\s+/).filter((a) => a !== ''),
    maxConcurrentLogins: config.MAX_CONCURRENT_LOGINS,
    log,
    egress
  })
  fastify.decorate('browserPool', pool)
  fastify.decorate('egress', egress)
  // The service's own port: no session's page may call its API through the gate.
  fastify.addHook('onListen', async () => {
    for (const a of fastify.addresses()) if (typeof a !== 'string') egress.refuseService(a.address, a.port)
  })
  // Start Chromium with the service (CHROMIUM_LAUNCH=start), so the first
  // session does not pay for it; a failure is reported by /health and
  // retried by the next session. first-session: the pool launches it when a
  // login first asks for a browser context.
  if (config.CHROMIUM_LAUNCH === 'start') {
    fastify.addHook('onReady', async () => {
      await pool.start().catch(() => {})
    })
  }
  // Chromium first, then the gate it talks through.
  fastify.addHook('onClose', async () => {
    await pool.close()
    await egress.close()
  })
}

export default fp(browserPool, { name: 'browser-pool', fastify: '5.x', dependencies: ['config', 'url-policy'] })

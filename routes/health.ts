import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { HealthReply } from '../schemas/health.js'
import { errorResponses } from '../schemas/common.js'

const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { browserPool, sessions, config } = fastify
  const started = Date.now()

  fastify.get('/health', {
    schema: {
      tags: ['service'],
      summary: 'Whether the service can start sessions (for load balancers and Fly checks)',
      response: { 200: HealthReply, 503: HealthReply, ...errorResponses() }
    },
    logLevel: 'warn',
    config: { accessLog: 'debug' }
  }, async function (_request, reply) {
    const h = browserPool.health()
    const body = {
      status: h.ok ? 'ok' as const : 'unavailable' as const,
      browser: {
        chromium: h.chromium,
        version: h.version,
        contexts: h.contexts,
        loginsRunning: h.loginsRunning,
        maxConcurrentLogins: h.maxConcurrentLogins,
        lastError: h.lastError
      },
      sessions: sessions.counts(),
      instanceId: config.instanceId,
      uptimeSeconds: Math.floor((Date.now() - started) / 1000)
    }
    return reply.code(h.ok ? 200 : 503).send(body)
  })
}

export default healthRoutes

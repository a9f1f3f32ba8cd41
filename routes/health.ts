import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { HealthReply } from '../schemas/health.ts'
import { errorResponses } from '../schemas/common.ts'

const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { browserPool, sessions, config, fleet } = fastify
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
    // A machine cut off from the fleet (its lease half gone) is unhealthy: the proxy sends it no work.
    const ok = h.ok && (fleet === null || fleet.acting())
    const body = {
      status: ok ? 'ok' as const : 'unavailable' as const,
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
      ...(fleet !== null ? { fleet: { registry: fleet.connected() && fleet.acting() ? 'connected' as const : 'unreachable' as const } } : {}),
      uptimeSeconds: Math.floor((Date.now() - started) / 1000)
    }
    return reply.code(ok ? 200 : 503).send(body)
  })
}

export default healthRoutes

// One access-log line per request, written when the response is sent (in
// place of Fastify's two). Successful handshakes and health checks are the
// bulk of the traffic and log at debug; everything else, and every failure,
// at info. Only the path is logged: query strings stay out of the log.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Level of this route's access log line when it succeeds (default info). */
    accessLog?: 'debug' | 'info'
  }
}

/** pino's level numbers ('silent' drops everything). */
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity }

const accessLog: FastifyPluginAsync = async (fastify) => {
  fastify.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode
    const level = status >= 400 ? 'info' : (request.routeOptions.config.accessLog ?? 'info')
    // Nothing built for a line the logger drops (the bulk: handshakes, health checks).
    if (LEVELS[level] < (LEVELS[request.log.level] ?? 0)) return
    request.log[level]({
      method: request.method,
      path: request.url.split('?')[0],
      status,
      ms: Math.round(reply.elapsedTime * 10) / 10
    }, 'request')
  })
}

export default fp(accessLog, { name: 'access-log', fastify: '5.x' })

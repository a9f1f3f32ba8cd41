// Per-API-key rate limits, on @fastify/rate-limit with its bounded in-memory
// store. Limits are keyed by the caller's owner id (the digest of its API key,
// set by auth), so they run as preHandler hooks, after authentication: an
// unknown key is a 401 and never takes a slot. Past the limit the answer is
// the service's error shape, 429 RATE_LIMITED, with Retry-After.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { RateLimited, withContext } from '../lib/errors.js'
import { WindowStore } from '../lib/rate-limit-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler for POST /session-handshake: HANDSHAKE_RATE_MAX per HANDSHAKE_RATE_WINDOW_MS per API key. */
    handshakeRateLimit: preHandlerAsyncHookHandler
  }
}

const byOwner = (request: FastifyRequest): string => request.ownerId !== '' ? `key:${request.ownerId}` : `ip:${request.ip}`

const rateLimits: FastifyPluginAsync = async (fastify) => {
  const { HANDSHAKE_RATE_MAX: max, HANDSHAKE_RATE_WINDOW_MS: timeWindow } = fastify.config
  await fastify.register(rateLimit, {
    global: false,
    // Bounded counters (lib/rate-limit-store.ts says why not the built-in store).
    store: class extends WindowStore { constructor () { super(10_000) } },
    keyGenerator: byOwner,
    errorResponseBuilder (_request, context) {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000))
      return withContext(new RateLimited(`Too many handshakes for this API key (at most ${context.max} every ${Math.round(timeWindow / 1000)} s): retry in ${seconds} s`), { retryAfter: seconds })
    }
  })
  const noLimit: preHandlerAsyncHookHandler = async () => {}
  fastify.decorate('handshakeRateLimit', max > 0
    ? fastify.rateLimit({ max, timeWindow, keyGenerator: byOwner, groupId: 'handshake' }) as preHandlerAsyncHookHandler
    : noLimit)
}

export default fp(rateLimits, { name: 'rate-limit', fastify: '5.x', dependencies: ['config', 'auth'] })

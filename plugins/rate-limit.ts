// Per-API-key rate limits, on @fastify/rate-limit with its bounded in-memory
// store. Limits are keyed by the caller's owner id (the digest of its API key,
// set by auth), so they run as preHandler hooks, after authentication: an
// unknown key is a 401 and never takes a slot. Past the limit the answer is
// the service's error shape, 429 RATE_LIMITED, with Retry-After. In a fleet
// (REDIS_URL) the counters are @fastify/rate-limit's Redis store, shared by
// every machine (an atomic Lua INCR per request); with Redis away the limit
// cannot be checked and the handshake gets 503 FLEET_UNAVAILABLE.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { FleetUnavailable, RateLimited, withContext, type ServiceError } from '../lib/errors.js'
import { RETRY_AFTER_S } from '../lib/fleet.js'
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
  const { redis } = fastify
  await fastify.register(rateLimit, {
    global: false,
    ...(redis !== null
      ? { redis, nameSpace: 'fs:rl:' }
      // Bounded counters (lib/rate-limit-store.ts says why not the built-in store).
      : { store: class extends WindowStore { constructor () { super(10_000) } } }),
    keyGenerator: byOwner,
    errorResponseBuilder (_request, context) {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000))
      return withContext(new RateLimited(`Too many handshakes for this API key (at most ${context.max} every ${Math.round(timeWindow / 1000)} s): retry in ${seconds} s`), { retryAfter: seconds })
    }
  })
  const noLimit: preHandlerAsyncHookHandler = async () => {}
  const limit = fastify.rateLimit({ max, timeWindow, keyGenerator: byOwner, groupId: 'handshake' }) as preHandlerAsyncHookHandler
  const fleetLimit: preHandlerAsyncHookHandler = async function (request, reply) {
    try {
      await limit.call(this, request, reply)
    } catch (err) {
      if ((err as ServiceError).statusCode !== undefined) throw err
      throw withContext(new FleetUnavailable(), { retryAfter: RETRY_AFTER_S })
    }
  }
  fastify.decorate('handshakeRateLimit', max === 0 ? noLimit : redis !== null ? fleetLimit : limit)
}

export default fp(rateLimits, { name: 'rate-limit', fastify: '5.x', dependencies: ['config', 'redis', 'auth'] })

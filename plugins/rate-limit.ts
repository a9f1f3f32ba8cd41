// Rate limits on @fastify/rate-limit, with its bounded in-memory store:
// - handshakes per API key: a preHandler after authentication (an unknown key
//   is a 401 and never takes a slot); past it, 429 RATE_LIMITED;
// - wrong API keys per client address (TRUST_PROXY says where the address
//   comes from, lib/access/client-address.ts): auth counts each wrong key and asks
//   first whether the address is over its budget; past it, every request with
//   an API key from that address is 429 API_KEY_THROTTLED, a right key too
//   (or the answer would tell which guess was right).
// Every 429 is the service's error shape with Retry-After. In a fleet
// (REDIS_URL) the counters are @fastify/rate-limit's Redis store, shared by
// every machine (an atomic Lua INCR per request, keyed by digests and
// addresses, never a key). With Redis away the handshake limit cannot be
// checked: 503 FLEET_UNAVAILABLE; the wrong-key throttle lets requests
// through meanwhile (a wrong key is still a 401).
import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { ApiKeyThrottled, FLEET_RETRY_AFTER_S, FleetUnavailable, RateLimited, withContext, type ServiceError } from '../lib/errors.ts'
import { KEY } from '../lib/fleet/keys.ts'
import { WindowStore } from '../lib/access/rate-limit-store.ts'
import { clientAddress, parseTrustProxy } from '../lib/access/client-address.ts'

export interface ApiKeyThrottle {
  /** Throws 429 API_KEY_THROTTLED if this request's address sent too many wrong keys. */
  check: (request: FastifyRequest) => Promise<void>
  /** Counts a wrong key from this request's address; throws 429 API_KEY_THROTTLED past the budget. */
  failed: (request: FastifyRequest) => Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler for POST /session-handshake: HANDSHAKE_RATE_MAX per HANDSHAKE_RATE_WINDOW_MS per API key. */
    handshakeRateLimit: preHandlerAsyncHookHandler
    /** API_KEY_FAIL_MAX wrong keys per API_KEY_FAIL_WINDOW_MS per client address (used by auth). */
    apiKeyThrottle: ApiKeyThrottle
  }
  interface FastifyRequest {
    /** The client's address as TRUST_PROXY says to find it (IPv6 grouped by /64). */
    clientAddress: string
  }
}

const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000))

export interface RateLimitOptions {
  /** The in-memory counters' clock (default Date.now); tests move it instead of waiting out a window. */
  now?: () => number
}

const rateLimits: FastifyPluginAsync<RateLimitOptions> = async (fastify, opts) => {
  const now = opts.now ?? Date.now
  const {
    HANDSHAKE_RATE_MAX: max, HANDSHAKE_RATE_WINDOW_MS: timeWindow,
    API_KEY_FAIL_MAX: failMax, API_KEY_FAIL_WINDOW_MS: failWindow
  } = fastify.config
  const { redis } = fastify
  const trust = parseTrustProxy(fastify.config.TRUST_PROXY)
  fastify.decorateRequest('clientAddress', {
    getter (this: FastifyRequest) { return clientAddress(trust, this) }
  })
  const byOwner = (request: FastifyRequest): string => request.ownerId !== '' ? `key:${request.ownerId}` : `ip:${request.clientAddress}`

  await fastify.register(rateLimit, {
    global: false,
    ...(redis !== null
      ? { redis, nameSpace: KEY.rateLimit }
      // Bounded counters (lib/access/rate-limit-store.ts says why not the built-in store).
      : { store: class extends WindowStore { constructor () { super(10_000, now) } } }),
    keyGenerator: byOwner,
    errorResponseBuilder (_request, context) {
      const s = seconds(context.ttl)
      return withContext(new RateLimited(`Too many handshakes for this API key (at most ${context.max} every ${Math.round(timeWindow / 1000)} s): retry in ${s} s`), { retryAfter: s })
    }
  })
  const noLimit: preHandlerAsyncHookHandler = async () => {}
  const limit = fastify.rateLimit({ max, timeWindow, keyGenerator: byOwner }) as preHandlerAsyncHookHandler
  const fleetLimit: preHandlerAsyncHookHandler = async function (request, reply) {
    try {
      await limit.call(this, request, reply)
    } catch (err) {
      if ((err as ServiceError).statusCode !== undefined) throw err
      throw withContext(new FleetUnavailable(), { retryAfter: FLEET_RETRY_AFTER_S })
    }
  }
  fastify.decorate('handshakeRateLimit', max === 0 ? noLimit : redis !== null ? fleetLimit : limit)

  // Its own store (createRateLimit takes a child of the plugin's): failures
  // only, counted per address; `increment: false` reads without counting.
  const counted = fastify.createRateLimit({ max: failMax, timeWindow: failWindow, keyGenerator: (r) => `addr:${r.clientAddress}` })
  type Counted = Awaited<ReturnType<typeof counted>>
  // Redis away (fleet): no answer from the store counts as within budget.
  const failures = async (request: FastifyRequest, opts?: { increment: false }): Promise<Counted | { isAllowed: true, isExceeded: false, ttl: 0 }> => {
    try {
      return opts === undefined ? await counted(request) : await counted(request, opts)
    } catch (err) {
      if ((err as ServiceError).statusCode !== undefined) throw err
      return { isAllowed: true, isExceeded: false, ttl: 0 }
    }
  }
  const throttled = (ttl: number): Error => {
    const s = seconds(ttl)
    return withContext(new ApiKeyThrottled(`Too many wrong API keys from your address (at most ${failMax} every ${Math.round(failWindow / 1000)} s): retry in ${s} s with a right key`), { retryAfter: s })
  }
  const warnThrottled = (request: FastifyRequest): void => {
    request.log.warn({ client: request.clientAddress, max: failMax }, 'too many wrong API keys from one address: throttled')
  }
  // Without Redis the failures are counted here, in a store of the same kind,
  // read and written synchronously: every authenticated request asks check(),
  // and @fastify/rate-limit's per-call path (a route-options object, a
  // promise, three awaits) was ~5 µs of each handshake. Same counts, same
  // budget and window; while no address has sent a wrong key there is
  // nothing to read.
  const local = redis === null ? new WindowStore(10_000, now) : null
  fastify.decorate('apiKeyThrottle', failMax <= 0
    ? { async check () {}, async failed () {} }
    : local !== null
      ? {
          async check (request) {
            if (local.size() === 0) return
            const r = local.peek(`addr:${request.clientAddress}`, failWindow)
            if (r.current > failMax) throw throttled(r.ttl)
          },
          async failed (request) {
            const r = local.hit(`addr:${request.clientAddress}`, failWindow)
            if (r.current <= failMax) return
            warnThrottled(request)
            throw throttled(r.ttl)
          }
        }
      : {
          async check (request) {
            const r = await failures(request, { increment: false })
            if (!r.isAllowed && r.isExceeded) throw throttled(r.ttl)
          },
          async failed (request) {
            const r = await failures(request)
            if (r.isAllowed || !r.isExceeded) return
            // check() passed, so this wrong key is the one past the budget.
            warnThrottled(request)
            throw throttled(r.ttl)
          }
        })
}

export default fp(rateLimits, { name: 'rate-limit', fastify: '5.x', dependencies: ['config', 'redis'] })

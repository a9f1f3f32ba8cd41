// The fleet registry's Redis client (REDIS_URL set), connected before any
// other plugin needs it; `redis` is null on a single machine. A machine never
// starts without its registry: REDIS_URL set but unreachable stops start-up
// with the address it tried (never the password in the URL). ioredis is
// loaded only then: a single machine (and the CLI, and every test process
// without Redis) does not pay its ~0.07 CPU-s of module loading.
import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify'
import type { Redis } from 'ioredis'

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis | null
  }
}

/** Connect, or say exactly why not: a fleet machine never starts without its registry. */
export async function connectRedis (url: string, log: FastifyBaseLogger, commandTimeoutMs = 1000): Promise<Redis> {
  const where = (() => { try { const u = new URL(url); return `${u.protocol}//${u.host}` } catch { return 'REDIS_URL' } })()
  let started = false
  const { Redis } = await import('ioredis')
  const client = new Redis(url, {
    lazyConnect: true,
    // Requests that need the registry fail at once while it is away (503
    // FLEET_UNAVAILABLE) instead of queueing behind a reconnect.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    // Every command fails after this (a Redis that hangs, a partition): a
    // request gets 503, a heartbeat that fails is a lease not renewed.
    commandTimeout: commandTimeoutMs,
    // At start: one attempt. Later: reconnect forever, backing off to 2 s.
    retryStrategy: (times) => started ? Math.min(times * 200, 2000) : null
  })
  let down = false
  const lost = (reason: string): void => {
    if (started && !down) { down = true; log.warn({ redis: where, err: reason }, 'lost the fleet registry (Redis); sessions keep running, fleet requests get 503 until it is back') }
  }
  client.on('error', (err: Error) => { lost(err.message) })
  // A connection that closes cleanly raises no error; ioredis reconnects
  // only after an unexpected loss (never after quit()).
  client.on('reconnecting', () => { lost('connection closed') })
  client.on('ready', () => {
    if (down) { down = false; log.info({ redis: where }, 'the fleet registry (Redis) is back') }
  })
  try {
    await client.connect()
  } catch (err) {
    client.disconnect()
    throw new Error(`REDIS_URL is set but Redis at ${where} cannot be reached (${(err as Error).message}): start Redis, fix REDIS_URL, or unset it to run a single machine`)
  }
  started = true
  return client
}

const redisPlugin: FastifyPluginAsync = async (fastify) => {
  if (fastify.config.REDIS_URL === '') {
    fastify.decorate('redis', null)
    return
  }
  const client = await connectRedis(fastify.config.REDIS_URL, fastify.log.child({ plugin: 'redis' }), fastify.config.FLEET_REDIS_TIMEOUT_MS)
  fastify.decorate('redis', client)
  fastify.addHook('onClose', async () => { await client.quit().catch(() => { client.disconnect() }) })
}

export default fp(redisPlugin, { name: 'redis', fastify: '5.x', dependencies: ['config'] })

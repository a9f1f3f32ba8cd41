// The whole service as one plugin, registered in dependency order.
import fp from 'fastify-plugin'
import { LogController, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import sensible from '@fastify/sensible'
import config, { type ConfigOptions } from './plugins/config.ts'
import errorHandler, { clientErrorHandler } from './plugins/error-handler.ts'
import accessLog from './plugins/access-log.ts'
import securityHeaders from './plugins/helmet.ts'
import auth, { type AuthOptions } from './plugins/auth.ts'
import urlPolicy, { type UrlPolicyPluginOptions } from './plugins/url-policy.ts'
import rateLimits, { type RateLimitOptions } from './plugins/rate-limit.ts'
import swagger from './plugins/swagger.ts'
import keystore from './plugins/keystore.ts'
import browserPool from './plugins/browser-pool.ts'
import sessions from './plugins/sessions.ts'
import fleet from './plugins/fleet.ts'
import redis from './plugins/redis.ts'
import metrics from './plugins/metrics.ts'
import webhooks from './plugins/webhooks.ts'
import sessionRoutes from './routes/sessions.ts'
import healthRoutes from './routes/health.ts'
import eventRoutes from './routes/events.ts'
import consoleRoutes from './routes/console.ts'

export interface ServiceOptions extends ConfigOptions, AuthOptions, UrlPolicyPluginOptions, RateLimitOptions {}

const service: FastifyPluginAsync<ServiceOptions> = async (fastify, opts) => {
  await fastify.register(config, opts)
  await fastify.register(redis)
  await fastify.register(sensible)
  await fastify.register(errorHandler)
  await fastify.register(accessLog)
  await fastify.register(securityHeaders) // before any route: headers on everything served
  await fastify.register(rateLimits, opts)
  await fastify.register(auth, opts)
  await fastify.register(urlPolicy, opts)
  await fastify.register(swagger) // before any route, or routes miss the document
  await fastify.register(keystore)
  await fastify.register(browserPool)
  await fastify.register(sessions)
  await fastify.register(metrics)
  await fastify.register(webhooks)
  await fastify.register(fleet)
  await fastify.register(healthRoutes)
  await fastify.register(sessionRoutes)
  await fastify.register(eventRoutes)
  await fastify.register(consoleRoutes)
}

export default fp(service, { name: 'service', fastify: '5.x' })

/** Server options shared by server.ts, tests and benchmarks. */
export const serverOptions: FastifyServerOptions = {
  bodyLimit: 64 * 1024,
  // Start-up makes an RSA key pair and may start Chromium: on a loaded host
  // either can pass Fastify's default 10 s per plugin (toolchain trap 11).
  pluginTimeout: 60_000,
  // Node's parser answers past 16 KiB of request line + headers (its
  // default maxHeaderSize), and malformed HTTP, in the one error shape.
  clientErrorHandler,
  // Sessions can take minutes to start; Fly's proxy and clients hold the
  // request meanwhile. Closing waits for them to be cancelled (see sessions).
  requestTimeout: 0,
  // plugins/error-handler.ts answers requests during close (503 SERVICE_CLOSING).
  return503OnClosing: false,
  // plugins/access-log.ts writes one line per request instead of Fastify's two.
  logController: new LogController({ disableRequestLogging: true }),
  ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } }
}

/** Paths that must never reach a log line. */
export const REDACT = [
  'req.headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.password',
  '*.encryptedPassword',
  '*.adminPassword',
  '*.connectionToken',
  '*.webhookUrl',
  '*.webhookSecret',
  '*.WEBHOOK_URL',
  '*.WEBHOOK_SECRET',
  '*.privateKey'
]

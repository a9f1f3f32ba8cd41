// Webhooks (lib/webhooks): the notifier follows the sessions this machine
// runs and their events; the delivery signs, sends and retries. The
// operator's webhook comes from WEBHOOK_URL; each session's from its start
// (routes/sessions.ts checks it with webhookUrl below).
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { Gauge } from 'prom-client'
import { createDelivery } from '../lib/webhooks/delivery.ts'
import { createNotifier, type Notifier } from '../lib/webhooks/notifier.ts'
import { checkWebhookUrl, newWebhookSecret, parseWebhookSecret } from '../lib/webhooks/url.ts'

declare module 'fastify' {
  interface FastifyInstance {
    webhooks: {
      /** A start-session webhook URL, under the URL policy (throws INVALID_WEBHOOK_URL). */
      checkUrl: (raw: string) => Promise<string>
      /** The client's signing secret checked, or a new one when it sent none. */
      secret: (raw: string | undefined) => { secret: string, generated: boolean }
      notifier: Notifier
    }
  }
}

/** How long closing waits for webhooks still being sent (the sessions' last ones). */
const CLOSE_GRACE_MS = 5000

const webhooks: FastifyPluginAsync = async (fastify) => {
  const { config, sessions, urlPolicy } = fastify
  const log = fastify.log.child({ plugin: 'webhooks' })
  const delivery = createDelivery({
    log,
    attempts: config.WEBHOOK_ATTEMPTS,
    baseDelayMs: config.WEBHOOK_RETRY_BASE_MS,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    // A session's URL came from a client: the URL policy before each attempt, connecting to the address it checked.
    checkUrl: urlPolicy.checkUrl
  })
  // The operator's URL is the operator's: no policy on it.
  const operator = createDelivery({
    log,
    attempts: config.WEBHOOK_ATTEMPTS,
    baseDelayMs: config.WEBHOOK_RETRY_BASE_MS,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS
  })
  const notifier = createNotifier({
    log,
    delivery: {
      send: (target, message) => { (target.kind === 'instance' ? operator : delivery).send(target, message) },
      pending: () => delivery.pending() + operator.pending(),
      close: async (ms) => { await Promise.all([delivery.close(ms), operator.close(ms)]) }
    },
    instance: config.WEBHOOK_URL !== ''
      ? { kind: 'instance', url: config.WEBHOOK_URL, secret: config.WEBHOOK_SECRET !== '' ? parseWebhookSecret(config.WEBHOOK_SECRET) : null }
      : null,
    instanceId: config.instanceId,
    reconnectingAfterMs: config.WEBHOOK_RECONNECTING_AFTER_MS,
    moduleOfflineAfterMs: config.WEBHOOK_MODULE_OFFLINE_AFTER_MS
  })
  // Messages waiting or being sent, read at scrape time: a receiver that
  // does not answer shows as a backlog that stays (the gauge registers
  // itself in the metrics registry).
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'foundry_webhook_pending',
    help: 'Webhook messages of this machine waiting or being delivered (each session\'s webhook and the operator\'s WEBHOOK_URL)',
    registers: [fastify.metrics.registry],
    collect () { this.set(delivery.pending() + operator.pending()) }
  })
  const untrack = sessions.onTrack(notifier.tracker)
  const unlisten = sessions.onEvent(notifier.listener)
  fastify.decorate('webhooks', {
    checkUrl: async (raw: string) => await checkWebhookUrl(raw, urlPolicy),
    secret: (raw: string | undefined) => raw !== undefined && raw !== ''
      ? { secret: parseWebhookSecret(raw), generated: false }
      : { secret: newWebhookSecret(), generated: true },
    notifier
  })
  // After the sessions' preClose (they ended, or were handed over): their last webhooks get a moment.
  fastify.addHook('onClose', async () => {
    untrack()
    unlisten()
    notifier.close()
    await Promise.all([delivery.close(CLOSE_GRACE_MS), operator.close(CLOSE_GRACE_MS)])
  })
}

export default fp(webhooks, { name: 'webhooks', fastify: '5.x', dependencies: ['config', 'sessions', 'url-policy', 'metrics'] })
